"""Renderers of an apply or rollback run's result: text, markdown and JSON.

Organizations left unchanged are counted, not listed (there may be thousands); every
other one gets a line, with Stytch's error_type and request id when it failed. An
organization whose write has an unknown outcome (it may have landed) comes first, and
the summary says what to run about it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import PurePath

from policysync.errors import RunStopped
from policysync.result import OrgResult, RunResult
from policysync.views.common import plural, visible

RunRenderer = Callable[[RunResult], str]
_ORDER = ("unknown", "failed", "stale", "absent", "applied")
DEFAULT_JOURNAL = PurePath(".policysync/journal")


def _line(org: OrgResult) -> str:
    line = f"{org.result:<8} {visible(org.organization_id)}"
    if org.error is not None:
        error = org.error
        request = f" (request {visible(error.request_id)})" if error.request_id else ""
        line += f": {visible(error.error_type)}: {visible(error.message)}{request}"
    return line


def summary_line(run: RunResult) -> str:
    verb = "Apply" if run.kind == "apply" else "Rollback"
    unknown = f", {run.unknown} unknown" if run.unknown else ""
    absent = f", {run.absent} not in the environment" if run.absent else ""
    counts = (
        f"{run.applied} applied, {run.unchanged} unchanged, {run.stale} stale, "
        f"{run.failed} failed{unknown}{absent}, of "
        f"{plural(len(run.organizations), 'organization')}."
    )
    if run.run_id is None:
        return f"{verb}: {counts} Nothing was written."
    rollback = rollback_command(run)
    if run.unknown:
        undo = (
            f" The outcome of {plural(run.unknown, 'write')} is unknown (not applied, not "
            "failed: it may have landed): "
            + (
                f"see where live stands with `policysync plan`, or put back the prior "
                f"wherever it landed with `{rollback}`."
                if run.kind == "apply"
                else "run the same rollback again (it puts back what did not land), or see "
                "where live stands with `policysync plan`."
            )
        )
    else:
        undo = f" Undo with: {rollback}" if run.kind == "apply" and run.applied else ""
    return f"{verb}: {counts} Journal: {visible(run.journal or '')}.{undo}"


def rollback_command(run: RunResult) -> str:
    """The command that undoes `run` (`--journal` when not the default folder)."""
    base = PurePath(run.journal).parent if run.journal else DEFAULT_JOURNAL
    where = "" if base == DEFAULT_JOURNAL else f" --journal {visible(str(base))}"
    return f"policysync rollback {run.run_id}{where}"


def stopped_message(run: RunResult, reason: str, interrupted: bool) -> str:
    """What stderr says of a run that stopped before its end (Ctrl-C, a journal that
    cannot be written): why, what was left unwritten, and how to undo what was not."""
    errors = (org.error.error_type for org in run.organizations if org.error)
    left = sum(error_type == RunStopped.error_type for error_type in errors)
    why = "Interrupted" if interrupted else f"error: {visible(reason)}"
    return (
        f"{why}: run {run.run_id} stopped before its end; {plural(left, 'organization')} "
        f"not written. Its journal: {visible(run.journal or '')}. Run the same command "
        f"again to finish it, or undo what it wrote with: {rollback_command(run)}"
    )


def _listed(run: RunResult) -> list[OrgResult]:
    return sorted(
        (org for org in run.organizations if org.result != "unchanged"),
        key=lambda org: (_ORDER.index(org.result), org.organization_id),
    )


def render_text(run: RunResult) -> str:
    return "\n".join([*map(_line, _listed(run)), "", summary_line(run)]).lstrip("\n")


def render_markdown(run: RunResult) -> str:
    listed = _listed(run)
    parts = [f"**{summary_line(run)}**"]
    if listed:
        lines = "\n".join(_line(org) for org in listed[:2000])
        more = f"\n… and {len(listed) - 2000} more" if len(listed) > 2000 else ""
        parts.append(f"```\n{lines}{more}\n```")
    return "\n\n".join(parts)


def render_json(run: RunResult) -> str:
    return run.model_dump_json(indent=2)


RUN_RENDERERS: dict[str, RunRenderer] = {
    "text": render_text,
    "markdown": render_markdown,
    "json": render_json,
}
