"""Which managed organizations a run covers: `--org` and `--shard I/N`.

`--org NAME` names an organization as people know it: its `organization_id` as written
in its file, the file's name (`acme` or `acme.json` for `orgs/acme.json`), or any name
of the live organization (Stytch: its id, slug or external id; ZenML Pro: its id or
name) when a file names it by another of them. Live names cost a listing of the
organizations, so they are looked up only for the names the files do not know.

Shards use a stable hash of the organization id as written in its file, so the same
organization always lands in the same shard, on every machine and run, and the N shards
of a CI matrix partition the organizations exactly.
"""

from __future__ import annotations

import difflib
import hashlib
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from pathlib import PurePath
from typing import NamedTuple

from policysync.errors import UsageError
from policysync.models import Organization


class Shard(NamedTuple):
    number: int  # 1-based, as people write it: --shard 1/4 … --shard 4/4
    total: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        index, slash, count = text.partition("/")
        try:
            shard = cls(int(index), int(count))
        except ValueError:
            shard = cls(0, 0)
        if not slash or not 1 <= shard.number <= shard.total:
            raise UsageError(f"--shard {text}: write I/N with 1 <= I <= N, e.g. --shard 2/4")
        return shard

    def holds(self, organization_id: str) -> bool:
        digest = hashlib.sha256(organization_id.encode("utf-8", "surrogatepass")).digest()
        return int.from_bytes(digest[:8], "big") % self.total == self.number - 1


def select(
    organization_ids: Iterable[str], only: Sequence[str] = (), shard: Shard | None = None
) -> list[str]:
    """The ids kept by `--org` (when given) and `--shard` (when given), in input order."""
    wanted = set(only)
    return [
        org
        for org in organization_ids
        if (not wanted or org in wanted) and (shard is None or shard.holds(org))
    ]


# What an --org may be, for messages.
FILE_NAMES = "its organization_id as written in its file, or the file's name"
ANY_NAME = (
    "its organization_id as written in its file, the file's name, or a name it has live "
    "(an id, slug or external id; for ZenML Pro an id or name)"
)


class Resolved(NamedTuple):
    chosen: list[str]  # organization ids as written, in the order they were named
    missing: list[str]  # the names that gave none


def by_files(wanted: Sequence[str], managed: Mapping[str, str | None]) -> Resolved:
    """The organizations of `managed` (organization_id as written -> its file, if any)
    that the names `wanted` give by id as written, else by file name."""
    files: dict[str, str] = {}
    for org_id, file in managed.items():
        if file:
            files.setdefault(PurePath(file).name, org_id)
            files.setdefault(PurePath(file).stem, org_id)
    chosen: list[str] = []
    missing: list[str] = []
    for name in wanted:
        found = name if name in managed else files.get(name)
        if found is None:
            missing.append(name)
        elif found not in chosen:
            chosen.append(found)
    return Resolved(chosen, missing)


def by_live_names(
    wanted: Sequence[str], managed: Mapping[str, str | None], live: Iterable[Organization]
) -> Resolved:
    """The organizations of `managed` that the names `wanted` give by another name of
    the live organization (a file names it by its slug, `--org` by its id...)."""
    names = [_names(org) for org in live]
    chosen: list[str] = []
    missing: list[str] = []
    for name in wanted:
        found = [n for org in names if name in org for n in sorted(org) if n in managed]
        if not found:
            missing.append(name)
        chosen += [org_id for org_id in dict.fromkeys(found) if org_id not in chosen]
    return Resolved(chosen, missing)


def resolve_by_files(
    wanted: Sequence[str], managed: Mapping[str, str | None], nothing: str
) -> list[str]:
    """`by_files`, where a name that matches nothing is a UsageError (offline)."""
    resolved = by_files(wanted, managed)
    if resolved.missing:
        raise unknown_orgs(resolved.missing, managed, nothing, FILE_NAMES)
    return resolved.chosen


async def resolve(
    wanted: Sequence[str],
    managed: Mapping[str, str | None],
    live: Callable[[], AsyncIterator[Organization]],
    nothing: str,
) -> list[str]:
    """The organization ids of `managed` that `wanted` names: by id or file name, else
    among the organizations `live()` lists (called only then). A name that matches
    nothing is a UsageError, `nothing` saying where it was looked for."""
    first = by_files(wanted, managed)
    if not first.missing:
        return first.chosen
    second = by_live_names(first.missing, managed, [org async for org in live()])
    if second.missing:
        raise unknown_orgs(second.missing, managed, nothing, ANY_NAME)
    return first.chosen + [org_id for org_id in second.chosen if org_id not in first.chosen]


def unknown_orgs(
    missing: Sequence[str], managed: Mapping[str, str | None], nothing: str, accepted: str
) -> UsageError:
    """The error of `--org` names that match nothing, each with the closest names."""
    candidates = sorted({*managed, *(PurePath(f).stem for f in managed.values() if f)})
    lines = []
    for name in missing:
        close = difflib.get_close_matches(name, candidates, n=3)
        hint = f"; did you mean {' or '.join(close)}?" if close else ""
        lines.append(f"--org {name}: {nothing} this organization{hint}")
    return UsageError("\n".join([*lines, f"(name an organization by {accepted})"]))


def _names(org: Organization) -> set[str]:
    ids = (org.organization_id, org.organization_slug, org.organization_external_id)
    return {n for n in ids if n}
