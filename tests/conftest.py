from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from hypothesis import settings

ROOT = Path(__file__).parent.parent

# The suite gates every landing, so by default its property tests draw the same examples
# on every run and every machine (a rare example found at random once made a fresh-clone
# run fail). HYPOTHESIS_PROFILE=explore draws new ones each run, to look for bugs.
settings.register_profile("deterministic", derandomize=True, database=None)
settings.register_profile("explore")
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "deterministic"))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        help="rewrite the golden files under tests/golden/: the case folders' expected files "
        "and the renderings",
    )


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden"))


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the sample `policies/`, as the current folder."""
    shutil.copytree(ROOT / "policies", tmp_path / "policies")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(autouse=True)
def colour_by_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """No colour setting from the environment the suite runs in (a CI job's FORCE_COLOR,
    a TERM=dumb): output is coloured only where a test makes a stream a terminal, or
    sets one of these itself."""
    for name in ("NO_COLOR", "FORCE_COLOR", "TERM"):
        monkeypatch.delenv(name, raising=False)
