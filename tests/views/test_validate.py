"""Golden renderings of `validate` in every format (`pytest --update-golden` rewrites them)."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from support.casefiles import CASES

from policysync.cli import main
from policysync.diagnostics import Severity
from policysync.report import DiagnosticRecord, ValidationReport
from policysync.views.validate import VALIDATE_RENDERERS

ROOT = Path(__file__).parent.parent.parent
SAMPLE_BROKEN = CASES / "sample-broken"
SUFFIX = {"text": "txt", "json": "json", "github": "github.txt"}


@pytest.mark.parametrize("fmt", sorted(VALIDATE_RENDERERS))
def test_rendering_of_the_broken_sample(
    fmt: str,
    update_golden: bool,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(ROOT)  # paths are printed as given: relative to the repository
    with pytest.raises(SystemExit) as exited:
        main(["validate", "tests/golden/validate/sample-broken/policies", "--format", fmt])
    assert exited.value.code == 1
    out = capsys.readouterr().out
    golden = SAMPLE_BROKEN / f"rendered.{SUFFIX[fmt]}"
    if update_golden:
        golden.write_text(out, encoding="utf-8")
    assert out == golden.read_text(encoding="utf-8")


def test_every_format_has_a_golden_file() -> None:
    assert set(SUFFIX) == set(VALIDATE_RENDERERS)


def test_names_messages_and_pointers_cannot_forge_lines_or_drive_the_terminal() -> None:
    hostile = "a\n0 errors, 0 warnings in 1 file: valid.\r\x1b[2J\u202e\u200b"
    record = DiagnosticRecord(
        file=f"orgs/{hostile}.json",
        line=1,
        column=2,
        pointer=f"/org_policy/{hostile}",
        code="schema-unknown-field",
        severity=Severity.ERROR,
        message=f"unknown field {hostile}",
    )
    report = ValidationReport.build([], 1, 1, False).model_copy(
        update={"diagnostics": (record,), "valid": False, "error_count": 1}
    )
    for fmt in ("text", "github"):
        out = click.unstyle(VALIDATE_RENDERERS[fmt](report))
        assert [c for c in out if not c.isprintable() and c != "\n"] == [], fmt
        first, summary = out.splitlines()
        assert summary == "1 error, 0 warnings in 1 file: invalid."
        assert "\\x1b[2J\\u202e\\u200b" in first
    github = VALIDATE_RENDERERS["github"](report)
    assert github.startswith("::error file=orgs/a\\n0 errors%2C 0 warnings in 1 file%3A valid.")
    (exact,) = json.loads(VALIDATE_RENDERERS["json"](report))["diagnostics"]
    assert exact == record.model_dump(mode="json")  # JSON escapes what it must, and no more
