from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policysync.errors import UsageError
from policysync.selection import Shard, select


@given(st.lists(st.text(min_size=1, max_size=20), unique=True, max_size=60), st.integers(1, 9))
def test_the_shards_of_n_partition_the_organizations(ids: list[str], n: int) -> None:
    shards = [select(ids, shard=Shard(i, n)) for i in range(1, n + 1)]
    assert sorted(org for shard in shards for org in shard) == sorted(ids)


def test_shards_are_stable_and_spread() -> None:
    ids = [f"organization-test-{i:04d}" for i in range(1000)]
    sizes = [len(select(ids, shard=Shard(i, 4))) for i in range(1, 5)]
    assert all(200 <= size <= 300 for size in sizes), sizes
    assert Shard(3, 4).holds("acme") == Shard.parse("3/4").holds("acme")
    # pinned: a change of hash would move organizations between CI jobs
    assert [Shard(i, 4).holds("acme") for i in range(1, 5)] == [True, False, False, False]
    assert select(["acme", "globex", "initech"], shard=Shard(1, 1)) == ["acme", "globex", "initech"]


def test_org_filter_keeps_input_order() -> None:
    assert select(["a", "b", "c"], only=["c", "a", "zz"]) == ["a", "c"]
    assert select(["a", "b"], only=["b"], shard=Shard(1, 1)) == ["b"]


@pytest.mark.parametrize("text", ["0/4", "5/4", "1", "a/b", "1/0", "-1/2", ""])
def test_bad_shards_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError, match="write I/N"):
        Shard.parse(text)
