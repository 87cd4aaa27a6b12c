"""A symbolic link planted where `durable.replace` makes its temporary file, as someone
who could guess the name would: what each command writes must go through it, and
leave the link's target alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from policysync import durable

OUTSIDE = b"not policysync's to write"


def plant_links(monkeypatch: pytest.MonkeyPatch, outside: Path) -> list[Path]:
    """Make every temporary name guessable, each a link to `outside` (written now);
    the list of links planted fills up as they are used."""
    outside.write_bytes(OUTSIDE)
    planted: list[Path] = []

    def guessable(path: Path) -> Path:
        link = path.with_name(f".{path.name}.guessed.tmp")
        if not link.is_symlink():
            link.symlink_to(outside)
            planted.append(link)
        return link

    monkeypatch.setattr(durable, "temporary_name", guessable)
    return planted
