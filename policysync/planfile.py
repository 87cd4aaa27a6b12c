"""Saved plans (`plan --out FILE`): the JSON plan with a checksum, and reading one back.

The checksum catches a plan edited or damaged after review; it is not a signature
(anyone who can edit the file can recompute it). Apply also checks that the plan was
made for the project, and the environment (--env), it is about to write to.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from policysync import durable
from policysync.canonical import canonical_json
from policysync.errors import UsageError
from policysync.plan import FORMAT_VERSION, Plan, PlanDocument


def checksum(document: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of a plan document, its own checksum left out."""
    body = {k: v for k, v in document.items() if k != "checksum"}
    text = canonical_json(body).encode("utf-8", "surrogatepass")
    return "sha256:" + hashlib.sha256(text).hexdigest()


def save(plan: Plan, path: Path) -> None:
    """Write the plan with its checksum, whole or not at all (`durable.replace`)."""
    text = "".join(plan.json_chunks(plan.checksum())) + "\n"
    try:
        durable.replace(path, text.encode("utf-8", "surrogatepass"))
    except OSError as exc:
        raise UsageError(
            f"{path}: cannot save the plan there ({exc.strerror or exc}): choose another --out path"
        ) from None


def load(path: Path, project_id: str, environment: str | None = None) -> Plan:
    """A saved plan, refused (UsageError) when damaged, edited, or for another project or
    another environment (`environment`: --env, None without it)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(
            f"{path}: not a readable plan file ({exc}): run policysync plan --out"
        ) from None
    return _for(project_id, environment, _checked(text, path), path)


def _checked(text: str, path: Path) -> Plan:
    """The plan of `text`, once its checksum matches the document's: however the file is
    laid out (an editor may have formatted it), only a change of its content is refused."""
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise UsageError(
            f"{path}: not a readable plan file ({exc}): run policysync plan --out"
        ) from None
    if not isinstance(document, dict) or not isinstance(document.get("checksum"), str):
        raise UsageError(f"{path}: not a saved plan (no checksum): run policysync plan --out")
    saved = document["checksum"]
    if saved != checksum(document):
        raise UsageError(
            f"{path}: checksum mismatch: the plan was changed after it was made; "
            "make a new plan (policysync plan --out) and review it"
        )
    version = document.get("format_version")
    if version != FORMAT_VERSION:
        # A plan of another format was made by another policysync: one of format 1 lacks
        # the escalations its reviewers should have seen, so none is read as this one's.
        raise UsageError(
            f"{path}: a plan of format_version {json.dumps(version)}, made by another "
            f"version of policysync; this one applies format_version {FORMAT_VERSION}: "
            "make a new plan (policysync plan --out) and review it"
        )
    try:
        return Plan.of(PlanDocument.model_validate(document))
    except ValidationError as exc:
        raise UsageError(
            f"{path}: not a plan this policysync can read: {exc.errors()[0]['msg']}"
        ) from None


def _for(project_id: str, environment: str | None, plan: Plan, path: Path) -> Plan:
    if plan.environment != environment:

        def named(name: str | None) -> str:
            return f"environment {name}" if name is not None else "no environment (no --env)"

        again = f"--env {plan.environment}" if plan.environment is not None else "without --env"
        raise UsageError(
            f"{path}: the plan was made for {named(plan.environment)}, not "
            f"{named(environment)}: apply it {again}, or make a new plan for this one"
        )
    if plan.project_id != project_id:
        raise UsageError(
            f"{path}: the plan was made for project {plan.project_id}, not {project_id}: "
            "check which project the credentials in the environment name, or make a new plan "
            "for this project"
        )
    return plan
