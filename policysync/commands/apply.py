"""`policysync apply`, as a function: write org policies without losing one.

A write replaces all of an organization's roles, so every write follows one procedure
(`write_org`, which rollback shares): read live; refuse if it is not what the plan (or
the run being rolled back) expects; journal live as the prior, durably; write; check the
echoed policy; journal the outcome. Organizations are independent: one failing does not
stop the others. Twice as many organizations as request slots are in progress
(IN_PROGRESS_PER_SLOT), so that a slot reads the next organization while the last one's
prior is being journaled. The guards (`guards.py`) run before, in the CLI.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Literal, NamedTuple

from policysync.canonical import fingerprint
from policysync.errors import ProviderError
from policysync.journal import Journal, JournalEntry
from policysync.models import OrgPolicy
from policysync.plan import OrgError, OrgPlan, Plan
from policysync.providers.base import Provider
from policysync.result import OrgResult, RunResult
from policysync.workers import each

# Organizations in progress per request slot of the client (`parallelism` of them):
# while one waits for its journal entry to reach the disk, its slot reads the next one,
# instead of idling for a ~quarter of each organization's time. The client still sends
# at most `parallelism` requests at once.
IN_PROGRESS_PER_SLOT = 2


class Expected(NamedTuple):
    """What live should be before a write: what the plan saw (or the run being rolled
    back wrote), and its fingerprint."""

    policy: OrgPolicy | None
    fingerprint: str | None


async def apply(provider: Provider, plan: Plan, base: Path, parallelism: int) -> RunResult:
    """Apply `plan` through `provider`, journaled in a new run folder under `base`."""

    def journal() -> Journal:
        return Journal.create(
            base,
            kind="apply",
            project_id=provider.project_id,
            git_commit=plan.git_commit,
            git_dirty=plan.git_dirty,
        )

    return await apply_plan(provider, plan, journal, parallelism)


async def apply_plan(
    provider: Provider,
    plan: Plan,
    journal: Callable[[], Journal],
    parallelism: int,
) -> RunResult:
    """Make live match the plan's desired policies, organization by organization. The
    journal is created (by `journal()`) only when there is something to write."""
    results: dict[str, OrgResult] = {}
    todo: list[OrgPlan] = []
    for org in plan.changes:
        if org.action == "error":
            assert org.error is not None
            results[org.organization_id] = OrgResult(
                organization_id=org.organization_id, result="failed", error=org.error
            )
        else:
            todo.append(org)
    run = journal() if todo else None

    async def one(org: OrgPlan) -> OrgResult:
        assert run is not None
        expected = Expected(org.prior, org.prior_fingerprint)
        return await write_org(provider, run, org.organization_id, org.file, org.desired, expected)

    for result in await each(todo, one, IN_PROGRESS_PER_SLOT * parallelism):
        results[result.organization_id] = result
    if run is not None:
        await run.settle()
    for entry in plan.entries:
        if entry.action == "no-op":
            results[entry.organization_id] = OrgResult(
                organization_id=entry.organization_id, result="unchanged", error=None
            )
    return finish("apply", plan.project_id, run, results)


async def write_org(
    provider: Provider,
    journal: Journal,
    organization_id: str,
    file: str | None,
    desired: OrgPolicy,
    expected: Expected,
    rolled_back_run: str | None = None,
) -> OrgResult:
    """Read live, check it is what was `expected`, journal it, write `desired`."""

    async def not_written(
        result: Literal["stale", "failed"], prior: OrgPolicy | None, error: OrgError
    ) -> OrgResult:
        state: Literal["skipped", "failed"] = "skipped" if result == "stale" else "failed"
        await journal.record(
            organization_id,
            file=file,
            state=state,
            prior=prior,
            desired=desired,
            error=error,
        )
        return OrgResult(organization_id=organization_id, result=result, error=error)

    def finished(entry: JournalEntry, error: OrgError | None, unknown: bool = False) -> OrgResult:
        """The PUT's outcome: applied; unknown (it may have landed); or failed (it did not)."""
        result: Literal["applied", "unknown", "failed"] = (
            "applied" if error is None else "unknown" if unknown else "failed"
        )
        journal.finish_later(entry, result, error)
        return OrgResult(organization_id=organization_id, result=result, error=error)

    try:
        live = await provider.read_org(organization_id)
    except ProviderError as exc:
        return await not_written("failed", None, OrgError.of(exc))
    # Live exactly as expected has the fingerprint expected (and, expected being a change,
    # is not the desired policy): fingerprints, which cost far more than comparing models,
    # are only computed for a live policy that differs, if only in the order of its roles.
    as_expected = live == expected.policy
    live_print = expected.fingerprint if as_expected else fingerprint(live)
    if live == desired or (not as_expected and live_print == fingerprint(desired)):
        return OrgResult(organization_id=organization_id, result="unchanged", error=None)
    if live_print != expected.fingerprint:
        changed_since = f"run {rolled_back_run}" if rolled_back_run else "the plan was made"
        remedy = "make a new plan and review it" if rolled_back_run is None else "restore by hand"
        message = f"live changed since {changed_since}; left as it is: {remedy}"
        stale = OrgError(status=None, error_type="stale", message=message, request_id=None)
        return await not_written("stale", live, stale)
    entry = await journal.begin(
        organization_id, file=file, prior=live, desired=desired, prior_fingerprint=live_print
    )
    try:
        echoed = await provider.write_org(organization_id, desired, live)
    except ProviderError as exc:
        return finished(entry, OrgError.of(exc), exc.outcome_unknown)
    # Stytch echoes the policy as sent (equal models); else compare them as same_policy does.
    if echoed != desired and fingerprint(echoed) != fingerprint(desired):
        mismatch = OrgError(
            status=200,
            error_type="echo_mismatch",
            message="Stytch stored a policy other than the one sent: compare live with the "
            "file (policysync plan), and tell Stytch support",
            request_id=None,
        )
        return finished(entry, mismatch, unknown=True)  # something landed, not `desired`
    return finished(entry, None)


def finish(
    kind: Literal["apply", "rollback"],
    project_id: str,
    run: Journal | None,
    results: dict[str, OrgResult],
) -> RunResult:
    if run is not None:
        run.close()
    ordered = tuple(results[k] for k in sorted(results))
    return RunResult(
        format_version="1",
        kind=kind,
        run_id=None if run is None else run.run_id,
        journal=None if run is None else str(run.path),
        project_id=project_id,
        applied=sum(r.result == "applied" for r in ordered),
        unchanged=sum(r.result == "unchanged" for r in ordered),
        stale=sum(r.result == "stale" for r in ordered),
        failed=sum(r.result == "failed" for r in ordered),
        unknown=sum(r.result == "unknown" for r in ordered),
        organizations=ordered,
    )
