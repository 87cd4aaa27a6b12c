"""writer: the journal's writer process, both ends of its pipe."""

from __future__ import annotations

import asyncio
import io
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest

from policysync import writer as writing

T = TypeVar("T")
WRITER = [sys.executable, "-P", "-m", "policysync.writer"]


def request(ident: int, path: Path, data: bytes, rank: int = writing.URGENT) -> bytes:
    name = os.fsencode(path)
    return writing._REQUEST.pack(ident, len(name), len(data), rank) + name + data


def drive(writer: writing.Writer, main: Coroutine[Any, Any, T]) -> T:
    """Run `main` (30 s at most), then close `writer` whatever happened."""
    try:
        return asyncio.run(asyncio.wait_for(main, 30))
    finally:
        writer.close()


def answers(raw: bytes) -> list[tuple[int, int, str]]:
    out, size = [], writing._ANSWER.size
    while raw:
        ident, code, length = writing._ANSWER.unpack_from(raw)
        out.append((ident, code, raw[size : size + length].decode()))
        raw = raw[size + length :]
    return out


def test_serve_writes_each_file_and_answers_each_request(tmp_path: Path) -> None:
    good = [tmp_path / f"org-{i}.json" for i in range(20)]
    bad = tmp_path / "no-such-folder" / "org.json"
    frames = [
        request(i, path, path.name.encode() * 100, i % 2) for i, path in enumerate(good)
    ]  # both ranks
    frames.append(request(99, bad, b"x"))
    frames.append(request(7, tmp_path / "cut.json", b"whole")[:-2])  # the sender died
    sink = io.BytesIO()
    writing.serve(io.BytesIO(b"".join(frames)), sink)
    got = sorted(answers(sink.getvalue()))
    assert got[:-1] == [(i, 0, "") for i in range(20)]
    assert got[-1][:2] == (99, 2)  # ENOENT, with its message
    assert "No such file" in got[-1][2]
    assert all(path.read_bytes() == path.name.encode() * 100 for path in good)
    assert not (tmp_path / "cut.json").exists()  # a request cut short is not written


def test_the_writer_stores_many_files_at_once_and_reports_each_failure(tmp_path: Path) -> None:
    writer = writing.Writer()
    good = [tmp_path / f"org-{i}.json" for i in range(40)]
    bad = tmp_path / "no-such-folder" / "org.json"

    async def go() -> list[BaseException | None]:
        jobs = [writer.replace(path, path.name.encode()) for path in good]
        return await asyncio.gather(*jobs, writer.replace(bad, b"x"), return_exceptions=True)

    outcomes = drive(writer, go())
    assert outcomes[:-1] == [None] * len(good)
    assert isinstance(outcomes[-1], FileNotFoundError)
    assert all(path.read_bytes() == path.name.encode() for path in good)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([p.name for p in good])


def test_close_ends_the_process_and_a_writer_can_start_again(tmp_path: Path) -> None:
    writer = writing.Writer()
    asyncio.run(writer.replace(tmp_path / "a.json", b"a"))
    process = writer._process
    assert process is not None
    assert process.poll() is None  # it waits for more
    writer.close()
    assert process.returncode == 0
    asyncio.run(writer.replace(tmp_path / "b.json", b"b"))  # a new process
    assert writer._process is not process
    writer.close()
    assert (tmp_path / "b.json").read_bytes() == b"b"


def test_a_waiter_cancelled_meanwhile_does_not_break_the_others(tmp_path: Path) -> None:
    writer = writing.Writer()

    async def go() -> None:
        await writer.replace(tmp_path / "first.json", b"")  # connected: sent at once
        cancelled = asyncio.ensure_future(writer.replace(tmp_path / "a.json", b"a"))
        await asyncio.sleep(0)
        cancelled.cancel()
        await writer.replace(tmp_path / "b.json", b"b")

    drive(writer, go())
    assert (tmp_path / "b.json").read_bytes() == b"b"
    assert (tmp_path / "a.json").read_bytes() == b"a"  # sent before the cancel: written


def test_a_writer_process_gone_fails_the_waiters_instead_of_hanging(tmp_path: Path) -> None:
    writer = writing.Writer()

    async def go() -> None:
        await writer.replace(tmp_path / "a.json", b"a")
        assert writer._process is not None
        pending = asyncio.ensure_future(writer.replace(tmp_path / "b.json", b"b" * 10**6))
        await asyncio.sleep(0)
        writer._process.kill()
        with pytest.raises(writing.WriterError, match="stopped before writing"):
            await pending  # sent, never answered
        with pytest.raises(writing.WriterError, match="stopped: no file can be written"):
            await writer.replace(tmp_path / "c.json", b"c")

    drive(writer, go())


def test_the_process_writes_what_it_was_sent_after_the_apply_died(tmp_path: Path) -> None:
    """Killed mid-apply, the apply leaves the process its input's end: every file sent
    whole is written, quietly (nobody reads the answers any more)."""
    files = [tmp_path / f"org-{i}.json" for i in range(30)]
    with subprocess.Popen(
        WRITER, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    ) as process:
        assert process.stdin is not None
        assert process.stdout is not None
        process.stdout.close()  # the apply is gone: answering fails
        process.stdin.write(b"".join(request(i, p, b"{}") for i, p in enumerate(files)))
        process.stdin.close()
        assert process.wait(timeout=30) == 0
        assert process.stderr is not None
        assert process.stderr.read() == b""
    assert all(path.read_bytes() == b"{}" for path in files)


