"""durable: whole files or none, and the writer thread's batches."""

from __future__ import annotations

import asyncio
import threading
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


def test_the_writer_stores_many_files_at_once_and_reports_each_failure(tmp_path: Path) -> None:
    writer = durable.Writer(threads=2)
    good = [tmp_path / f"org-{i}.json" for i in range(40)]
    bad = tmp_path / "no-such-folder" / "org.json"

    async def go() -> list[BaseException | None]:
        jobs = [writer.replace(path, path.name.encode()) for path in good]
        return await asyncio.gather(*jobs, writer.replace(bad, b"x"), return_exceptions=True)

    try:
        outcomes = asyncio.run(asyncio.wait_for(go(), 10))
    finally:
        writer.close()
    assert outcomes[:-1] == [None] * len(good)
    assert isinstance(outcomes[-1], FileNotFoundError)
    assert all(path.read_bytes() == path.name.encode() for path in good)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([p.name for p in good])


def test_close_stops_the_threads_and_a_writer_can_start_again(tmp_path: Path) -> None:
    writer = durable.Writer(threads=3)
    before = set(threading.enumerate())
    asyncio.run(writer.replace(tmp_path / "a.json", b"a"))
    started = set(threading.enumerate()) - before
    assert sorted(t.name for t in started) == ["journal-0", "journal-1", "journal-2"]
    writer.close()
    assert not any(t.is_alive() for t in started)
    asyncio.run(writer.replace(tmp_path / "b.json", b"b"))  # restarts its threads
    writer.close()
    assert (tmp_path / "b.json").read_bytes() == b"b"


def test_a_waiter_cancelled_meanwhile_does_not_break_the_batch(tmp_path: Path) -> None:
    writer = durable.Writer(threads=1)

    async def go() -> None:
        cancelled = asyncio.ensure_future(writer.replace(tmp_path / "a.json", b"a"))
        await asyncio.sleep(0)
        cancelled.cancel()
        await writer.replace(tmp_path / "b.json", b"b")

    try:
        asyncio.run(asyncio.wait_for(go(), 10))
    finally:
        writer.close()
    assert (tmp_path / "b.json").read_bytes() == b"b"
    assert (tmp_path / "a.json").read_bytes() == b"a"  # queued before the cancel: written
