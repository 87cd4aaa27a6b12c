"""The README documents every diagnostic code and every limit, exactly."""

from __future__ import annotations

import re
from pathlib import Path

from policysync.config import Limits
from policysync.diagnostics import CODES

README = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")


def table_rows(first_column: str) -> list[list[str]]:
    rows = []
    for line in README.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if re.fullmatch(first_column, cells[0]):
            rows.append(cells)
    return rows


def test_every_code_is_documented_with_its_severity_and_meaning() -> None:
    documented = {r[0].strip("`"): (r[1], r[2]) for r in table_rows(r"`[a-z0-9-]+`")}
    documented = {k: v for k, v in documented.items() if not k.startswith("max_")}
    assert documented == {code: (str(c.severity), c.summary) for code, c in CODES.items()}


def test_every_limit_is_documented_with_its_default() -> None:
    documented = {r[0].strip("`"): r[1] for r in table_rows(r"`max_[a-z_]+`")}
    assert documented == {name: str(f.default) for name, f in Limits.model_fields.items()}


def test_quick_start_names_the_two_commands() -> None:
    quick_start = README.split("## Quick start", 1)[1].split("##", 1)[0]
    assert "make demo" in quick_start
    assert "make test" in quick_start
