"""Golden renderings of `validate` in every format (`pytest --update-golden` rewrites them)."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.casefiles import CASES

from policysync.cli import main
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
