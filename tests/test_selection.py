from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policysync.errors import UsageError
from policysync.models import Organization, OrgPolicy
from policysync.selection import Resolved, Shard, by_files, by_live_names, resolve_by_files, select


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


MANAGED = {
    "org-1": "policies/orgs/acme.json",
    "acme": "policies/orgs/other.json",  # a file naming an organization by the slug `acme`
    "globex": "policies/orgs/globex.json",
}


def test_an_org_is_an_id_as_written_before_a_file_name() -> None:
    assert by_files(["acme"], MANAGED) == Resolved(["acme"], [])
    assert by_files(["acme.json", "other", "globex", "nope"], MANAGED) == Resolved(
        ["org-1", "acme", "globex"], ["nope"]
    )
    assert by_files(["org-1", "acme.json"], MANAGED) == Resolved(["org-1"], [])


def test_a_live_name_finds_the_file_naming_the_organization_another_way() -> None:
    live = [
        Organization("org-1", "Acme", "acme-inc", "ext-1", OrgPolicy(roles=())),
        Organization("org-2", "Globex", "globex", None, OrgPolicy(roles=())),
        Organization("org-3", "Initech", "initech", None, OrgPolicy(roles=())),
    ]
    assert by_live_names(["ext-1", "org-2", "acme-inc", "initech"], MANAGED, live) == Resolved(
        ["org-1", "globex"], ["initech"]
    )


def test_an_org_that_names_nothing_gets_the_closest_names() -> None:
    with pytest.raises(UsageError) as raised:
        resolve_by_files(["globx", "zzz"], MANAGED, "no file in policies/orgs names")
    assert str(raised.value).splitlines() == [
        "--org globx: no file in policies/orgs names this organization; did you mean globex?",
        "--org zzz: no file in policies/orgs names this organization",
        "(name an organization by its organization_id as written in its file, or the file's name)",
    ]
