"""`policysync test`, as a function: validate the tree and the test files, then judge
every assertion offline.

The tree is validated first, as `plan` does (organization files, the project policy or
vocabulary, the house rules), with the test files: an error anywhere stops the run
before any assertion is judged, since a test of an invalid tree would say nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from policysync.config import Settings
from policysync.diagnostics import sort_diagnostics
from policysync.formats import file_format
from policysync.layout import TESTS_DIR, is_org_file_name
from policysync.report import ValidationReport
from policysync.testreport import SuiteReport
from policysync.testsuite import read_suite, run_suite, suite_paths
from policysync.validate import house_rules_of


class SuiteRun(NamedTuple):
    report: ValidationReport  # what validation found (warnings, or the errors that stopped it)
    result: SuiteReport | None  # None when the files are invalid
    notes: list[str]


def run_tests(settings: Settings, paths: Sequence[Path]) -> SuiteRun:
    """The test files `paths` (files, or folders of them; none: the policies folder's
    `tests/`), run against the policies folder of `settings`."""
    root = Path(settings.policies)
    rules, diagnostics = house_rules_of(settings)
    checked = file_format(settings.provider).validate_tree(root, settings.limits, None, rules)
    chosen = named_files(paths) if paths else suite_paths(root, diagnostics)
    suite = read_suite(root, chosen, settings)
    report = ValidationReport.build(
        sort_diagnostics(diagnostics + checked.diagnostics + suite.diagnostics),
        checked.files_checked + len(chosen),
        checked.organizations,
        strict=False,
    )
    notes = []
    if not chosen:
        where = ", ".join(map(str, paths)) if paths else str(root / TESTS_DIR)
        notes.append(
            f"no policy tests in {where}: add a JSON file of tests there "
            '(README.md, "Policy tests")'
        )
    if not report.valid:
        return SuiteRun(report, None, notes)
    return SuiteRun(report, run_suite(suite), notes)


def named_files(paths: Sequence[Path]) -> list[Path]:
    """The test files `paths` name: a file as it is, a folder's `.json` files (not the
    hidden ones), in name order."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += sorted(p for p in path.iterdir() if is_org_file_name(p.name) and p.is_file())
        else:
            found.append(path)
    return list(dict.fromkeys(found))
