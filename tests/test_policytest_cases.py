"""Golden outputs of `policysync test`, in every format, under tests/golden/test/.

Each case is a folder: `tree` names the policy tree it runs against (a path from the
repository's top; `policies` when absent), copied as `policies/` into a fresh folder;
the case's `tests/` (when it has one) replaces the tree's; its `policysync.toml` (when
it has one) is the settings. `expected.{txt,json,github,xml}` are stdout of `--format
text|json|github|junit`, `stderr.txt` is stderr of the text run and `exit-code` the
exit code (the same for every format). `pytest --update-golden` rewrites them; review
the diff before committing.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from support.clirun import run
from support.plancases import check_golden

ROOT = Path(__file__).parent.parent
CASES = ROOT / "tests" / "golden" / "test"
FORMATS = {"text": "txt", "json": "json", "github": "github", "junit": "xml"}


def case_dirs() -> list[Path]:
    return sorted(p for p in CASES.iterdir() if p.is_dir())


@pytest.fixture
def tree(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    case: Path = request.param
    named = case / "tree"
    source = ROOT / (named.read_text().strip() if named.is_file() else "policies")
    shutil.copytree(source, tmp_path / "policies")
    if (case / "tests").is_dir():
        shutil.rmtree(tmp_path / "policies" / "tests", ignore_errors=True)
        shutil.copytree(case / "tests", tmp_path / "policies" / "tests")
    if (case / "policysync.toml").is_file():
        shutil.copy(case / "policysync.toml", tmp_path / "policysync.toml")
    monkeypatch.chdir(tmp_path)
    return case


@pytest.mark.parametrize("tree", case_dirs(), ids=lambda p: p.name, indirect=True)
def test_case(tree: Path, update_golden: bool, capsys: pytest.CaptureFixture[str]) -> None:
    codes = set()
    for fmt, suffix in FORMATS.items():
        code, out, err = run(["test", "--format", fmt], capsys)
        codes.add(code)
        check_golden(tree / f"expected.{suffix}", out, update_golden)
        if fmt == "text":
            check_golden(tree / "stderr.txt", err, update_golden)
    assert len(codes) == 1, "every format exits alike"
    check_golden(tree / "exit-code", f"{codes.pop()}\n", update_golden)
    assert "Traceback" not in (tree / "stderr.txt").read_text()


def test_the_cases_cover_success_failure_zenml_and_invalid_files() -> None:
    exits = {case.name: (case / "exit-code").read_text().strip() for case in case_dirs()}
    assert exits == {"failures": "1", "invalid": "1", "sample": "0", "zenml": "1"}
