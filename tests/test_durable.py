"""durable: whole files or none, through a temporary file nobody can plant."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest

from policysync import durable


def test_replace_writes_the_whole_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "entry.json"
    target.write_bytes(b"old")
    durable.replace(target, b"new contents\n")
    assert target.read_bytes() == b"new contents\n"
    assert [p.name for p in tmp_path.iterdir()] == ["entry.json"]


def test_a_failed_replace_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "entry.json"
    target.mkdir()  # a folder cannot be replaced by a file
    with pytest.raises((IsADirectoryError, PermissionError)):  # PermissionError: Windows
        durable.replace(target, b"new")
    assert target.is_dir()
    assert [p.name for p in tmp_path.iterdir()] == ["entry.json"]


def test_a_failed_fsync_leaves_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "entry.json"
    target.write_bytes(b"old")

    def failing(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", failing)
    with pytest.raises(OSError, match="Input/output"):
        durable.replace(target, b"new")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["entry.json"]


def test_temporary_names_are_random_dot_files_beside_the_target(tmp_path: Path) -> None:
    target = tmp_path / "plan.json"
    names = {durable.temporary_name(target) for _ in range(100)}
    assert len(names) == 100
    assert all(name.parent == tmp_path and name.name.startswith(".plan.json.") for name in names)


@pytest.mark.skipif(sys.platform == "win32", reason="symbolic links need privileges there")
def test_a_symlink_planted_at_the_temporary_name_is_not_followed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Someone who can write to the folder, and guessed the temporary name, links it to
    a file elsewhere: the write fails, the file elsewhere is untouched, and the link
    (not ours) stays."""
    folder, outside = tmp_path / "out", tmp_path / "victim.txt"
    folder.mkdir()
    outside.write_bytes(b"precious")
    target = folder / "report.json"
    planted = folder / ".report.json.guessed.tmp"
    planted.symlink_to(outside)
    monkeypatch.setattr(durable, "temporary_name", lambda path: planted)
    with pytest.raises(FileExistsError):
        durable.replace(target, b"attacker wants this elsewhere")
    assert outside.read_bytes() == b"precious"
    assert not target.exists()
    assert planted.is_symlink()
    dangling = folder / ".report.json.dangling.tmp"  # a link to a file not made yet
    dangling.symlink_to(tmp_path / "new-victim.txt")
    monkeypatch.setattr(durable, "temporary_name", lambda path: dangling)
    with pytest.raises(FileExistsError):
        durable.replace(target, b"x")
    assert not (tmp_path / "new-victim.txt").exists()


def test_the_file_is_fsynced_then_renamed_then_its_folder_fsynced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events: list[tuple[str, int | str]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        info = os.fstat(fd)
        events.append(("dir" if stat.S_ISDIR(info.st_mode) else "file", info.st_ino))
        real_fsync(fd)

    def replace(src: str, dst: str) -> None:
        events.append(("replace", Path(dst).name))
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    target = tmp_path / "entry.json"
    durable.replace(target, b"{}")
    expected: list[tuple[str, int | str]] = [
        ("file", target.stat().st_ino),  # the renamed file is the synced one
        ("replace", "entry.json"),
    ]
    if os.name != "nt":
        expected.append(("dir", tmp_path.stat().st_ino))
    assert events == expected


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")
def test_a_new_file_gets_the_mode_asked_for(tmp_path: Path) -> None:
    durable.replace(tmp_path / "private.json", b"{}", 0o600)
    assert stat.S_IMODE((tmp_path / "private.json").stat().st_mode) == 0o600