def test_the_process_ignores_ctrl_c_and_holds_no_stytch_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C reaches every process of the terminal's group: the apply decides when to
    stop, so the writer lives on until its input ends. It is given no credentials."""
    monkeypatch.setenv("STYTCH_SECRET", "secret-must-not-travel")
    writer = writing.Writer()

    async def go() -> None:
        await writer.replace(tmp_path / "a.json", b"a")
        assert writer._process is not None
        environment = Path(f"/proc/{writer._process.pid}/environ")
        if environment.exists():
            assert b"secret-must-not-travel" not in environment.read_bytes()
        writer._process.send_signal(signal.SIGINT)
        time.sleep(0.2)
        await writer.replace(tmp_path / "b.json", b"b")

    drive(writer, go())
    assert (tmp_path / "b.json").read_bytes() == b"b"


def test_files_renamed_together_share_one_folder_fsync_before_their_answers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A group commit: while the folder is being fsynced, the files renamed meanwhile
    wait for the next fsync, one for them all; no file is answered before a folder
    fsync that began after its rename."""
    events: list[tuple[str, object]] = []
    lock = threading.Lock()
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            with lock:
                events.append(("folder fsync", None))
            if sum(1 for kind, _ in events if kind == "folder fsync") == 1:
                time.sleep(0.3)  # the first one is slow: the others pile up meanwhile
        real_fsync(fd)

    def replace(src: str, dst: str) -> None:
        real_replace(src, dst)
        with lock:
            events.append(("renamed", Path(dst).name))

    class Sink(io.BytesIO):
        def write(self, data: bytes) -> int:  # type: ignore[override]
            with lock:
                events.extend(("answered", f"org-{i}.json") for i, _, _ in answers(data))
            return len(data)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    files = [tmp_path / f"org-{i}.json" for i in range(20)]
    source = io.BytesIO(b"".join(request(i, p, b"{}") for i, p in enumerate(files)))
    writing.serve(source, Sink())
    folder_fsyncs = [i for i, (kind, _) in enumerate(events) if kind == "folder fsync"]
    assert len(folder_fsyncs) <= 4  # not one per file
    for path in files:
        renamed = events.index(("renamed", path.name))
        answered = events.index(("answered", path.name))
        assert any(renamed < i < answered for i in folder_fsyncs), path.name


def test_files_asked_for_in_one_turn_of_the_loop_go_down_the_pipe_in_one_write(
    tmp_path: Path,
) -> None:
    writer = writing.Writer()
    writes: list[int] = []

    async def go() -> None:
        await writer.replace(tmp_path / "first.json", b"")  # connected
        pipe = writer._pipe
        assert pipe is not None
        real_write = pipe.write

        def counting(data: bytes | bytearray | memoryview) -> None:
            writes.append(len(data))
            real_write(data)

        pipe.write = counting  # type: ignore[method-assign]
        await asyncio.gather(*(writer.replace(tmp_path / f"{i}.json", b"x") for i in range(10)))

    drive(writer, go())
    assert len(writes) == 1
    assert all((tmp_path / f"{i}.json").read_bytes() == b"x" for i in range(10))


def test_a_writer_closed_and_used_again_in_the_same_loop_starts_afresh(
    tmp_path: Path,
) -> None:
    writer = writing.Writer()

    async def go() -> None:
        await writer.replace(tmp_path / "a.json", b"a")
        first = writer._process
        writer.close()  # the old process's pipes end on the loop's next turns
        await asyncio.gather(*(writer.replace(tmp_path / f"{i}.json", b"b") for i in range(5)))
        assert writer._process is not first

    drive(writer, go())
    assert all((tmp_path / f"{i}.json").read_bytes() == b"b" for i in range(5))


def test_an_urgent_file_does_not_wait_behind_files_to_write_later(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The journal's pending entries (URGENT: a PUT waits for each) have a writing
    thread of their own: sent after twenty files to write LATER whose fsyncs are slow,
    one is answered before any of those."""
    real_open, real_fsync = os.open, os.fsync
    slow: set[int] = set()  # descriptors of the LATER files' temporary files

    def opening(path: str, flags: int, mode: int = 0o777) -> int:
        fd = real_open(path, flags, mode)
        if Path(path).name.startswith(".later-"):
            slow.add(fd)
        return fd

    def fsync(fd: int) -> None:
        if fd in slow:
            time.sleep(0.05)
        real_fsync(fd)

    answered: list[int] = []

    class Sink(io.BytesIO):
        def write(self, data: bytes) -> int:  # type: ignore[override]
            answered.extend(ident for ident, _, _ in answers(data))
            return len(data)

    monkeypatch.setattr(os, "open", opening)
    monkeypatch.setattr(os, "fsync", fsync)
    frames = [request(i, tmp_path / f"later-{i}.json", b"{}", writing.LATER) for i in range(20)]
    frames.append(request(99, tmp_path / "urgent.json", b"{}", writing.URGENT))
    writing.serve(io.BytesIO(b"".join(frames)), Sink())
    assert sorted(answered) == [*range(20), 99]
    assert answered[0] == 99
