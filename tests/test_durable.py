"""durable: whole files or none."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from policysync import durable


def test_replace_writes_the_whole_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "entry.json"
    target.write_bytes(b"old")
    durable.replace(target, b"new contents\n")
    assert target.read_bytes() == b"new contents\n"
    assert [p.name for p in tmp_path.iterdir()] == ["entry.json"]


def test_a_failed_replace_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "entry.json"
    target.mkdir()  # a folder cannot be replaced by a file
    with pytest.raises(IsADirectoryError):
        durable.replace(target, b"new")
    assert target.is_dir()
    assert [p.name for p in tmp_path.iterdir()] == ["entry.json"]


def test_write_and_rename_all_writes_every_file_then_syncs_each_then_renames_each(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Files synced one after another share the disk writes of their common blocks: the
    steps go file by file within each step, not step by step within each file."""
    events: list[str] = []
    real_write, real_fsync, real_replace = os.write, os.fsync, os.replace

    def write(fd: int, data: Any) -> int:
        events.append("write")
        return real_write(fd, data)

    def fsync(fd: int) -> None:
        events.append("fsync")
        real_fsync(fd)

    def replace(src: Any, dst: Any) -> None:
        events.append("rename")
        real_replace(src, dst)

    monkeypatch.setattr(os, "write", write)
    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    files = [(tmp_path / f"org-{i}.json", b"{}" * i + b"\n") for i in range(3)]
    assert durable.write_and_rename_all(files) == [None, None, None]
    assert events == ["write"] * 3 + ["fsync"] * 3 + ["rename"] * 3
    assert all(path.read_bytes() == data for path, data in files)


def test_write_and_rename_all_reports_each_failure_and_writes_the_others(
    tmp_path: Path,
) -> None:
    (tmp_path / "folder.json").mkdir()  # cannot be replaced by a file
    files = [
        (tmp_path / "a.json", b"a"),
        (tmp_path / "missing" / "b.json", b"b"),  # no such folder
        (tmp_path / "folder.json", b"c"),
        (tmp_path / "d.json", b"d"),
    ]
    errors = durable.write_and_rename_all(files)
    assert errors[0] is None
    assert errors[3] is None
    assert isinstance(errors[1], FileNotFoundError)
    assert isinstance(errors[2], IsADirectoryError)
    assert (tmp_path / "a.json").read_bytes() == b"a"
    assert (tmp_path / "d.json").read_bytes() == b"d"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "d.json", "folder.json"]
