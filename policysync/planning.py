"""`policysync plan`, as a function: validate, read live state, compare.

The order matters: the project policy is read first (one request) because it is the
authority the files are validated against; an invalid tree stops the run before any
organization is read; only then are the managed organizations read, concurrently.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

from policysync import __version__
from policysync.client import StytchClient
from policysync.config import Limits, Settings
from policysync.diagnostics import sort_diagnostics
from policysync.endpoint import Endpoint
from policysync.errors import StytchError, UsageError
from policysync.git import head_state
from policysync.loader import read_org_file
from policysync.models import OrgPolicy, OrgPolicyFile, ProjectPolicy
from policysync.pacing import Progress, each
from policysync.plan import OrgError, Plan, PlanEntry, assemble, plan_org
from policysync.report import ValidationReport
from policysync.selection import Shard, select
from policysync.validate import validate_root


class PlanRun(NamedTuple):
    plan: Plan | None  # None when the files are invalid
    report: ValidationReport  # what validation found (warnings, or the errors that stopped it)
    live_project: ProjectPolicy | None = None  # what the files were validated against
    managed: frozenset[str] = frozenset()  # every organization_id a file names (drift)

    def __repr__(self) -> str:
        # Python 3.11's asyncio.run formats the finished task, result included, when it
        # restores the Ctrl-C handler: a full repr of a large plan costs seconds.
        summary = self.plan.summary if self.plan is not None else None
        return f"PlanRun(plan summary={summary!r}, report valid={self.report.valid})"


class Options(NamedTuple):
    only: Sequence[str] = ()
    shard: Shard | None = None
    parallelism: int = 16
    rate_limit: float | None = None


async def plan_live(
    settings: Settings,
    endpoint: Endpoint,
    options: Options,
    progress: Callable[[int], Progress] | None = None,
    client: StytchClient | None = None,
) -> PlanRun:
    """Plan the managed organizations of `settings.policies` against live Stytch.
    `progress(total)` is called once the total is known and returns the per-org callback."""
    root = Path(settings.policies)
    client = client or StytchClient(
        endpoint, parallelism=options.parallelism, rate_limit=options.rate_limit
    )
    async with client:
        live_project = await client.project_policy()
        checked = validate_root(root, [], settings.limits, live_project)
        report = ValidationReport.build(
            sort_diagnostics(checked.diagnostics),
            checked.files_checked,
            checked.organizations,
            strict=False,
        )
        if not report.valid:
            return PlanRun(None, report, live_project)
        files = checked.files
        unknown = sorted(set(options.only) - files.keys())
        if unknown:
            raise UsageError(
                f"--org {', '.join(unknown)}: no file in {root / 'orgs'} manages "
                f"{'this organization' if len(unknown) == 1 else 'these organizations'} "
                "(give the organization_id as written in its file)"
            )
        ids = select(sorted(files), options.only, options.shard)
        tick = progress(len(ids)) if progress else None
        desired = Desired(files, root.resolve(), settings.limits)
        # git's state meanwhile: loading GitPython and asking git take ~0.1 s, and the
        # organizations' reads leave the CPU idle most of the time
        git_state = asyncio.ensure_future(asyncio.to_thread(head_state, root))
        entries = await plan_orgs(client, desired, ids, options.parallelism, tick)
        git = await git_state
    plan = assemble(
        entries,
        project_id=endpoint.project_id,
        created_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        policysync_version=__version__,
        git_commit=git.commit,
        git_dirty=git.dirty,
    )
    return PlanRun(plan, report, live_project, frozenset(files))


class Desired(NamedTuple):
    """Where the policy files of the organizations are, to read each when needed."""

    files: dict[str, Path]  # organization_id -> file
    real_root: Path
    limits: Limits

    def document(self, organization_id: str) -> OrgPolicyFile:
        path = self.files[organization_id]
        document = read_org_file(path, self.real_root, self.limits)
        if document is None or document.organization_id != organization_id:
            raise UsageError(f"{path} changed during the plan: run it again")
        return document


async def read_live(client: StytchClient, organization_id: str) -> OrgPolicy | OrgError:
    """The live policy of an organization, or why it could not be read."""
    try:
        return await client.get_org_policy(organization_id)
    except StytchError as exc:
        return OrgError.of(exc)


async def plan_orgs(
    client: StytchClient,
    desired: Desired,
    ids: Sequence[str],
    parallelism: int,
    tick: Progress | None,
) -> list[PlanEntry]:
    """Each organization planned as soon as its live policy comes in, once the next read
    of its slot is on the wire (in a callback of the event loop's next turn): planning
    overlaps the waiting instead of delaying the reads. Only the plan's compact entries
    are kept."""
    loop = asyncio.get_running_loop()
    entries: list[PlanEntry] = []
    failures: list[Exception] = []

    def plan_one(org_id: str, live: OrgPolicy | OrgError) -> None:
        try:
            policy = desired.document(org_id).org_policy
            entries.append(PlanEntry.of(plan_org(org_id, str(desired.files[org_id]), policy, live)))
        except Exception as exc:  # raised below, not lost to the loop's exception handler
            failures.append(exc)

    async def read_one(org_id: str) -> None:
        loop.call_soon(plan_one, org_id, await read_live(client, org_id))

    await each(ids, read_one, parallelism, tick)
    while len(entries) + len(failures) < len(ids):  # the last callbacks
        await asyncio.sleep(0)
    if failures:
        raise failures[0]
    return entries
