"""The published JSON Schemas, generated from the models so the two cannot drift apart.

`python -m policysync.schemas --write` rewrites `schemas/`; `--check` (and a test) fails
when a committed schema differs from what the models generate. The wheel carries the
committed files as `policysync/_schemas/` (pyproject's force-include), and `policysync
schema` prints or writes them (`write`), rendered from the models: the same bytes.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from policysync import durable
from policysync.drift import DriftReport
from policysync.errors import UsageError
from policysync.models import OrgPolicyFile, ProjectPolicyFile, TemplateFile
from policysync.plan import PlanDocument
from policysync.policytest import PolicyTestFile
from policysync.report import ValidationReport
from policysync.result import RunResult
from policysync.testreport import SuiteReport
from policysync.zenml_models import ZenmlOrgFile, ZenmlPermissionsFile, ZenmlTemplateFile
from policysync.zenml_policytest import ZenmlPolicyTestFile

DRAFT = "https://json-schema.org/draft/2020-12/schema"

SCHEMA_MODELS: dict[str, type[BaseModel]] = {
    "org-policy": OrgPolicyFile,
    "template": TemplateFile,
    "project-policy": ProjectPolicyFile,
    "validate-report": ValidationReport,
    "plan": PlanDocument,
    "run-result": RunResult,
    "drift": DriftReport,
    "zenml-org-roles": ZenmlOrgFile,
    "zenml-permissions": ZenmlPermissionsFile,
    "zenml-template": ZenmlTemplateFile,
    "policy-tests": PolicyTestFile,
    "zenml-policy-tests": ZenmlPolicyTestFile,
    "test-report": SuiteReport,
}


def schema_id(name: str) -> str:
    return f"urn:policysync:schema:{name}"


def generate(name: str) -> dict[str, Any]:
    body = SCHEMA_MODELS[name].model_json_schema(by_alias=True)
    return {"$schema": DRAFT, "$id": schema_id(name), **body}


def render(name: str) -> str:
    return json.dumps(generate(name), indent=2, ensure_ascii=False) + "\n"


def filename(name: str) -> str:
    return f"{name}.schema.json"


def write(directory: Path, names: list[str]) -> list[Path]:
    """Write the schemas `names` into `directory` (made if missing) as NAME.schema.json;
    the paths written."""
    written = []
    try:
        durable.make_folders(directory)
        for name in names:
            path = directory / filename(name)
            durable.replace(path, render(name).encode("utf-8"))
            written.append(path)
    except OSError as exc:
        raise UsageError(
            f"{exc.filename or directory}: cannot write the schemas there "
            f"({exc.strerror or exc}): choose another --out folder"
        ) from None
    return written


def stale(directory: Path) -> list[str]:
    """Names of the schema files in `directory` that are missing or out of date."""
    out = []
    for name in SCHEMA_MODELS:
        path = directory / filename(name)
        if not path.is_file() or path.read_text(encoding="utf-8") != render(name):
            out.append(str(path))
    return out


def main(argv: list[str]) -> int:
    directory = Path(__file__).resolve().parent.parent / "schemas"
    if argv == ["--write"]:
        write(directory, list(SCHEMA_MODELS))
        return 0
    if argv == ["--check"]:
        out_of_date = stale(directory)
        for path in out_of_date:
            print(f"{path} is out of date: run `make schemas`", file=sys.stderr)
        return 1 if out_of_date else 0
    print("usage: python -m policysync.schemas --write | --check", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
