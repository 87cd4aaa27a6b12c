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


def _checksum_as_laid_out(text: str) -> str | None:
    """`checksum` of a plan file as `save` lays it out, from its text alone: less the
    checksum's line, and less the indentation and the space after each member's name,
    its lines make the canonical JSON (every line break is outside a string): 7 ms for
    a plan of 1,000 changed organizations, against 72 ms to encode the document again.
    A text laid out otherwise (formatted by an editor, say) gives another digest, and
    `load` encodes the document after all."""
    lines = text.split("\n")
    if len(lines) < 4 or lines[0] != "{" or not lines[1].startswith('  "checksum": '):
        return None
    digest = hashlib.sha256(b"{")
    for line in lines[2:]:
        if line.startswith("    "):  # an organization
            line = line[4:]
        elif line.startswith('  "'):  # a member: "name": value
            line = line[2:].replace('": ', '":', 1)
        elif line.startswith("  "):  # the end of the organizations
            line = line[2:]
        digest.update(line.encode("utf-8", "surrogatepass"))
    return "sha256:" + digest.hexdigest()


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
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(
            f"{path}: not a readable plan file ({exc}): run policysync plan --out"
        ) from None
    laid_out = _checksum_as_laid_out(text)
    if laid_out is not None:  # as saved: read and validated in one pass (~25% faster)
        with contextlib.suppress(ValidationError):
            document = PlanDocument.model_validate_json(text)
            if document.checksum == laid_out:
                return _for(project_id, Plan.of(document), path)
    return _for(project_id, _checked(text, laid_out, path), path)  # what is wrong, precisely


def _checked(text: str, laid_out: str | None, path: Path) -> Plan:
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise UsageError(
            f"{path}: not a readable plan file ({exc}): run policysync plan --out"
        ) from None
    if not isinstance(document, dict) or not isinstance(document.get("checksum"), str):
        raise UsageError(f"{path}: not a saved plan (no checksum): run policysync plan --out")
    saved = document["checksum"]
    if saved != laid_out and saved != checksum(document):
        raise UsageError(
            f"{path}: checksum mismatch: the plan was changed after it was made; "
            "make a new plan (policysync plan --out) and review it"
        )
    try:
        return Plan.of(PlanDocument.model_validate(document))
    except ValidationError as exc:
        raise UsageError(
            f"{path}: not a plan this policysync can read: {exc.errors()[0]['msg']}"
        ) from None


def _for(project_id: str, plan: Plan, path: Path) -> Plan:
    if plan.project_id != project_id:
        raise UsageError(
            f"{path}: the plan was made for project {plan.project_id}, not {project_id}: "
            "check STYTCH_PROJECT_ID, or make a new plan for this project"
        )
    return plan
