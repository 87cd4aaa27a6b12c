"""Files replaced atomically and durably: the one way policysync writes a file.

`replace(path, data)` writes `data` to a new temporary file in the same folder, fsyncs
it, renames it over `path` (`os.replace`, atomic) and fsyncs the folder (the rename is
an entry of the folder). A reader sees the old file or the new one, never half of one,
and once it returns the new file survives a crash. The journal, saved plans, drift
reports, exported and formatted policy files all go through it.

The temporary file has a random name and is created with O_EXCL: a file or a symbolic
link already at that name (planted by someone who can write to the folder) makes the
open fail instead of being followed, so nothing outside the folder is ever written.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

# O_BINARY: Windows would otherwise turn each "\n" into "\r\n".
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)


def fsync_folder(folder: Path) -> None:
    """Make a rename or a new file in `folder` durable (its entry is in the folder)."""
    if os.name == "nt":  # Windows cannot open a folder; NTFS journals renames itself
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_folders(folder: Path) -> None:
    """`folder` and its missing parents, made with their names durable (each new name
    is an entry of its parent)."""
    missing = [f for f in (folder, *folder.parents) if not f.exists()]
    folder.mkdir(parents=True, exist_ok=True)
    for made in missing:
        fsync_folder(made.parent)


def temporary_name(path: Path) -> Path:
    """A fresh name beside `path` for its temporary file: a dot file (the loader and
    the journal's reader skip those) that no other writer can guess."""
    return path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")


def replace(path: Path, data: bytes, mode: int = 0o666) -> None:
    """Replace `path` by `data`, atomically and durably. A new file gets `mode` (less
    the umask). On failure the old file is left as it was, and no temporary file."""
    temporary = temporary_name(path)
    fd = os.open(temporary, _CREATE, mode)
    try:
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
    fsync_folder(path.parent)
