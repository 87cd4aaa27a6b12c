"""Renderers of `policysync fmt`'s result: the files not in the canonical form, one a
line (for people and for `xargs`), and a summary line."""

from __future__ import annotations

from policysync.formatting import FormatResult
from policysync.views.common import plural, visible


def render_files(result: FormatResult) -> str:
    """The files rewritten, or with --check, those that would be."""
    return "\n".join(visible(str(path)) for path in result.changed)


def summary_line(result: FormatResult) -> str:
    changed, files = len(result.changed), len(result.files)
    if not changed:
        return f"{plural(files, 'file')} already in the canonical form."
    if result.check:
        return (
            f"{changed} of {plural(files, 'file')} not in the canonical form: "
            "`policysync fmt` rewrites them."
        )
    return f"Formatted {changed} of {plural(files, 'file')}."
