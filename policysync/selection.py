"""Which managed organizations a run covers: `--org` and `--shard I/N`.

Shards use a stable hash of the organization id as written in its file, so the same
organization always lands in the same shard, on every machine and run, and the N shards
of a CI matrix partition the organizations exactly.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import NamedTuple

from policysync.errors import UsageError


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
