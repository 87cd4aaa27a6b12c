"""Renderers of a plan: one per output format, chosen from one registry.

Text and markdown print the same lines, in Terraform's vocabulary: `+` create, `~`
update, `-` delete, `!` an organization that could not be planned, or (first of all) a
grant that widens access: an escalation. Next come the deletions of roles in use (who
depends on each is on its delete line too), then the changes of template roles,
each counted across the organizations it is made in. Text colours the
symbols (the CLI strips styles when the output is not a terminal); markdown puts the
lines in `diff` fences, which GitHub colours.
"""

from __future__ import annotations

from collections.abc import Callable

import click

from policysync.plan import (
    Escalation,
    OrgPlan,
    Plan,
    RoleChange,
    in_use_deletions,
    role_diff,
)
from policysync.views.common import (
    MARKDOWN_LIMIT,
    MARKDOWN_RESERVE,
    Paint,
    coloured,
    details,
    diff_lines,
    fence,
    fit,
    label,
    name,
    plain,
    plural,
    visible,
)

PlanRenderer = Callable[[Plan], str]
_ROLE_WIDTH = 30  # role ids are padded so that (create)/(update)/(delete) line up
_SYMBOLS = {"create": "+", "update": "~", "delete": "-"}


def _label(org: OrgPlan) -> str:
    return label(org.file, org.organization_id)


def summary_line(plan: Plan) -> str:
    s = plan.summary
    if s.changed:
        line = (
            f"Plan: {s.add} to add, {s.change} to change, {s.destroy} to destroy, "
            f"in {s.changed} of {plural(s.organizations, 'organization')}."
        )
    else:
        matching = s.organizations - s.failed - s.absent
        verb = "matches its file" if matching == 1 else "match their files"
        line = f"No changes. {plural(matching, 'organization')} {verb}."
    if s.failed:
        line = line[:-1] + f"; {s.failed} could not be planned."
    if s.absent:
        line = line[:-1] + f"; {s.absent} not in environment {plan.environment}, skipped."
    return line


def _role_lines(change: RoleChange, width: int, paint: Paint) -> list[str]:
    symbol = _SYMBOLS[change.action]
    origin = f", template {name(change.template)}" if change.template is not None else ""
    lines = [f"{paint(symbol)} role {name(change.role_id).ljust(width)} ({change.action}{origin})"]
    if change.in_use is not None and change.in_use.used:
        lines[0] += f" {visible(change.in_use.describe())}"
    if change.before is not None and change.after is not None:
        diff = role_diff(change.before, change.after)
        lines += ["    " + line for line in diff_lines(diff, paint)]
    return lines


def change_lines(org: OrgPlan, paint: Paint = plain) -> list[str]:
    """The lines of one organization's role changes, unindented."""
    width = max([_ROLE_WIDTH, *(len(name(c.role_id)) for c in org.role_changes)])
    return [line for change in org.role_changes for line in _role_lines(change, width, paint)]


def absent_line(org: OrgPlan, environment: str | None, paint: Paint = plain) -> str:
    return f"{paint('!')} organization {_label(org)}: not in environment {environment}, skipped"


def error_line(org: OrgPlan, paint: Paint = plain) -> str:
    assert org.error is not None, "called for an organization planned as an error only"
    error = org.error
    request = f" (request {visible(error.request_id)})" if error.request_id else ""
    return (
        f"{paint('!')} organization {_label(org)}: "
        f"{visible(error.error_type)}: {visible(error.message)}{request}"
    )


ESCALATIONS_HEADING = "Escalations: grants that widen access"


def escalation_lines(plan: Plan, paint: Paint = plain) -> list[str]:
    files = {org.organization_id: org.file for org in plan.changes}

    def line(e: Escalation) -> str:
        where = label(files.get(e.organization_id, e.organization_id), e.organization_id)
        grant = f"{name(e.resource_id)}:{name(e.action)}"
        return f"{paint('!')} role {name(e.role_id)} in {where} gains {grant} ({e.reason})"

    return [line(e) for e in plan.escalations]


IN_USE_HEADING = "Deletions of roles in use (apply needs --allow-delete-in-use)"


def in_use_lines(plan: Plan, paint: Paint = plain) -> list[str]:
    return [
        f"{paint('-')} role {name(change.role_id)} in {_label(org)}: "
        f"{visible(change.in_use.describe()) if change.in_use else ''}"
        for org, change in in_use_deletions(plan)
    ]


def _text_in_use(plan: Plan) -> list[str]:
    lines = in_use_lines(plan, coloured)
    if not lines:
        return []
    heading = click.style(f"{IN_USE_HEADING} ({len(lines)})", bold=True)
    return ["\n".join([heading, *("  " + line for line in lines)])]


TEMPLATES_HEADING = "Templates: changes across organizations"


