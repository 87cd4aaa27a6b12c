"""Symbolic links planted where policysync once wrote its temporary files.

`export` wrote `orgs/.X.json.tmp`, and `plan --out F` / `drift --report F` wrote `.F.tmp`:
fixed names, opened for writing, so a link committed there (`validate` skips dot files,
so a pull request can carry one unseen) sent the write wherever it pointed. Each command
now writes a random name created exclusively (durable.replace): a link at an old name is
left alone, and so is its target. (tests/support/planted.py covers a link planted at the
random name itself, had it been guessed: the write is refused.)

The other two writers are here too: the `.gitignore` a journal adds to `.policysync/`, and
the files of a commit laid out for `plan --against-ref` (git.materialize).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.clirun import run
from support.emulated import emulator
from support.planted import OUTSIDE

from policysync import git
from policysync.emulator.server import EmulatorThread
from policysync.errors import UsageError
from policysync.git import TreeFile
from policysync.journal import Journal

pytestmark = pytest.mark.skipif(
    sys.platform == "win32", reason="symbolic links need privileges there"
)

ORGS = Path("policies/orgs")


@pytest.fixture
def live(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[EmulatorThread]:
    with emulator(monkeypatch) as thread:
        yield thread


def make_outside(outside: Path) -> None:
    """A folder outside what policysync may write, holding one file."""
    outside.mkdir()
    (outside / "existing.txt").write_bytes(OUTSIDE)


def plant(links: list[Path], outside: Path) -> list[Path]:
    """Each of `links` pointing into `outside`: the first at its existing file (it would
    be overwritten), the others at names not yet made (they would be created)."""
    make_outside(outside)
    for number, link in enumerate(links):
        target = outside / ("existing.txt" if number == 0 else f"new-{number}.txt")
        link.symlink_to(target)
    return links


def untouched(links: list[Path], outside: Path) -> None:
    assert (outside / "existing.txt").read_bytes() == OUTSIDE
    assert sorted(p.name for p in outside.iterdir()) == ["existing.txt"]
    assert all(link.is_symlink() for link in links)  # not ours: left as they were


@pytest.mark.parametrize(
    ("argv", "written"),
    [
        (["plan", "--out", "plan.json"], "plan.json"),
        (["plan", "--out", "saved/plan.json"], "saved/plan.json"),
        (["drift", "--report", "drift.json"], "drift.json"),
    ],
)
def test_plan_out_and_drift_report_leave_a_link_at_the_old_temporary_name(
    live: EmulatorThread,
    workdir: Path,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    written: str,
) -> None:
    target = Path(written)
    target.parent.mkdir(exist_ok=True)
    old = target.with_name(f".{target.name}.tmp")
    links = plant([old], workdir.parent / f"{workdir.name}-outside")
    code, _, err = run(argv, capsys)
    assert code in (0, 2), err  # 2: drift found (the seed differs from the files)
    assert "cannot" not in err
    untouched(links, workdir.parent / f"{workdir.name}-outside")
    assert target.is_file()
    assert not target.is_symlink()
    assert target.read_bytes().startswith(b"{")
    assert [p.name for p in target.parent.iterdir() if p.name.endswith(".tmp")] == [old.name]


def test_export_leaves_links_at_the_old_temporary_names(
    live: EmulatorThread, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    names = sorted(p.name for p in ORGS.glob("*.json"))
    before = {name: (ORGS / name).read_bytes() for name in names}
    outside = workdir.parent / f"{workdir.name}-outside"
    links = plant([ORGS / f".{name}.tmp" for name in names], outside)
    code, _, err = run(["export"], capsys)
    assert code == 0, err
    untouched(links, outside)
    after = {name: (ORGS / name).read_bytes() for name in names}
    assert after != before  # the files were refreshed from live, beside the links
    assert not any((ORGS / name).is_symlink() for name in names)
    assert sorted(p.name for p in ORGS.iterdir() if p.name.endswith(".tmp")) == sorted(
        link.name for link in links
    )
    assert all(os.path.lexists(link) for link in links)


def test_a_journal_does_not_write_its_gitignore_through_a_planted_link(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    make_outside(outside)
    ignore = tmp_path / ".policysync" / ".gitignore"
    ignore.parent.mkdir()
    ignore.symlink_to(outside / "new-1.txt")  # dangling: `exists()` says no file is there
    Journal.create(
        tmp_path / ".policysync" / "journal",
        kind="apply",
        project_id="project-test-00000000-0000-4000-8000-000000000000",
        git_commit=None,
        git_dirty=None,
    )
    untouched([ignore], outside)


def link(path: str, to: Path) -> TreeFile:
    data = os.fsencode(to)
    return TreeFile(path, "link", len(data), data)


def test_a_committed_tree_is_never_laid_out_through_its_own_links(tmp_path: Path) -> None:
    """In git no two entries share a name, but a file system that ignores case takes
    `orgs/A.json` and `orgs/a.json` (or `orgs/Sub` and `orgs/sub/`) for one: here the
    trees are given as such a file system sees them."""
    outside = tmp_path / "outside"
    make_outside(outside)
    data = b'{"organization_id": "x"}'
    same_name = [
        TreeFile("orgs", "dir", 0, None),
        link("orgs/a.json", outside / "existing.txt"),  # orgs/A.json
        TreeFile("orgs/a.json", "file", len(data), data),
    ]
    with pytest.raises(UsageError, match=r"orgs/a\.json \(committed\): .* rename it in git"):
        git.materialize(same_name, tmp_path / "tree-1")
    through_folder = [
        TreeFile("orgs", "dir", 0, None),
        link("orgs/sub", outside),  # orgs/Sub
        TreeFile("orgs/sub/x.json", "file", len(data), data),
        TreeFile("orgs/sub/deeper/x.json", "file", len(data), data),
    ]
    with pytest.raises(UsageError, match=r"orgs/sub/x\.json \(committed\)"):
        git.materialize(through_folder, tmp_path / "tree-2")
    large = [TreeFile("orgs", "dir", 0, None), link("orgs/a.json", outside / "new-9.txt")]
    large.append(TreeFile("orgs/a.json", "file", 10**6, None))  # too large to read
    with pytest.raises(UsageError, match=r"orgs/a\.json"):
        git.materialize(large, tmp_path / "tree-3")
    assert (outside / "existing.txt").read_bytes() == OUTSIDE
    assert sorted(p.name for p in outside.iterdir()) == ["existing.txt"]
