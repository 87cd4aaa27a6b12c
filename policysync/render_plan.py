"""Renderers of a plan: one per output format, chosen from one registry.

Text and markdown print the same lines, in Terraform's vocabulary: `+` create, `~`
update, `-` delete, `!` an organization that could not be planned. Text colours the
symbols (the CLI strips styles when the output is not a terminal); markdown puts the
lines in `diff` fences, which GitHub colours. Values read from files or from Stytch are
printed with invisible characters escaped, so that no role id or error message can
move the cursor of a terminal or forge a line of the plan.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from pathlib import PurePath

import click

from policysync.diagnostics import q
from policysync.plan import OrgPlan, Plan, ResourceChange, RoleChange, RoleDiff, role_diff

PlanRenderer = Callable[[Plan], str]
Paint = Callable[[str], str]  # styles one symbol

MARKDOWN_LIMIT = 65_000  # GitHub refuses comments over 65,536 characters
_MARKDOWN_RESERVE = 500  # room for the errors' fence and the note on what was left out
_ROLE_WIDTH = 30  # role ids are padded so that (create)/(update)/(delete) line up
_SYMBOLS = {"create": "+", "update": "~", "delete": "-"}
_COLOURS = {"+": "green", "~": "yellow", "-": "red", "!": "red"}


def _plain(symbol: str) -> str:
    return symbol


def _coloured(symbol: str) -> str:
    return click.style(symbol, fg=_COLOURS[symbol], bold=True)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _visible(text: str) -> str:
    """`text` on one line, with control and invisible characters escaped."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _name(value: str) -> str:
    """An identifier as is, or quoted when it is empty, padded or holds invisible text."""
    return value if value and value.isprintable() and value.strip() == value else q(value)


def _label(org: OrgPlan) -> str:
    """The file's name for people, the organization_id of the file for Stytch."""
    stem = PurePath(org.file).stem
    if stem == org.organization_id:
        return _name(stem)
    return f"{_name(stem)} ({_name(org.organization_id)})"


def summary_line(plan: Plan) -> str:
    s = plan.summary
    if s.changed:
        line = (
            f"Plan: {s.add} to add, {s.change} to change, {s.destroy} to destroy, "
            f"in {s.changed} of {_plural(s.organizations, 'organization')}."
        )
    else:
        matching = s.organizations - s.failed
        verb = "matches its file" if matching == 1 else "match their files"
        line = f"No changes. {_plural(matching, 'organization')} {verb}."
    return (line[:-1] + f"; {s.failed} could not be planned.") if s.failed else line


def _resource_line(change: ResourceChange, paint: Paint) -> str:
    name = _name(change.resource_id)
    if change.action == "create":
        return f"{paint('+')} {name}: {', '.join(map(_name, change.added))}"
    if change.action == "delete":
        return f"{paint('-')} {name}"
    parts = [
        f"{paint(symbol)} {', '.join(map(_name, actions))}"
        for symbol, actions in (("+", change.added), ("-", change.removed))
        if actions
    ]
    return f"{paint('~')} {name}: {'  '.join(parts)}"


def _diff_lines(diff: RoleDiff, paint: Paint) -> list[str]:
    lines = [_resource_line(change, paint) for change in diff.resources]
    if diff.description is not None:
        before, after = diff.description
        lines.insert(0, f"{paint('~')} description: {q(before)} -> {q(after)}")
    return lines


def _role_lines(change: RoleChange, width: int, paint: Paint) -> list[str]:
    symbol = _SYMBOLS[change.action]
    lines = [f"{paint(symbol)} role {_name(change.role_id).ljust(width)} ({change.action})"]
    if change.before is not None and change.after is not None:
        diff = role_diff(change.before, change.after)
        lines += ["    " + line for line in _diff_lines(diff, paint)]
    return lines


def change_lines(org: OrgPlan, paint: Paint = _plain) -> list[str]:
    """The lines of one organization's role changes, unindented."""
    width = max([_ROLE_WIDTH, *(len(_name(c.role_id)) for c in org.role_changes)])
    return [line for change in org.role_changes for line in _role_lines(change, width, paint)]


def error_line(org: OrgPlan, paint: Paint = _plain) -> str:
    assert org.error is not None, "called for an organization planned as an error only"
    error = org.error
    request = f" (request {_visible(error.request_id)})" if error.request_id else ""
    return (
        f"{paint('!')} organization {_label(org)}: "
        f"{_visible(error.error_type)}: {_visible(error.message)}{request}"
    )


def _text_block(org: OrgPlan) -> str:
    if org.action == "error":
        return error_line(org, _coloured)
    header = click.style(f"organization {_label(org)}", bold=True)
    return "\n".join([header, *("  " + line for line in change_lines(org, _coloured))])


def render_text(plan: Plan) -> str:
    blocks = [_text_block(org) for org in plan.changes]
    return "\n\n".join([*blocks, click.style(summary_line(plan), bold=True)])


def _counts(org: OrgPlan) -> str:
    n = {action: sum(c.action == action for c in org.role_changes) for action in _SYMBOLS}
    return f"{n['create']} to add, {n['update']} to change, {n['delete']} to destroy"


def _symbol_first(line: str) -> str:
    """`    - audit` as `-     audit`: GitHub colours a diff line by its first character."""
    text = line.lstrip(" ")
    return text[0] + line[: len(line) - len(text)] + text[1:]


def _fence(lines: list[str]) -> str:
    # Every line starts with a symbol, and values are on one line (see _visible and
    # _name): no line of a plan can close the fence early.
    return "\n".join(["```diff", *map(_symbol_first, lines), "```"])


def _details(org: OrgPlan) -> str:
    summary = html.escape(f"{_label(org)}: {_counts(org)}")
    return f"<details><summary>{summary}</summary>\n\n{_fence(change_lines(org))}\n\n</details>"


def _fit(sizes: list[int], budget: int) -> int:
    """How many of the leading items fit in `budget` characters."""
    used = 0
    for count, size in enumerate(sizes):
        used += size
        if used > budget:
            return count
    return len(sizes)


def _left_out_note(left_out: list[OrgPlan]) -> str:
    changes = sum(len(org.role_changes) for org in left_out)
    return (
        f"_{_plural(len(left_out), 'more organization')} "
        f"({_plural(changes, 'role change')}) left out to stay under "
        f"{MARKDOWN_LIMIT:,} characters: see the JSON plan (`--format json`) or the job log._"
    )


def render_markdown(plan: Plan) -> str:
    """For a pull-request comment or a job summary: errors first, as they block an apply;
    then one collapsed block per changed organization, as many as GitHub accepts."""
    errors = [org for org in plan.changes if org.action == "error"]
    changed = [org for org in plan.changes if org.action == "update"]
    items = [error_line(org) for org in errors] + [_details(org) for org in changed]
    head = f"**{summary_line(plan)}**"
    shown = _fit([len(item) + 2 for item in items], MARKDOWN_LIMIT - len(head) - _MARKDOWN_RESERVE)
    parts = [head]
    if shown and errors:
        parts.append(_fence(items[: min(shown, len(errors))]))
    parts += items[len(errors) : shown]
    if shown < len(items):
        parts.append(_left_out_note([*errors, *changed][shown:]))
    return "\n\n".join(parts)


def render_json(plan: Plan) -> str:
    """The JSON plan as one string; the CLI writes `plan.json_chunks()` one by one."""
    return "".join(plan.json_chunks())


PLAN_RENDERERS: dict[str, PlanRenderer] = {
    "text": render_text,
    "markdown": render_markdown,
    "json": render_json,
}
