"""The data-driven validation cases under tests/golden/validate/.

Each case is a folder holding `policies/` (a policy tree), optionally `policysync.toml`
(settings, e.g. lowered limits) and `expected.txt`: one line per diagnostic,
`FILE:LINE:COLUMN SEVERITY CODE POINTER`, FILE relative to the case folder.
A case whose name starts with `valid-` must have no error.
"""

from __future__ import annotations

from pathlib import Path

from policysync.config import Settings, load_settings
from policysync.report import ValidationReport
from policysync.validate import validate

CASES = Path(__file__).parent.parent / "golden" / "validate"


def case_dirs() -> list[Path]:
    return sorted(p for p in CASES.iterdir() if p.is_dir())


def case_settings(case: Path) -> Settings:
    config = case / "policysync.toml"
    return load_settings(config if config.is_file() else None)


def run_case(case: Path) -> ValidationReport:
    return validate([case / "policies"], case_settings(case), strict=False)


def expected_lines(report: ValidationReport, case: Path) -> str:
    prefix = str(case) + "/"
    lines = []
    for d in report.diagnostics:
        place = f"{d.file.removeprefix(prefix)}:{d.line}:{d.column}"
        lines.append(f"{place} {d.severity} {d.code} {d.pointer}".rstrip() + "\n")
    return "".join(lines)
