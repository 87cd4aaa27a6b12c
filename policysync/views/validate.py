"""Renderers: one per output format, chosen from one registry.

A renderer turns a result value into the text to print; it never decides exit codes
and never touches the terminal. Colour is added as ANSI styles that the CLI strips
when the output is not a terminal.
"""

from __future__ import annotations

from collections.abc import Callable

import click

from policysync.diagnostics import Severity
from policysync.report import DiagnosticRecord, ValidationReport
from policysync.views.common import plural, visible

Renderer = Callable[[ValidationReport], str]

_COLOURS = {Severity.ERROR: "red", Severity.WARNING: "yellow"}


def _summary(report: ValidationReport) -> str:
    files = plural(report.files_checked, "file")
    if report.valid and not report.diagnostics:
        return f"{files} valid ({plural(report.organizations, 'organization')})."
    counts = f"{plural(report.error_count, 'error')}, {plural(report.warning_count, 'warning')}"
    verdict = "valid" if report.valid else "invalid"
    strict = (
        " (--strict: warnings count as errors)" if report.strict and report.warning_count else ""
    )
    return f"{counts} in {files}: {verdict}{strict}."


def render_text(report: ValidationReport) -> str:
    lines = []
    for d in report.diagnostics:
        place = click.style(f"{visible(d.file)}:{d.line}:{d.column}:", bold=True)
        level = click.style(f"{d.severity}[{d.code}]", fg=_COLOURS[d.severity], bold=True)
        lines.append(f"{place} {level} {_message(d)}")
    colour = "green" if report.valid else "red"
    lines.append(click.style(_summary(report), fg=colour, bold=True))
    return "\n".join(lines)


def _message(d: DiagnosticRecord) -> str:
    """The message and where in the file, on one line: a file name or a key may hold a
    line break or a terminal's escape."""
    where = f" (at {d.pointer})" if d.pointer else ""
    return visible(d.message + where)


def render_json(report: ValidationReport) -> str:
    return report.model_dump_json(indent=2)


def _escape_data(value: str) -> str:
    """A workflow command's value as the runner decodes it (%25, %0D, %0A): a line break
    would end the command."""
    return value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(value: str) -> str:
    return _escape_data(value).replace(":", "%3A").replace(",", "%2C")


def workflow_command(
    severity: str, file: str, line: int, column: int, title: str, message: str
) -> str:
    """A GitHub Actions annotation of `file` at `line` and `column`."""
    props = ",".join(
        f"{k}={_escape_property(v)}"
        for k, v in (("file", file), ("line", str(line)), ("col", str(column)), ("title", title))
    )
    return f"::{severity} {props}::{_escape_data(message)}"


def _workflow_command(d: DiagnosticRecord) -> str:
    return workflow_command(
        d.severity, visible(d.file), d.line, d.column, f"policysync {d.code}", _message(d)
    )


def render_github(report: ValidationReport) -> str:
    """GitHub Actions workflow commands, which annotate the lines of a pull request."""
    return "\n".join([*map(_workflow_command, report.diagnostics), _summary(report)])


VALIDATE_RENDERERS: dict[str, Renderer] = {
    "text": render_text,
    "json": render_json,
    "github": render_github,
}
