"""One run at a time: the lock of a journal folder.

Two runs writing the same organizations at once would each read live, journal it and
write, and one write would silently undo the other. So `apply` and `rollback` hold an
exclusive lock on the journal folder for their whole run: `<base>/.lock`, an OS lock
taken through the filelock library (fcntl on POSIX, msvcrt on Windows), which the OS
releases when its process ends, however it ends. The holder says who it is in
`<base>/.lock-holder.json` (process id, host, command, run id, start time), so that a
run refused names it. A holder file found with the lock free was left by a process
that ended without releasing it (killed): the lock is taken over, with a note.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from filelock import FileLock, Timeout
from pydantic import BaseModel, ConfigDict, ValidationError

from policysync import durable
from policysync.errors import JournalError
from policysync.journal import RunKind, unwritable

LOCK_FILE = ".lock"
HOLDER_FILE = ".lock-holder.json"


class Holder(BaseModel):
    """Who holds the lock of a journal folder."""

    model_config = ConfigDict(frozen=True)

    pid: int
    host: str
    command: RunKind
    run_id: str | None  # null until the run's journal is created
    started_at: str  # ISO 8601, UTC: when the lock was taken

    def __str__(self) -> str:
        run = f"run {self.run_id}" if self.run_id else "no run journaled yet"
        return (
            f"policysync {self.command}, process {self.pid} on host {self.host}, {run}, "
            f"started {self.started_at}"
        )


class RunLock:
    """The lock of a journal folder, held by this process (see `hold`)."""

    def __init__(self, base: Path, holder: Holder, note: str | None) -> None:
        self.base = base
        self.holder = holder
        self.note = note  # the lock was taken over from a process gone: what it was

    def started(self, run_id: str) -> None:
        """Name the run now journaled in the holder file."""
        self.holder = self.holder.model_copy(update={"run_id": run_id})
        _write_holder(self.base, self.holder)


def _write_holder(base: Path, holder: Holder) -> None:
    path = base / HOLDER_FILE
    try:
        durable.replace(path, holder.model_dump_json(indent=2).encode() + b"\n")
    except OSError as exc:
        raise JournalError(unwritable(exc, path)) from None


def _read_holder(base: Path) -> Holder | str | None:
    """The holder file: None if there is none, a sentence if it cannot be read."""
    path = base / HOLDER_FILE
    try:
        return Holder.model_validate(json.loads(path.read_bytes()))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, ValidationError) as exc:
        return f"a holder file policysync cannot read ({path}: {exc})"


@contextlib.contextmanager
def hold(base: Path, command: RunKind) -> Iterator[RunLock]:
    """Hold the lock of the journal folder `base` (made if missing) until the block
    ends. Another run holding it: a JournalError naming it, at once (no waiting)."""
    lock_path = base / LOCK_FILE
    try:
        durable.make_folders(base)
        lock = FileLock(lock_path)
        lock.acquire(blocking=False)
    except Timeout:
        holder = _read_holder(base)
        who = holder or "another policysync run (it has not written who it is yet)"
        raise JournalError(
            f"the journal folder {base} is in use by {who}: one apply or rollback at a "
            "time; nothing was written: wait for that run to end, then run this again"
        ) from None
    except OSError as exc:
        raise JournalError(unwritable(exc)) from None
    try:
        left = _read_holder(base)
        note = (
            None
            if left is None
            else (
                f"the lock of the journal folder {base} was left by {left}, which has ended "
                "without releasing it (killed?): taken over"
            )
        )
        started = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        holder = Holder(
            pid=os.getpid(),
            host=socket.gethostname(),
            command=command,
            run_id=None,
            started_at=started,
        )
        _write_holder(base, holder)
        yield RunLock(base, holder, note)
    finally:
        with contextlib.suppress(OSError):  # gone before the lock is free to take
            (base / HOLDER_FILE).unlink()
        lock.release()
