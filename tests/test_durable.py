"""durable: whole files or none."""

from __future__ import annotations

from pathlib import Path

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
