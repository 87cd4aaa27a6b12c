"""Running the CLI in-process, as a user's shell would: exit code, stdout, stderr."""

from __future__ import annotations

import pytest

from policysync.cli import main


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    out, err = capsys.readouterr()
    assert isinstance(exited.value.code, int)
    return exited.value.code, out, err
