"""Validation cases: every case folder's diagnostics equal its expected.txt."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.casefiles import case_dirs, expected_lines, run_case

from policysync.diagnostics import CODES


@pytest.mark.parametrize("case", case_dirs(), ids=lambda p: p.name)
def test_case(case: Path, update_golden: bool) -> None:
    report = run_case(case)
    actual = expected_lines(report, case)
    expected_file = case / "expected.txt"
    if update_golden:
        expected_file.write_text(actual, encoding="utf-8")
    assert actual == expected_file.read_text(encoding="utf-8")
    if case.name.startswith("valid-"):
        assert report.error_count == 0
    else:
        assert report.diagnostics, "an invalid case must report something"


# Codes that need the live project policy, so no offline case can show them;
# tests/test_validate.py covers them.
ONLINE_CODES = {"project-stale"}


def test_corpus_covers_every_code() -> None:
    seen = {line.split()[2] for case in case_dirs() for line in (case / "expected.txt").open()}
    assert sorted(set(CODES) - seen - ONLINE_CODES) == []


def test_corpus_size() -> None:
    invalid = [c for c in case_dirs() if not c.name.startswith("valid-")]
    assert len(invalid) >= 40
