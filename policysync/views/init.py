"""Renderers of `policysync init`'s result: the files it wrote (those it found as it would
write them are counted, not listed), the export's lines with --from-live, a summary; and
on stderr, what is left to do."""

from __future__ import annotations

from policysync.scaffold import WORKFLOWS, InitResult
from policysync.views.common import visible
from policysync.views.export import render_text as render_export

_SYMBOLS = {"created": "+", "updated": "~"}


def render_text(result: InitResult) -> str:
    lines = [
        f"{_SYMBOLS[f.status]} {visible(f.path)} ({f.status})"
        for f in result.files
        if f.status != "unchanged"
    ]
    if result.export is not None:
        lines.append(render_export(result.export))
    count = {state: sum(f.status == state for f in result.files) for state in _SYMBOLS}
    unchanged = len(result.files) - sum(count.values())
    lines.append(
        f"Init: a {result.provider} policy repository in {visible(result.directory)}: "
        f"{count['created']} created, {count['updated']} updated, {unchanged} unchanged."
    )
    return "\n".join(lines)


def next_steps(result: InitResult) -> str:
    lines = []
    if result.placeholders:
        lines.append(
            f"note: the workflows in {WORKFLOWS}/ hold placeholders on their `uses:` lines: "
            f"replace {' and '.join(result.placeholders)}."
        )
    lines.append(
        "Next: edit the policy files (`policysync validate` checks them), commit, and set "
        'the repository up on GitHub (policysync\'s README, "Using it in GitHub").'
    )
    return "\n".join(lines)
