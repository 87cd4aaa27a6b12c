"""Saved plans (`plan --out FILE`): the JSON plan with a checksum, and reading one back.

The checksum catches a plan edited or damaged after review; it is not a signature
(anyone who can edit the file can recompute it). Apply also checks that the plan was
made for the project it is about to write to.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from policysync.errors import UsageError
from policysync.plan import Plan, PlanDocument


def checksum(document: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of a plan document, its own checksum left out."""
    body = {k: v for k, v in document.items() if k != "checksum"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


def save(plan: Plan, path: Path) -> None:
    """Write the plan with its checksum (to a temporary file first: a plan is never
    half-written)."""
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        with temporary.open("w", encoding="utf-8", errors="surrogatepass") as out:
            out.writelines(plan.json_chunks(plan.checksum()))
            out.write("\n")
        temporary.replace(path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise UsageError(
            f"{path}: cannot save the plan there ({exc.strerror or exc}): choose another --out path"
        ) from None


def load(path: Path, project_id: str) -> Plan:
    """A saved plan, refused (UsageError) when damaged, edited, or for another project."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise UsageError(
            f"{path}: not a readable plan file ({exc}): run policysync plan --out"
        ) from None
    if not isinstance(document, dict) or not isinstance(document.get("checksum"), str):
        raise UsageError(f"{path}: not a saved plan (no checksum): run policysync plan --out")
    if document["checksum"] != checksum(document):
        raise UsageError(
            f"{path}: checksum mismatch: the plan was changed after it was made; "
            "make a new plan (policysync plan --out) and review it"
        )
    try:
        plan = Plan.of(PlanDocument.model_validate(document))
    except ValidationError as exc:
        raise UsageError(
            f"{path}: not a plan this policysync can read: {exc.errors()[0]['msg']}"
        ) from None
    if plan.project_id != project_id:
        raise UsageError(
            f"{path}: the plan was made for project {plan.project_id}, not {project_id}: "
            "check STYTCH_PROJECT_ID, or make a new plan for this project"
        )
    return plan
