"""The journal's writer process: files replaced durably for an event loop.

`Writer` does what `durable.replace` does for an event loop writing many files at once
(the journal of an apply), in a process of its own (`python -m policysync.writer`): the
loop sends each file down a pipe and awaits the process's word that it is durable.
Threads of the loop's own process did that work first, but a thread coming back from each of its
system calls (open, write, fsync, close, rename, fsync) waits for the GIL, which the
busy loop holds: a write that takes ~1 ms alone took 12-25 ms during an apply, and the
apply waits for it before each PUT. The writer process holds nothing but what it is
sent; it ignores Ctrl-C (the apply decides when to stop) and exits when its input ends,
once every file it was sent is written, even if the apply was killed. Its pipes are
connected to the event loop as POSIX pipes (`connect_read_pipe`); Windows' proactor
loop would need asyncio's subprocess API instead (not done: untested there).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import signal
import struct
import subprocess
import sys
import threading
from collections import deque
from pathlib import Path
from typing import BinaryIO

from policysync.durable import fsync_folder, write_and_rename_all

# A file to write: request id, length of its path (file system encoding), of its data,
# and its rank: URGENT (something waits for it: a journal entry before its PUT) or LATER;
# the writer process has a writing thread for each rank.
_REQUEST = struct.Struct("!IIIB")
URGENT, LATER = 0, 1
BATCH = 32  # files written together, at most
_Job = tuple[int, bytes, bytes]  # request id, path, data
# The outcome: request id, errno (0: written; -1: an error without one), message length.
_ANSWER = struct.Struct("!IiI")


class WriterError(OSError):
    """The writer process could not be started, or stopped before answering."""


class Writer:
    """`await writer.replace(path, data, rank)`: `replace`, done by the writer process,
    which starts with the first file (or at `spawn()`). Call `close()` when done: it
    ends the process once the files sent are written. A closed writer starts a new
    process when used again."""

    def __init__(self) -> None:
        self._ids = itertools.count()
        self._waiting: dict[int, asyncio.Future[None]] = {}
        self._process: subprocess.Popen[bytes] | None = None
        self._pipe: asyncio.WriteTransport | None = None
        self._answers: _Answers | None = None
        self._connecting: asyncio.Future[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._unsent: list[bytes] = []

    async def replace(self, path: Path, data: bytes, rank: int = URGENT) -> None:
        if self._loop is not None and self._loop is not asyncio.get_running_loop():
            self.close()  # its pipes belong to the last event loop: a new process
        if self._pipe is None:
            if self._connecting is None:
                self._connecting = asyncio.ensure_future(self._connect())
            try:
                await asyncio.shield(self._connecting)
            except BaseException:
                self._connecting = None  # the next file tries again
                raise
        assert self._pipe is not None
        if self._answers is None or self._answers.lost:
            raise WriterError("the journal's writer process stopped: no file can be written")
        ident = next(self._ids) % 2**32
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting[ident] = done
        name = os.fsencode(path)
        if not self._unsent:  # sent at the end of the event loop's turn, with the others
            asyncio.get_running_loop().call_soon(self._send)
        self._unsent.append(_REQUEST.pack(ident, len(name), len(data), rank) + name + data)
        try:
            await done
        finally:
            self._waiting.pop(ident, None)

    def _send(self) -> None:
        """One write to the pipe for every file asked for in the loop's turn: each write
        wakes the writer process, which cost the loop more than the copying."""
        unsent, self._unsent = self._unsent, []
        if self._pipe is not None and not self._pipe.is_closing():
            self._pipe.write(b"".join(unsent))

    def spawn(self) -> None:
        """Start the writer process now (it takes ~50 ms), not with the first file."""
        if self._process is not None:
            return
        env = {k: v for k, v in os.environ.items() if not k.startswith("STYTCH_")}
        command = [sys.executable, "-P", "-m", "policysync.writer"]  # -P: not the cwd's
        try:
            self._process = subprocess.Popen(
                command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env
            )
        except OSError as exc:
            raise WriterError(f"cannot start the journal's writer process: {exc}") from exc

    async def _connect(self) -> None:
        """The writer process's input as a transport, its answers as a protocol."""
        self.spawn()
        process = self._process
        assert process is not None
        assert process.stdin is not None
        assert process.stdout is not None
        loop = asyncio.get_running_loop()
        self._waiting = {}  # this process's waiters only: an old one's end fails none
        answers = _Answers(self._waiting)
        await loop.connect_read_pipe(lambda: answers, process.stdout)
        pipe, _ = await loop.connect_write_pipe(asyncio.Protocol, process.stdin)
        self._pipe, self._answers, self._loop = pipe, answers, loop

    def close(self) -> None:
        """End the writer process, once every file sent is written. Call it after the
        last `replace` returned (what is still unsent is dropped)."""
        process, pipe, answers = self._process, self._pipe, self._answers
        self._process = self._pipe = self._answers = self._connecting = self._loop = None
        self._unsent = []
        if process is None:
            return
        with contextlib.suppress(RuntimeError):  # the event loop is closed already
            if pipe is not None and not pipe.is_closing():
                pipe.abort()
            if answers is not None:
                answers.close()
        assert process.stdin is not None
        assert process.stdout is not None
        process.stdin.close()  # its input ends now: it writes what it has, then exits
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        process.stdout.close()


