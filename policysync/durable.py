"""Files replaced atomically and durably: one at a time, or many at once from asyncio.

`replace(path, data)` writes a temporary file in the same folder, fsyncs it, renames it
over `path` (atomic) and fsyncs the folder (the rename is an entry of the folder). A
reader sees the old file or the new one, never half of one, and once it returns the new
file survives a crash.

`Writer` does the same for an event loop writing many files at once (the journal of an
apply). One thread takes every file queued since it last looked, writes, fsyncs and
renames each, then fsyncs each folder once for them all (a group commit) and wakes
their waiters with one call. Per file that is one fsync instead of two, and one handover
of the GIL per batch instead of several per file: a thread per write kept taking the
GIL the event loop needed, which cost the loop more than the writes themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import secrets
import threading
from pathlib import Path

_Waiter = tuple[asyncio.AbstractEventLoop, "asyncio.Future[None]"]
_Settled = list[tuple["asyncio.Future[None]", Exception | None]]


def fsync_folder(folder: Path) -> None:
    """Make a rename or a new file in `folder` durable (its entry is in the folder)."""
    if os.name == "nt":  # Windows cannot open a folder; NTFS journals renames itself
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_and_rename(path: Path, data: bytes) -> None:
    """`data` in a temporary file beside `path`, fsync'ed, renamed over `path`."""
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
        fd = os.open(temporary, flags, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def replace(path: Path, data: bytes) -> None:
    """Replace `path` by `data`, atomically and durably."""
    _write_and_rename(path, data)
    fsync_folder(path.parent)


class Writer:
    """`await writer.replace(path, data)`: `replace`, from a thread of its own, batched
    with whatever else is waiting. Call `close()` when done (it waits for the queue)."""

    def __init__(self, threads: int = 4) -> None:
        self._queue: queue.SimpleQueue[tuple[Path, bytes, _Waiter] | None] = queue.SimpleQueue()
        self._count = threads
        self._threads: list[threading.Thread] = []
        self._start = threading.Lock()

    async def replace(self, path: Path, data: bytes) -> None:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        with self._start:
            if not self._threads:
                self._threads = [
                    threading.Thread(target=self._run, name=f"journal-{i}", daemon=True)
                    for i in range(self._count)
                ]
                for thread in self._threads:
                    thread.start()
        self._queue.put((path, data, (loop, done)))
        await done

    def close(self) -> None:
        with self._start:
            threads, self._threads = self._threads, []
        for _ in threads:
            self._queue.put(None)
        for thread in threads:
            thread.join()

    def _run(self) -> None:
        running = True
        while running:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            with contextlib.suppress(queue.Empty):
                while (item := self._queue.get_nowait()) is not None:
                    batch.append(item)
                running = False  # None came after the batch: write it, then stop
            self._commit(batch)

    @staticmethod
    def _commit(batch: list[tuple[Path, bytes, _Waiter]]) -> None:
        failed: dict[int, Exception] = {}
        for i, (path, data, _) in enumerate(batch):
            try:
                _write_and_rename(path, data)
            except Exception as exc:  # reported to its waiter, who decides
                failed[i] = exc
        for folder in {path.parent for i, (path, _, _) in enumerate(batch) if i not in failed}:
            try:
                fsync_folder(folder)
            except OSError as exc:
                for i, (path, _, _) in enumerate(batch):
                    if path.parent == folder:
                        failed.setdefault(i, exc)
        outcomes: dict[
            asyncio.AbstractEventLoop, list[tuple[asyncio.Future[None], Exception | None]]
        ]
        outcomes = {}
        for i, (_, _, (loop, done)) in enumerate(batch):
            outcomes.setdefault(loop, []).append((done, failed.get(i)))
        for loop, settled in outcomes.items():
            with contextlib.suppress(RuntimeError):  # the loop closed (Ctrl-C): none waits
                loop.call_soon_threadsafe(_settle, settled)


def _settle(settled: _Settled) -> None:
    for done, error in settled:
        if done.cancelled():
            continue
        if error is None:
            done.set_result(None)
        else:
            done.set_exception(error)
