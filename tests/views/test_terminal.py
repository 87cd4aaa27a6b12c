"""Whether output is coloured: NO_COLOR, FORCE_COLOR, TERM=dumb, else each stream by
whether it is a terminal; decided once, in the CLI's entry point, for every command (the
streams apart: tests/commands/test_apply.py)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from support.clirun import run

from policysync.views.terminal import colour_choice

SAMPLE = Path(__file__).parent.parent.parent / "policies"
ANSI = "\x1b["


@pytest.mark.parametrize(
    ("environ", "choice"),
    [
        ({}, None),
        ({"TERM": "xterm-256color"}, None),
        ({"NO_COLOR": "1"}, False),
        ({"NO_COLOR": ""}, None),  # set but empty: as if unset (no-color.org)
        ({"FORCE_COLOR": "1"}, True),
        ({"FORCE_COLOR": "3"}, True),
        ({"FORCE_COLOR": ""}, None),
        ({"FORCE_COLOR": "0"}, False),
        ({"TERM": "dumb"}, False),
        ({"TERM": "dumb", "FORCE_COLOR": "1"}, True),
        ({"NO_COLOR": "1", "FORCE_COLOR": "1"}, False),
        ({"NO_COLOR": "", "TERM": "dumb"}, False),
    ],
)
def test_the_environment_decides_first(environ: dict[str, str], choice: bool | None) -> None:
    assert colour_choice(environ) is choice


CASES = {
    "terminal": (True, {}, True),
    "pipe": (False, {}, False),
    "terminal, NO_COLOR": (True, {"NO_COLOR": "1"}, False),
    "terminal, empty NO_COLOR": (True, {"NO_COLOR": ""}, True),
    "pipe, FORCE_COLOR": (False, {"FORCE_COLOR": "1"}, True),
    "terminal, FORCE_COLOR=0": (True, {"FORCE_COLOR": "0"}, False),
    "terminal, TERM=dumb": (True, {"TERM": "dumb"}, False),
    "pipe, TERM=dumb, FORCE_COLOR": (False, {"TERM": "dumb", "FORCE_COLOR": "1"}, True),
    "terminal, NO_COLOR and FORCE_COLOR": (True, {"NO_COLOR": "1", "FORCE_COLOR": "1"}, False),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_validate_text_is_coloured_as_the_environment_and_the_terminal_say(
    case: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    terminal, environ, coloured = CASES[case]
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: terminal)
    code, out, _ = run(["validate", str(SAMPLE)], capsys)
    assert code == 0
    assert (ANSI in out) is coloured, out
    assert re.sub(r"\x1b\[[0-9;]*m", "", out).strip() == "10 files valid (7 organizations)."
