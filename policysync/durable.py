"""Files replaced atomically and durably.

`replace(path, data)` writes a temporary file in the same folder, fsyncs it, renames it
over `path` (atomic) and fsyncs the folder (the rename is an entry of the folder). A
reader sees the old file or the new one, never half of one, and once it returns the new
file survives a crash. The journal's writer process (writer.py) does the same for many
files at once, sharing the folder's fsync among them.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path


def fsync_folder(folder: Path) -> None:
    """Make a rename or a new file in `folder` durable (its entry is in the folder)."""
    if os.name == "nt":  # Windows cannot open a folder; NTFS journals renames itself
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace(path: Path, data: bytes) -> None:
    """Replace `path` by `data`, atomically and durably."""
    write_and_rename(path, data)
    fsync_folder(path.parent)


def write_and_rename(path: Path, data: bytes) -> None:
    """`data` in a temporary file beside `path`, fsynced, renamed over `path`: atomic,
    durable once the folder is fsynced too."""
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
