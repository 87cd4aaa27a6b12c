"""Renderers of a drift report: text, markdown and JSON, chosen from one registry.

The vocabulary is the plan's, seen from live: `+` a role added live, outside git; `-`
one removed live; `~` one changed live (its lines say what live has that the file has
not); `!` a managed organization that no longer exists or could not be read. Markdown
puts the summary line first, for a job summary or the body of an issue, and stays
under the plan's size bound.
"""

from __future__ import annotations

from collections.abc import Callable

import click

from policysync.drift import DriftReport, OrgDrift, ProjectDrift, RoleDrift, UnmanagedOrg
from policysync.plan import role_diff
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

DriftRenderer = Callable[[DriftReport], str]
_SYMBOLS = {"added": "+", "removed": "-", "changed": "~"}
_WIDTH = 30  # role ids are padded so that (added live)/(removed live) line up


def _label(org: OrgDrift) -> str:
    return label(org.file, org.organization_id)


def _unmanaged_label(org: UnmanagedOrg) -> str:
    return f"{name(org.organization_slug)} ({name(org.organization_id)})"


def summary_line(report: DriftReport) -> str:
    s = report.summary
    parts = []
    if s.drifted:
        parts.append(
            f"{s.drifted} of {plural(s.organizations, 'organization')} drifted "
            f"({s.roles_added} {'role' if s.roles_added == 1 else 'roles'} added, "
            f"{s.roles_removed} removed, {s.roles_changed} changed outside git)"
        )
    if s.missing:
        verb = "no longer exists" if s.missing == 1 else "no longer exist"
        parts.append(f"{plural(s.missing, 'managed organization')} {verb}")
    if s.project_drifted:
        parts.append(f"{visible(report.project.file)} is out of date with the live project policy")
    if s.unmanaged:
        parts.append(f"{plural(s.unmanaged, 'unmanaged organization')} with roles and no file")
    if parts:
        line = "Drift: " + "; ".join(parts) + "."
    else:
        matching = s.organizations - s.failed - s.absent
        verb = "matches its file" if matching == 1 else "match their files"
        line = f"No drift. {plural(matching, 'organization')} {verb}"
        line += "" if s.unmanaged is None else "; no unmanaged organization has roles"
        line += "."
    if s.failed:
        line += f" {s.failed} could not be read."
    if s.absent:
        line += f" {s.absent} not in environment {report.environment}, skipped."
    if report.search_error is not None:
        line += " The organization search failed."
    return line


def _role_lines(role: RoleDrift, width: int, paint: Paint) -> list[str]:
    symbol = _SYMBOLS[role.drift]
    lines = [f"{paint(symbol)} role {name(role.role_id).ljust(width)} ({role.drift} live)"]
    if role.file is not None and role.live is not None:
        lines += ["    " + line for line in diff_lines(role_diff(role.file, role.live), paint)]
    return lines


def drift_lines(org: OrgDrift, paint: Paint = plain) -> list[str]:
    """The lines of one drifted organization's roles, unindented."""
    width = max([_WIDTH, *(len(name(role.role_id)) for role in org.roles)])
    return [line for role in org.roles for line in _role_lines(role, width, paint)]


def error_line(org: OrgDrift, paint: Paint = plain, environment: str | None = None) -> str:
    assert org.error is not None, "called for a missing or unreadable organization only"
    error = org.error
    request = f" (request {visible(error.request_id)})" if error.request_id else ""
    if org.status == "absent":
        return f"{paint('!')} organization {_label(org)}: not in environment {environment}, skipped"
    what = "no longer exists live: " if org.status == "missing" else ""
    return (
        f"{paint('!')} organization {_label(org)}: {what}"
        f"{visible(error.error_type)}: {visible(error.message)}{request}"
    )


def search_error_line(report: DriftReport) -> str:
    assert report.search_error is not None
    error = report.search_error
    request = f" (request {visible(error.request_id)})" if error.request_id else ""
    return f"! organization search: {visible(error.error_type)}: {visible(error.message)}{request}"


def project_lines(project: ProjectDrift, paint: Paint = plain) -> list[str]:
    labels = [f"{item.kind} {name(item.id)}" for item in project.items]
    width = max([len("role ") + _WIDTH, *map(len, labels)])
    return [
        f"{paint(_SYMBOLS[item.drift])} {label.ljust(width)} ({item.drift} live)"
        for item, label in zip(project.items, labels, strict=True)
    ]


