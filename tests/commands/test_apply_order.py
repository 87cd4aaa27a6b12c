"""commands.apply: how apply_plan goes through the organizations of a plan, against the
emulator in-process (httpx.ASGITransport). The end-to-end behaviour (journal, guards,
stale plans, rollback, faults) is in test_apply_cli.py and test_apply_faults.py."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
from starlette.types import ASGIApp, Receive, Scope, Send
from support.clientkit import PROJECT_ID, SECRET, Recorder, demo_seed, demo_store, endpoint

from policysync.commands.apply import IN_PROGRESS_PER_SLOT, apply_plan
from policysync.config import Limits
from policysync.emulator.server import build
from policysync.journal import Journal, JournalEntry
from policysync.models import OrgPolicy
from policysync.plan import EscalationRules, Plan, PlanEntry, assemble, plan_org
from policysync.providers.stytch import StytchClient

ORG_IDS = [org.organization_id for org in demo_seed().organizations]


class Slow:
    """ASGI middleware: every request takes `seconds` more, so that requests overlap."""

    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app, self.seconds = app, seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await asyncio.sleep(self.seconds)
        await self.app(scope, receive, send)


async def changed_plan(client: StytchClient, org_ids: list[str]) -> Plan:
    """A plan giving each organization one role more than it has live."""
    entries = []
    for org_id in org_ids:
        live = await client.read_org(org_id)
        extra = {
            "role_id": "policysync-test-extra",
            "description": "",
            "permissions": [{"resource_id": "documents", "actions": ["read"]}],
        }
        desired = OrgPolicy.model_validate(
            {"roles": [*live.model_dump(mode="json")["roles"], extra]}
        )
        entries.append(PlanEntry.of(plan_org(org_id, f"orgs/{org_id}.json", desired, live)))
    return assemble(
        entries,
        project_id=PROJECT_ID,
        created_at="2026-11-23T00:00:00Z",
        policysync_version="test",
        git_commit=None,
        git_dirty=None,
        rules=EscalationRules(),
    )


def journal_factory(base: Path, kind: type[Journal] = Journal) -> Any:
    return lambda: kind.create(
        base, kind="apply", project_id=PROJECT_ID, git_commit=None, git_dirty=None
    )


def test_a_slot_reads_the_next_organization_while_the_last_one_is_journaled(
    tmp_path: Path,
) -> None:
    """With one request slot, the first organization's journal entry is held back until
    the second organization is being read: apply finishes only if the slot reads the
    next organization meanwhile, instead of idling until the entry is on disk."""
    first, second = ORG_IDS[:2]
    second_read = asyncio.Event()

    class Watching(StytchClient):
        async def read_org(self, organization_id: str) -> OrgPolicy:
            if organization_id == second:
                second_read.set()
            return await super().read_org(organization_id)

    class HeldBack(Journal):
        async def begin(self, organization_id: str, **fields: Any) -> JournalEntry:
            if organization_id == first:
                await second_read.wait()
            return await super().begin(organization_id, **fields)

    async def main() -> int:
        transport = httpx.ASGITransport(app=build(demo_store(), PROJECT_ID, SECRET, Limits()))
        async with Watching(endpoint(), transport=transport, parallelism=1) as client:
            plan = await changed_plan(client, [first, second])
            second_read.clear()
            run = apply_plan(client, plan, journal_factory(tmp_path, HeldBack), parallelism=1)
            result = await asyncio.wait_for(run, timeout=10)
        return result.applied

    assert asyncio.run(main()) == 2


def test_requests_in_flight_never_exceed_the_parallelism(tmp_path: Path) -> None:
    """Twice as many organizations in progress as slots, but no more requests at once
    than --parallelism; and every organization is written."""
    recorder = Recorder(Slow(build(demo_store(), PROJECT_ID, SECRET, Limits()), 0.005))

    async def main() -> tuple[int, int]:
        transport = httpx.ASGITransport(app=recorder)
        async with StytchClient(endpoint(), transport=transport, parallelism=2) as client:
            plan = await changed_plan(client, ORG_IDS)
            recorder.max_in_flight = 0
            result = await apply_plan(client, plan, journal_factory(tmp_path), parallelism=2)
        return result.applied, recorder.max_in_flight

    assert IN_PROGRESS_PER_SLOT > 1
    assert asyncio.run(main()) == (len(ORG_IDS), 2)


def reversed_roles(policy: OrgPolicy) -> OrgPolicy:
    return OrgPolicy(roles=policy.roles[::-1])


def test_live_in_another_order_is_the_same_policy(tmp_path: Path) -> None:
    """Live is compared with the plan as policies, not as lists: the prior in another
    order is not stale, the desired policy in another order is unchanged, and a real
    change is stale."""

    applied, unchanged, stale = ORG_IDS[1], ORG_IDS[3], ORG_IDS[0]  # 2, 3 and 1 roles live

    async def main() -> dict[str, str]:
        transport = httpx.ASGITransport(app=build(demo_store(), PROJECT_ID, SECRET, Limits()))
        async with StytchClient(endpoint(), transport=transport) as client:
            plan = await changed_plan(client, [applied, unchanged, stale])
            planned = {org.organization_id: org for org in plan.changes}
            reordered, done, changed = planned[applied], planned[unchanged], planned[stale]
            assert reordered.prior is not None
            assert len(reordered.prior.roles) > 1  # so that reversing them reorders them
            await client.write_org(reordered.organization_id, reversed_roles(reordered.prior))
            await client.write_org(done.organization_id, reversed_roles(done.desired))
            await client.write_org(changed.organization_id, OrgPolicy(roles=()))
            result = await apply_plan(client, plan, journal_factory(tmp_path), parallelism=4)
            assert await client.read_org(reordered.organization_id) == reordered.desired
        return {org.organization_id: org.result for org in result.organizations}

    assert asyncio.run(main()) == {applied: "applied", unchanged: "unchanged", stale: "stale"}