class _Answers(asyncio.Protocol):
    """The writer process's answers, each settling the future waiting for it."""

    def __init__(self, waiting: dict[int, asyncio.Future[None]]) -> None:
        self._waiting = waiting
        self._buffer = bytearray()
        self._transport: asyncio.BaseTransport | None = None
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        size = _ANSWER.size
        while len(self._buffer) >= size:
            ident, code, length = _ANSWER.unpack_from(self._buffer)
            if len(self._buffer) < size + length:
                return
            message = self._buffer[size : size + length].decode("utf-8", "replace")
            del self._buffer[: size + length]
            done = self._waiting.get(ident)
            if done is None or done.done():
                continue  # its waiter was cancelled: the file was written all the same
            if code == 0:
                done.set_result(None)
            else:
                done.set_exception(OSError(code, message) if code > 0 else OSError(message))

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        error = WriterError("the journal's writer process stopped before writing the file")
        for done in self._waiting.values():
            if not done.done():
                done.set_exception(error)

    def close(self) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.close()


def serve(source: BinaryIO, sink: BinaryIO) -> None:
    """The writer process: files to write from `source`, their outcomes to `sink`, until
    `source` ends; then every file read is written before it returns.

    This thread reads the requests; two others write them, one the URGENT files and one
    those to write LATER, so that an urgent file never waits behind the others. Each
    takes every file of its rank waiting (up to BATCH): writes them, fsyncs them, renames
    them (`write_and_rename_all`: files synced together share their disk writes), fsyncs
    their folder once (a group commit), then answers for them all."""
    waiting: tuple[deque[_Job], deque[_Job]] = (deque(), deque())  # URGENT, LATER
    ready = threading.Condition()
    ended = False

    def write(rank: int) -> None:
        jobs = waiting[rank]
        while True:
            with ready:
                ready.wait_for(lambda: ended or jobs)
                if not jobs:
                    return  # ended, and every file of this rank is written
                batch = [jobs.popleft() for _ in range(min(BATCH, len(jobs)))]
            _store(batch, sink)

    writers = [
        threading.Thread(target=write, args=(rank,), daemon=True) for rank in (URGENT, LATER)
    ]
    for thread in writers:
        thread.start()
    try:
        while len(head := source.read(_REQUEST.size)) == _REQUEST.size:
            ident, name_length, data_length, rank = _REQUEST.unpack(head)
            name, data = source.read(name_length), source.read(data_length)
            if len(name) != name_length or len(data) != data_length:
                break  # cut short: the apply died mid-request, which it never waited on
            with ready:
                waiting[min(rank, LATER)].append((ident, name, data))
                ready.notify_all()
    finally:
        with ready:
            ended = True
            ready.notify_all()
        for thread in writers:
            thread.join()


_answering = threading.Lock()  # the two writing threads answer down one pipe


def _store(batch: list[_Job], sink: BinaryIO) -> None:
    """Write `batch`, fsync the folders it renamed into, then answer for each file."""
    files = [(Path(os.fsdecode(name)), data) for _, name, data in batch]
    try:
        errors = write_and_rename_all(files)
    except Exception as exc:  # answered all the same: the apply must not hang
        errors = [OSError(f"{type(exc).__name__}: {exc}")] * len(batch)
    failed: dict[Path, OSError] = {}
    for folder in {
        path.parent for (path, _), error in zip(files, errors, strict=True) if not error
    }:
        try:
            fsync_folder(folder)
        except OSError as exc:
            failed[folder] = exc
    answers = b"".join(
        _answer(ident, error or failed.get(path.parent))
        for (ident, _, _), (path, _), error in zip(batch, files, errors, strict=True)
    )
    with _answering, contextlib.suppress(OSError):  # the apply is gone: answer none
        sink.write(answers)
        sink.flush()


def _answer(ident: int, error: OSError | None) -> bytes:
    if error is None:
        return _ANSWER.pack(ident, 0, 0)
    text = (error.strerror or str(error)).encode("utf-8", "replace")
    return _ANSWER.pack(ident, error.errno or -1, len(text)) + text


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    serve(sys.stdin.buffer, sys.stdout.buffer)
    # Every file is written and answered: skip the interpreter's teardown, which the
    # apply would wait for (its wait for this process to end: 32 ms before, 4-8 ms after).
    os._exit(0)