def template_lines(plan: Plan, paint: Paint = plain) -> list[str]:
    """Each template role's change, with the number of organizations it is made in."""
    counts: dict[tuple[str, str, str], int] = {}
    for org in plan.changes:
        for change in org.role_changes:
            if change.template is not None:
                key = (change.template, change.role_id, change.action)
                counts[key] = counts.get(key, 0) + 1
    return [
        f"template {name(template)}: {paint(_SYMBOLS[action])} role {name(role_id)} "
        f"({action}) in {plural(n, 'organization')}"
        for (template, role_id, action), n in sorted(counts.items())
    ]


def _text_templates(plan: Plan) -> list[str]:
    lines = template_lines(plan, coloured)
    if not lines:
        return []
    heading = click.style(TEMPLATES_HEADING, bold=True)
    return ["\n".join([heading, *("  " + line for line in lines)])]


def _text_escalations(plan: Plan) -> list[str]:
    if not plan.escalations:
        return []
    heading = click.style(f"{ESCALATIONS_HEADING} ({len(plan.escalations)})", bold=True)
    return ["\n".join([heading, *("  " + line for line in escalation_lines(plan, coloured))])]


def _text_block(org: OrgPlan, environment: str | None) -> str:
    if org.action == "error":
        return error_line(org, coloured)
    if org.action == "absent":
        return absent_line(org, environment, coloured)
    header = click.style(f"organization {_label(org)}", bold=True)
    return "\n".join([header, *("  " + line for line in change_lines(org, coloured))])


def render_text(plan: Plan) -> str:
    blocks = [
        *_text_escalations(plan),
        *_text_in_use(plan),
        *_text_templates(plan),
        *(_text_block(org, plan.environment) for org in plan.changes),
    ]
    return "\n\n".join([*blocks, click.style(summary_line(plan), bold=True)])


def _counts(org: OrgPlan) -> str:
    n = {action: sum(c.action == action for c in org.role_changes) for action in _SYMBOLS}
    return f"{n['create']} to add, {n['update']} to change, {n['delete']} to destroy"


def _details(org: OrgPlan) -> str:
    return details(f"{_label(org)}: {_counts(org)}", change_lines(org))


def _left_out_note(left_out: list[OrgPlan]) -> str:
    changes = sum(len(org.role_changes) for org in left_out)
    return (
        f"_{plural(len(left_out), 'more organization')} "
        f"({plural(changes, 'role change')}) left out to stay under "
        f"{MARKDOWN_LIMIT:,} characters: see the JSON plan (`--format json`) or the job log._"
    )


def _markdown_section(heading: str, lines: list[str], what: str, budget: int) -> list[str]:
    """`lines` under `heading` in a diff fence, as many as half of `budget` holds, and
    how many more `what`s were left out."""
    if not lines:
        return []
    shown = fit([len(line) + 1 for line in lines], budget // 2)
    parts = [f"**{heading}**", fence(lines[:shown])]
    if shown < len(lines):
        parts.append(
            f"_{plural(len(lines) - shown, 'more ' + what)} left out to stay under "
            f"{MARKDOWN_LIMIT:,} characters: see the JSON plan (`--format json`)._"
        )
    return parts


def render_markdown(plan: Plan) -> str:
    """For a pull-request comment or a job summary: escalations first, for the reviewer,
    the deletions of roles in use and the template changes; errors next, as they block
    an apply (and organizations absent from the environment); then one collapsed block
    per changed organization, as many as GitHub accepts."""
    errors = [org for org in plan.changes if org.action in ("error", "absent")]
    changed = [org for org in plan.changes if org.action == "update"]
    items = [
        error_line(org) if org.action == "error" else absent_line(org, plan.environment)
        for org in errors
    ] + [_details(org) for org in changed]
    head = f"**{summary_line(plan)}**"
    flagged = escalation_lines(plan)
    heading = f"{ESCALATIONS_HEADING} ({len(flagged)})"
    room = MARKDOWN_LIMIT - len(head) - MARKDOWN_RESERVE
    escalations = _markdown_section(heading, flagged, "escalation", room)
    room -= sum(len(p) + 2 for p in escalations)
    held = in_use_lines(plan)
    in_use = _markdown_section(
        f"{IN_USE_HEADING} ({len(held)})", held, "deletion of a role in use", room
    )
    escalations += in_use
    room -= sum(len(p) + 2 for p in in_use)
    escalations += _markdown_section(
        TEMPLATES_HEADING, template_lines(plan), "template change", room
    )
    budget = MARKDOWN_LIMIT - len(head) - MARKDOWN_RESERVE - sum(len(p) + 2 for p in escalations)
    shown = fit([len(item) + 2 for item in items], budget)
    parts = [head, *escalations]
    if shown and errors:
        parts.append(fence(items[: min(shown, len(errors))]))
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
