"""The core's write procedure with a provider that writes role by role (ZenML's kind):
each role operation journaled before the next is sent, the holders of deleted roles
journaled before any, a run stopped half way carried on by the same saved plan and
rolled back exactly, and anything else live is stale. The provider is an in-memory
fake that can fail after a given number of operations, as a dropped connection would.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

import pytest

from policysync.canonical import between, fingerprint, same_policy
from policysync.commands.apply import Expected, write_org
from policysync.commands.rollback import rollback_run
from policysync.errors import TransportError
from policysync.journal import Journal, JournalEntry, entry_name, load_run
from policysync.models import (
    Holder,
    Organization,
    OrgPolicy,
    Permission,
    ProjectPolicy,
    Role,
    RoleHolders,
    RoleOperation,
)
from policysync.providers.base import Log, Provider

ORG = "acme"


def role(key: str, actions: Sequence[str] = ("read",), description: str = "") -> Role:
    return Role(
        role_id=key,
        description=description,
        permissions=(Permission(resource_id="pipeline", actions=tuple(actions)),),
    )


PRIOR = OrgPolicy(roles=(role("workspace:Keep"), role("workspace:Change"), role("workspace:Drop")))
DESIRED = OrgPolicy(
    roles=(
        role("workspace:Keep"),
        role("workspace:Change", ("read", "update")),
        role("project:New"),
    )
)
HOLDERS = (Holder(kind="user", id="u-1", workspace_id="w-1"), Holder(kind="team", id="t-9"))


class RoleByRole:
    """One organization's roles, changed one operation at a time; `fail_after` lets
    that many operations land, then fails the next one as a dropped connection."""

    project_id = "memory://zenml"

    def __init__(self, policy: OrgPolicy, journal_dir: Path | None = None) -> None:
        self.roles = {r.role_id: r for r in policy.roles}
        self.held: dict[str, tuple[Holder, ...]] = {"workspace:Drop": HOLDERS}
        self.fail_after: int | None = None
        self.sent: list[RoleOperation] = []
        self.journal_dir = journal_dir
        self.journaled_before: list[int] = []  # operations on disk when each was sent

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        return None

    @property
    def policy(self) -> OrgPolicy:
        return OrgPolicy(roles=tuple(self.roles.values()))

    async def read_catalog(self) -> ProjectPolicy:
        return ProjectPolicy(roles=(), resources=())

    async def read_org(self, organization_id: str) -> OrgPolicy:
        return self.policy

    async def holders(
        self, organization_id: str, role_ids: Sequence[str]
    ) -> tuple[RoleHolders, ...]:
        return tuple(RoleHolders(role_id=k, holders=self.held.get(k, ())) for k in role_ids)

    def _on_disk(self) -> int:
        assert self.journal_dir is not None
        files = list(self.journal_dir.glob(f"*/{entry_name(ORG)}"))
        newest = max(files, key=lambda p: p.parent.name)
        return len(json.loads(newest.read_text())["operations"])

    async def _do(self, operation: RoleOperation, log: Log | None) -> None:
        if self.journal_dir is not None:
            self.journaled_before.append(self._on_disk())
        if self.fail_after is not None and len(self.sent) >= self.fail_after:
            raise TransportError(None, "connection_dropped", "dropped", None, ORG)
        self.sent.append(operation)
        if log is not None:
            await log(operation)

    async def write_org(
        self,
        organization_id: str,
        policy: OrgPolicy,
        prior: OrgPolicy | None = None,
        *,
        holders: Sequence[RoleHolders] = (),
        log: Log | None = None,
    ) -> OrgPolicy:
        wanted = {r.role_id: r for r in policy.roles}
        given = {h.role_id: h.holders for h in holders}
        for key, new in wanted.items():
            if key in self.roles and self.roles[key] != new:
                await self._do(RoleOperation(action="update", role_id=key), log)
                self.roles[key] = new
        for key, new in wanted.items():
            if key not in self.roles:
                await self._do(RoleOperation(action="create", role_id=key), log)
                self.roles[key] = new
                self.held[key] = ()
                for holder in given.get(key, ()):
                    await self._do(
                        RoleOperation(action="assign", role_id=key, detail=holder.id), log
                    )
                    self.held[key] = (*self.held[key], holder)
        for key in [k for k in self.roles if k not in wanted]:
            await self._do(RoleOperation(action="delete", role_id=key), log)
            del self.roles[key]
            self.held.pop(key, None)
        return self.policy

    async def list_orgs(self, limit: int = 1000) -> AsyncIterator[Organization]:
        yield Organization(ORG, ORG, ORG, None, self.policy)


def _typed(provider: RoleByRole) -> Provider:
    return provider  # the type checker holds the fake to the protocol


def journal(base: Path) -> Journal:
    return Journal.create(
        base, kind="apply", project_id="memory://zenml", git_commit=None, git_dirty=None
    )


async def apply_once(provider: RoleByRole, base: Path) -> tuple[str, str]:
    run = journal(base)
    result = await write_org(
        _typed(provider), run, ORG, "orgs/acme.json", DESIRED, Expected(PRIOR, fingerprint(PRIOR))
    )
    await run.settle()
    run.close()
    return run.run_id, result.result


def entry(base: Path, run_id: str) -> JournalEntry:
    return load_run(base, run_id)[1][0]


def test_between_accepts_each_role_at_either_end_only() -> None:
    half = OrgPolicy(roles=(role("workspace:Keep"), role("workspace:Change", ("read", "update"))))
    assert between(half, PRIOR, DESIRED)
    assert between(PRIOR, PRIOR, DESIRED)
    assert between(DESIRED, PRIOR, DESIRED)
    third = OrgPolicy(roles=(role("workspace:Keep"), role("workspace:Change", ("delete",))))
    assert not between(third, PRIOR, DESIRED)
    extra = OrgPolicy(roles=(*PRIOR.roles, role("workspace:Other")))
    assert not between(extra, PRIOR, DESIRED)


def test_each_operation_is_journaled_before_the_next_and_holders_first(tmp_path: Path) -> None:
    provider = RoleByRole(PRIOR, tmp_path)
    run_id, result = asyncio.run(apply_once(provider, tmp_path))
    assert result == "applied"
    written = entry(tmp_path, run_id)
    assert [(o.action, o.role_id) for o in written.operations] == [
        ("update", "workspace:Change"),
        ("create", "project:New"),
        ("delete", "workspace:Drop"),
    ]
    assert provider.journaled_before == [0, 1, 2]  # the entry was on disk, one op behind
    assert written.holders == (RoleHolders(role_id="workspace:Drop", holders=HOLDERS),)
    assert same_policy(provider.policy, DESIRED)


def test_a_run_stopped_half_way_is_carried_on_by_the_same_plan(tmp_path: Path) -> None:
    provider = RoleByRole(PRIOR)
    provider.fail_after = 1
    first, result = asyncio.run(apply_once(provider, tmp_path))
    assert result == "unknown"
    stopped = entry(tmp_path, first)
    assert stopped.state == "unknown"
    assert len(stopped.operations) == 1
    assert between(provider.policy, PRIOR, DESIRED)
    assert not same_policy(provider.policy, PRIOR)
    half = provider.policy
    provider.fail_after = None
    second, result = asyncio.run(apply_once(provider, tmp_path))
    assert result == "applied"
    assert same_policy(provider.policy, DESIRED)
    carried_on = entry(tmp_path, second).prior
    assert carried_on is not None
    assert same_policy(carried_on, half)


def test_rollback_of_a_half_way_run_restores_the_prior_and_the_holders(tmp_path: Path) -> None:
    provider = RoleByRole(PRIOR)
    provider.fail_after = 2  # the update and the create landed, not the delete
    first, _ = asyncio.run(apply_once(provider, tmp_path))
    provider.fail_after = None
    provider.roles.pop("workspace:Drop")  # and say the delete landed after all (unknown)
    provider.held.pop("workspace:Drop")
    wanted = load_run(tmp_path, first)[1]

    def rollback_journal(rolled_back: str) -> Journal:
        return Journal.create(
            tmp_path,
            kind="rollback",
            project_id="memory://zenml",
            git_commit=None,
            git_dirty=None,
            rolled_back_run=rolled_back,
        )

    result = asyncio.run(
        rollback_run(_typed(provider), first, "memory://zenml", wanted, rollback_journal, 4)
    )
    assert result.applied == 1
    assert same_policy(provider.policy, PRIOR)
    assert provider.held["workspace:Drop"] == HOLDERS  # given back to who held it


def test_live_changed_otherwise_is_stale_and_nothing_is_sent(tmp_path: Path) -> None:
    provider = RoleByRole(PRIOR)
    provider.roles["workspace:Change"] = role("workspace:Change", ("delete",))
    _, result = asyncio.run(apply_once(provider, tmp_path))
    assert result == "stale"
    assert provider.sent == []


def test_an_operation_that_cannot_be_journaled_stops_the_organization(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    provider = RoleByRole(PRIOR)

    async def unwritable(
        self: Journal, entry: JournalEntry, operation: RoleOperation
    ) -> JournalEntry:
        self.stop("cannot write the journal: disk full")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Journal, "progress", unwritable)
    run = journal(tmp_path)

    async def go() -> str:
        result = await write_org(
            _typed(provider), run, ORG, None, DESIRED, Expected(PRIOR, fingerprint(PRIOR))
        )
        await run.settle()
        return result.result

    assert asyncio.run(go()) == "unknown"
    assert len(provider.sent) == 1  # the first landed; no second was sent