def unmanaged_line(org: UnmanagedOrg, paint: Paint = plain) -> str:
    roles = ", ".join(map(name, org.role_ids))
    return f"{paint('+')} organization {_unmanaged_label(org)}: {roles}"


_PROJECT_HINT = "refresh it with `policysync export`, review the diff and commit it"
_UNMANAGED_HEAD = "Organizations with org-specific roles and no file (unmanaged):"


def _errors(report: DriftReport) -> list[OrgDrift]:
    return [org for org in report.organizations if org.error is not None]


def _drifted(report: DriftReport) -> list[OrgDrift]:
    return [org for org in report.organizations if org.status == "drifted"]


def render_text(report: DriftReport) -> str:
    blocks = [error_line(org, coloured, report.environment) for org in _errors(report)]
    if report.search_error is not None:
        blocks.append(search_error_line(report))
    for org in _drifted(report):
        header = click.style(f"organization {_label(org)}", bold=True)
        blocks.append("\n".join([header, *("  " + line for line in drift_lines(org, coloured))]))
    if report.project.drifted:
        header = click.style(
            f"project policy {visible(report.project.file)} ({_PROJECT_HINT})", bold=True
        )
        lines = project_lines(report.project, coloured)
        blocks.append("\n".join([header, *("  " + line for line in lines)]))
    if report.unmanaged:
        lines = [unmanaged_line(org, coloured) for org in report.unmanaged]
        blocks.append("\n".join([click.style(_UNMANAGED_HEAD, bold=True), *lines]))
    return "\n\n".join([*blocks, click.style(summary_line(report), bold=True)])


def _org_counts(org: OrgDrift) -> str:
    n = {drift: sum(role.drift == drift for role in org.roles) for drift in _SYMBOLS}
    return f"{n['added']} added, {n['changed']} changed, {n['removed']} removed live"


def _unmanaged_details(unmanaged: tuple[UnmanagedOrg, ...]) -> str:
    """Up to a quarter of the bound: the rest of the report matters more."""
    lines = [unmanaged_line(org) for org in unmanaged]
    kept = fit([len(line) + 1 for line in lines], MARKDOWN_LIMIT // 4)
    more = len(lines) - kept
    lines = lines[:kept] + ([f"+ … and {more} more (see the JSON report)"] if more else [])
    return details(f"{plural(len(unmanaged), 'unmanaged organization')} with roles", lines)


def render_markdown(report: DriftReport) -> str:
    """For $GITHUB_STEP_SUMMARY or an issue body: the summary line first, then what
    cannot be compared, the project policy, one collapsed block per drifted
    organization, and the unmanaged organizations, as many as fit under the bound."""
    head = f"**{summary_line(report)}**"
    errors = [error_line(org, plain, report.environment) for org in _errors(report)]
    if report.search_error is not None:
        errors.append(search_error_line(report))
    items = []
    if report.project.drifted:
        n = len(report.project.items)
        differ = "differs" if n == 1 else "differ"
        summary = f"{visible(report.project.file)}: {plural(n, 'item')} {differ}"
        items.append(details(f"{summary} ({_PROJECT_HINT})", project_lines(report.project)))
    drifted = _drifted(report)
    items += [details(f"{_label(org)}: {_org_counts(org)}", drift_lines(org)) for org in drifted]
    if report.unmanaged:
        items.append(_unmanaged_details(report.unmanaged))
    items = errors + items
    shown = fit([len(item) + 2 for item in items], MARKDOWN_LIMIT - len(head) - MARKDOWN_RESERVE)
    parts = [head]
    if shown and errors:
        parts.append(fence(items[: min(shown, len(errors))]))
    parts += items[len(errors) : shown]
    if shown < len(items):
        left_out = len(items) - shown
        parts.append(
            f"_{left_out} more {'entry' if left_out == 1 else 'entries'} left out to stay "
            f"under {MARKDOWN_LIMIT:,} characters: see the JSON report (`--report FILE`)._"
        )
    return "\n\n".join(parts)


def render_json(report: DriftReport) -> str:
    return report.model_dump_json(indent=2)


DRIFT_RENDERERS: dict[str, DriftRenderer] = {
    "text": render_text,
    "markdown": render_markdown,
    "json": render_json,
}
