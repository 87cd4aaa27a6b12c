"""The data-driven planner cases under tests/golden/plan/.

Each case is one organization, its file named after the case:
- `desired.json`: the organization file, whose `templates` are the case's
  `templates/*.json` (named as `policies/templates/<name>.json`);
- `live.json`: what Stytch holds, an org policy (`{"roles": [...]}`), or
  `{"error": {...}}` (an `OrgError`) for an organization it could not read;
- `expected.json`: the organization's planned `action` and `role_changes`;
- `expected.txt`: the text rendering, without colour, of a plan of that organization.
`all-cases/` is not a case: its `rendered.{txt,md,json}` are the renderings, in each format,
of one plan of every case. `pytest --update-golden` rewrites the expected and rendered
files; review the diff before committing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from policysync.config import Limits
from policysync.formats import file_format
from policysync.models import OrgPolicy, OrgPolicyFile
from policysync.plan import OrgError, OrgState, Plan, PlanEntry, Source, assemble, plan_org
from policysync.templates import expand, read_templates

PLAN_CASES = Path(__file__).parent.parent / "golden" / "plan"
ALL_CASES = PLAN_CASES / "all-cases"


def plan_case_dirs() -> list[Path]:
    return sorted(p for p in PLAN_CASES.iterdir() if p.is_dir() and p != ALL_CASES)


def case_state(case: Path) -> OrgState:
    org_file = OrgPolicyFile.model_validate_json((case / "desired.json").read_bytes())
    live_doc = json.loads((case / "live.json").read_bytes())
    live = (
        OrgError.model_validate(live_doc["error"])
        if "error" in live_doc
        else OrgPolicy.model_validate(live_doc)
    )
    file = f"policies/orgs/{case.name}.json"
    parse = file_format("stytch").parse_template
    templates = {
        name: t._replace(file=f"policies/templates/{name}.json")
        for name, t in read_templates(case, parse, Limits()).items()
    }
    policy, sources = expand(org_file, templates)
    origins = {role: Source(name, templates[name].file) for role, name in sources.items()}
    return (org_file.organization_id, file, policy, live, origins)


def plan_of(states: Iterable[OrgState]) -> Plan:
    """A plan with fixed metadata, so that renderings change with neither clock nor version."""
    return assemble(
        (PlanEntry.of(plan_org(*state)) for state in states),
        project_id="project-test-00000000-0000-4000-8000-000000000000",
        created_at="2025-01-01T00:00:00Z",
        policysync_version="0.0.0-test",
        git_commit="0123456789abcdef0123456789abcdef01234567",
        git_dirty=False,
        rules=file_format("stytch").escalations,
    )


def check_golden(path: Path, actual: str, update: bool) -> None:
    """`actual` equals the content of `path` (which `--update-golden` rewrites)."""
    if update:
        path.write_text(actual, encoding="utf-8")
    assert actual == path.read_text(encoding="utf-8")
