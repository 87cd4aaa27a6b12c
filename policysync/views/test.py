"""Renderers of `policysync test`: text, json, github annotations and JUnit XML, each
from the one `SuiteReport`; and, for an invalid tree, what the formats made for CI
(github, junit) say instead.

Every failure is located at its assertion (`file:line:col`) and explained: which roles
grant what it denies, or what each role held grants on what it allows.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable

import click

from policysync.report import ValidationReport
from policysync.testreport import AssertionResult, CaseResult, SuiteReport
from policysync.views.common import plural, visible
from policysync.views.validate import render_github as render_invalid_github
from policysync.views.validate import workflow_command

Renderer = Callable[[SuiteReport], str]


def summary(report: SuiteReport) -> str:
    s = report.summary
    return f"{plural(s.tests, 'test')}, {plural(s.assertions, 'assertion')}: {s.failed} failed"


def _what(assertion: AssertionResult) -> str:
    return f"{assertion.expect} {assertion.resource}:{assertion.action}"


def _failures(report: SuiteReport) -> list[tuple[CaseResult, AssertionResult]]:
    return [(t, a) for t in report.tests for a in t.assertions if not a.passed]


def _message(test: CaseResult, assertion: AssertionResult) -> str:
    return visible(
        f"{test.name} ({test.organization}): {_what(assertion)}: {assertion.explanation}"
    )


def render_text(report: SuiteReport) -> str:
    lines = []
    for test, assertion in _failures(report):
        place = click.style(f"{visible(test.file)}:{assertion.line}:{assertion.column}:", bold=True)
        lines.append(
            f"{place} {click.style('FAIL', fg='red', bold=True)} {_message(test, assertion)}"
        )
    colour = "green" if report.passed else "red"
    lines.append(click.style(summary(report), fg=colour, bold=True))
    return "\n".join(lines)


def render_json(report: SuiteReport) -> str:
    return report.model_dump_json(indent=2)


def render_github(report: SuiteReport) -> str:
    """An error annotation at each failing assertion, then the summary."""
    lines = [
        workflow_command(
            "error",
            visible(test.file),
            assertion.line,
            assertion.column,
            "policysync test",
            _message(test, assertion),
        )
        for test, assertion in _failures(report)
    ]
    return "\n".join([*lines, summary(report)])


def render_junit(report: SuiteReport) -> str:
    """JUnit XML: a testsuite per test file, a testcase per test, a failure listing the
    assertions that do not hold (each at its line, explained)."""
    failed_tests = report.summary.failed_tests
    root = _element(
        "testsuites",
        name="policysync test",
        tests=len(report.tests),
        failures=failed_tests,
        errors=0,
    )
    for file in report.files:
        tests = [t for t in report.tests if t.file == file]
        suite = _child(
            root,
            "testsuite",
            name=file,
            tests=len(tests),
            failures=sum(not t.passed for t in tests),
            errors=0,
            skipped=0,
        )
        for test in tests:
            case = _child(
                suite, "testcase", name=test.name, classname=file, file=file, line=test.line
            )
            failed = [a for a in test.assertions if not a.passed]
            if failed:
                message = f"{len(failed)} of {plural(len(test.assertions), 'assertion')} failed"
                failure = _child(case, "failure", message=message, type="assertion")
                failure.text = "\n".join(
                    visible(f"{file}:{a.line}:{a.column}: {_what(a)}: {a.explanation}")
                    for a in failed
                )
    return _document(root)


def render_junit_invalid(report: ValidationReport) -> str:
    """JUnit XML for a tree whose files are invalid: a testcase per file with errors,
    each error listed, so that a CI test report says why no test ran."""
    errors = [d for d in report.diagnostics if d.severity == "error"]
    files = list(dict.fromkeys(d.file for d in errors))
    root = _element(
        "testsuites", name="policysync test", tests=len(files), failures=0, errors=len(files)
    )
    suite = _child(
        root,
        "testsuite",
        name="policysync validate",
        tests=len(files),
        failures=0,
        errors=len(files),
        skipped=0,
    )
    for file in files:
        mine = [d for d in errors if d.file == file]
        case = _child(suite, "testcase", name=file, classname="policysync validate", file=file)
        error = _child(
            case,
            "error",
            message=f"{plural(len(mine), 'error')}: the file is invalid",
            type="invalid",
        )
        error.text = "\n".join(
            visible(f"{d.file}:{d.line}:{d.column}: {d.code}: {d.message}") for d in mine
        )
    return _document(root)


def _element(tag: str, **attributes: str | int) -> ET.Element:
    return ET.Element(tag, {k: visible(str(v)) for k, v in attributes.items()})


def _child(parent: ET.Element, tag: str, **attributes: str | int) -> ET.Element:
    element = _element(tag, **attributes)
    parent.append(element)
    return element


def _document(root: ET.Element) -> str:
    # `visible` leaves no character XML 1.0 forbids; ElementTree escapes the rest.
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode")


TEST_RENDERERS: dict[str, Renderer] = {
    "text": render_text,
    "json": render_json,
    "github": render_github,
    "junit": render_junit,
}

# What the formats made for CI print on stdout when the files are invalid (every
# format also has the diagnostics on stderr).
INVALID_RENDERERS: dict[str, Callable[[ValidationReport], str]] = {
    "github": render_invalid_github,
    "junit": render_junit_invalid,
}
