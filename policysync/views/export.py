"""Renderers of an export's result: text and JSON.

Files left unchanged are counted, not listed (there may be thousands); every file
created or updated gets a line, and so does every organization that was not exported.
"""

from __future__ import annotations

from collections.abc import Callable

from policysync.export import ExportResult
from policysync.views.common import plural, visible

ExportRenderer = Callable[[ExportResult], str]
_SYMBOLS = {"created": "+", "updated": "~"}


def summary_line(result: ExportResult) -> str:
    count = {state: sum(f.status == state for f in result.files) for state in _SYMBOLS}
    unchanged = len(result.files) - sum(count.values())
    return (
        f"Export: {count['created']} created, {count['updated']} updated, {unchanged} "
        f"unchanged, {plural(len(result.problems), 'problem')}."
    )


def branch_line(result: ExportResult) -> str | None:
    if result.branch is None:
        return None
    branch = visible(result.branch)
    if result.commit is None:
        return f"Nothing changed since HEAD: branch {branch} was not created."
    return (
        f"Committed {result.commit[:12]} on the new branch {branch}, from HEAD; your checkout "
        f"is as it was (git switch {branch} to see it)."
    )


def render_text(result: ExportResult) -> str:
    lines = [
        f"{_SYMBOLS[f.status]} {visible(f.file)} ({f.status})"
        for f in result.files
        if f.status != "unchanged"
    ]
    for problem in result.problems:
        org = f"organization {problem.organization_id}" if problem.organization_id else ""
        where = f"{org} ({problem.file})" if org and problem.file else org or problem.file or ""
        request = problem.error.request_id if problem.error else None
        suffix = f" (request {visible(request)})" if request else ""
        lines.append(f"! {visible(where)}: {visible(problem.message)}{suffix}")
    lines += [f"note: {visible(note)}" for note in result.notes]
    lines.append(summary_line(result))
    lines += [line for line in (branch_line(result),) if line]
    return "\n".join(lines)


def render_json(result: ExportResult) -> str:
    return result.model_dump_json(indent=2)


EXPORT_RENDERERS: dict[str, ExportRenderer] = {"text": render_text, "json": render_json}
