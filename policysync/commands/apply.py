"""`policysync apply`, as a function: write org policies without losing one.

A write replaces all of an organization's roles, so every write follows one procedure
(`write_org`, which rollback shares): read live; refuse if it is not what the plan (or
the run being rolled back) expects; journal live as the prior, durably; write; check the
echoed policy; journal the outcome. Organizations are independent: one failing does not
stop the others. Twice as many organizations as request slots are in progress
(IN_PROGRESS_PER_SLOT), so that a slot reads the next organization while the last one's
prior is being journaled. The guards (`guards.py`) run before, in the CLI.

A run stops early when its journal cannot be written (a write whose prior is not on
disk is never sent) or on Ctrl-C: from that moment no organization is started and no
PUT is sent; the ones in progress finish and are journaled, and RunStopped carries
the partial result.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Literal, NamedTuple, Protocol, TypeVar

from policysync.canonical import between, fingerprint
from policysync.errors import JournalError, ProviderError, RunStopped
from policysync.journal import RUN_FILE, Journal, JournalEntry, unwritable
from policysync.models import OrgPolicy, RoleHolders, RoleOperation
from policysync.plan import OrgError, OrgPlan, Plan
from policysync.providers.base import Provider
from policysync.result import OrgResult, RunResult
from policysync.workers import Progress, each, to_the_end

# Organizations in progress per request slot of the client (`parallelism` of them):
# while one waits for its journal entry to reach the disk, its slot reads the next one,
# instead of idling for a ~quarter of each organization's time. The client still sends
# at most `parallelism` requests at once.
IN_PROGRESS_PER_SLOT = 2
INTERRUPTED = "interrupted (Ctrl-C)"


class _Org(Protocol):  # what `through` needs: a planned organization, a journal entry
    @property
    def organization_id(self) -> str: ...


Org = TypeVar("Org", bound=_Org)


class Expected(NamedTuple):
    """What live should be before a write: what the plan saw (or the run being rolled
    back wrote), and its fingerprint."""

    policy: OrgPolicy | None
    fingerprint: str | None


def unnamed(run_id: str) -> None:
    pass


async def apply(
    provider: Provider,
    plan: Plan,
    base: Path,
    parallelism: int,
    started: Callable[[str], None] = unnamed,
    progress: Callable[[int], Progress] | None = None,
    *,
    allow_in_use: bool = True,
) -> RunResult:
    """Apply `plan` through `provider`, journaled in a new run folder under `base`;
    `started(run_id)` once it is created (the lock's holder file names the run);
    `progress(total)` once the organizations to write are known, then its callback
    after each. Without `allow_in_use`, an organization whose write would delete a role
    something depends on is skipped."""

    def journal() -> Journal:
        run = Journal.create(
            base,
            kind="apply",
            project_id=provider.project_id,
            git_commit=plan.git_commit,
            git_dirty=plan.git_dirty,
            environment=plan.environment,
        )
        started(run.run_id)
        return run

    return await apply_plan(provider, plan, journal, parallelism, progress, allow_in_use)


async def apply_plan(
    provider: Provider,
    plan: Plan,
    journal: Callable[[], Journal],
    parallelism: int,
    progress: Callable[[int], Progress] | None = None,
    allow_in_use: bool = True,
) -> RunResult:
    """Make live match the plan's desired policies, organization by organization. The
    journal is created (by `journal()`) only when there is something to write."""
    results: dict[str, OrgResult] = {}
    todo: list[OrgPlan] = []
    for org in plan.changes:
        if org.action in ("error", "absent"):
            assert org.error is not None
            results[org.organization_id] = OrgResult(
                organization_id=org.organization_id,
                result="failed" if org.action == "error" else "absent",
                error=org.error,
            )
        else:
            todo.append(org)
    run = open_run(journal) if todo else None

    async def one(org: OrgPlan) -> OrgResult:
        assert run is not None
        expected = Expected(org.prior, org.prior_fingerprint)
        return await write_org(
            provider,
            run,
            org.organization_id,
            org.file,
            org.desired,
            expected,
            allow_in_use=allow_in_use,
        )

    if run is not None:
        tick = progress(len(todo)) if progress else None
        for result in await through(run, todo, one, parallelism, tick):
            results[result.organization_id] = result
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
    reassign: tuple[RoleHolders, ...] = (),
    allow_in_use: bool = True,
) -> OrgResult:
    """Read live, check it is what was `expected`, journal it (with who holds the roles
    to be deleted), write `desired` (giving re-created roles back to `reassign`).
    Without `allow_in_use`, a write deleting a role someone holds is not sent: the role
    came into use after the plan (which the guards checked) was made."""

    async def not_written(
        result: Literal["stale", "failed"], prior: OrgPolicy | None, error: OrgError
    ) -> OrgResult:
        state: Literal["skipped", "failed"] = "skipped" if result == "stale" else "failed"
        try:
            await journal.record(
                organization_id,
                file=file,
                state=state,
                prior=prior,
                desired=desired,
                error=error,
            )
        except OSError:  # the journal stopped the run, saying why
            return not_started(organization_id, journal.stopped or "")
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
    if journal.stopped:
        return not_started(organization_id, journal.stopped)
    # Live exactly as expected has the fingerprint expected (and, expected being a change,
    # is not the desired policy): fingerprints, which cost far more than comparing models,
    # are only computed for a live policy that differs, if only in the order of its roles.
    as_expected = live == expected.policy
    live_print = expected.fingerprint if as_expected else fingerprint(live)
    if live == desired or (not as_expected and live_print == fingerprint(desired)):
        return OrgResult(organization_id=organization_id, result="unchanged", error=None)
    # A write that changes role after role (ZenML's) and stopped half way left each role
    # as expected or as desired: that is carried on, not stale.
    half_way = expected.policy is not None and between(live, expected.policy, desired)
    if live_print != expected.fingerprint and not half_way:
        changed_since = f"run {rolled_back_run}" if rolled_back_run else "the plan was made"
        remedy = "make a new plan and review it" if rolled_back_run is None else "restore by hand"
        message = f"live changed since {changed_since}; left as it is: {remedy}"
        stale = OrgError(status=None, error_type="stale", message=message, request_id=None)
        return await not_written("stale", live, stale)
    kept = {role.role_id for role in desired.roles}
    deleted = [role.role_id for role in live.roles if role.role_id not in kept]
    try:
        holders = await provider.holders(organization_id, deleted) if deleted else ()
    except ProviderError as exc:
        return await not_written("failed", live, OrgError.of(exc))
    in_use = sorted(h.role_id for h in holders if h.holders)
    if in_use and not allow_in_use:
        message = (
            f"role{'s' * (len(in_use) != 1)} {', '.join(in_use)} in use since the plan was "
            "made; left as it is: make a new plan and review it (apply needs "
            "--allow-delete-in-use to delete a role in use)"
        )
        error = OrgError(status=None, error_type="in_use", message=message, request_id=None)
        return await not_written("stale", live, error)
    try:
        entry = await journal.begin(
            organization_id,
            file=file,
            prior=live,
            desired=desired,
            prior_fingerprint=live_print,
            holders=holders,
        )
    except OSError:  # no prior on disk, no PUT; the journal stopped the run, saying why
        return not_started(organization_id, journal.stopped or "")
    if journal.stopped:  # stopped while the prior was being journaled: not sent
        return finished(entry, stopped_error(journal.stopped))

    async def log(operation: RoleOperation) -> None:
        """Journal a role operation that landed before the next one is sent."""
        nonlocal entry
        try:
            entry = await journal.progress(entry, operation)
        except OSError:  # the journal stopped the run: send nothing more
            raise _NotJournaled from None

    try:
        echoed = await provider.write_org(organization_id, desired, live, holders=reassign, log=log)
    except ProviderError as exc:  # after some role operations landed, the write is half done
        return finished(entry, OrgError.of(exc), exc.outcome_unknown or bool(entry.operations))
    except _NotJournaled:  # some role operations may have landed: unknown
        return finished(entry, stopped_error(journal.stopped or ""), unknown=True)
    # Stytch echoes the policy as sent (equal models); else compare them as same_policy does.
    if echoed != desired and fingerprint(echoed) != fingerprint(desired):
        mismatch = OrgError(
            status=200,
            error_type="echo_mismatch",
            message="the system stored a policy other than the one sent: compare live with "
            "the file (policysync plan), and tell the system's support",
            request_id=None,
        )
        return finished(entry, mismatch, unknown=True)  # something landed, not `desired`
    return finished(entry, None)


class _NotJournaled(Exception):
    """A role operation that landed could not be journaled: no other is sent. (On
    Ctrl-C an organization in progress is finished, as a PUT in flight would be.)"""


def stopped_error(reason: str) -> OrgError:
    message = f"not written: the run stopped before its PUT: {reason}"
    return OrgError(status=None, error_type=RunStopped.error_type, message=message, request_id=None)


def not_started(organization_id: str, reason: str) -> OrgResult:
    """An organization the run stopped before writing (no PUT was sent)."""
    error = stopped_error(reason)
    return OrgResult(organization_id=organization_id, result="failed", error=error)


def open_run(create: Callable[[], Journal]) -> Journal:
    """The run's journal, made by `create`; a JournalError (path, OS error) if it
    cannot be."""
    try:
        return create()
    except OSError as exc:
        raise JournalError(unwritable(exc)) from None


async def through(
    run: Journal,
    todo: Sequence[Org],
    one: Callable[[Org], Awaitable[OrgResult]],
    parallelism: int,
    tick: Progress | None = None,
) -> list[OrgResult]:
    """`one` on every organization of `todo` until the run stops (`tick(1)` after
    each), then every entry on disk. On Ctrl-C the run stops too, and the organizations
    in progress finish."""

    async def unless_stopped(org: Org) -> OrgResult:
        if run.stopped:
            return not_started(org.organization_id, run.stopped)
        return await one(org)

    async def work() -> list[OrgResult]:
        results = await each(todo, unless_stopped, IN_PROGRESS_PER_SLOT * parallelism, tick)
        with contextlib.suppress(OSError):  # the journal stopped the run, saying why
            await run.settle()
        return results

    return await to_the_end(work(), lambda: run.stop(INTERRUPTED))


def finish(
    kind: Literal["apply", "rollback"],
    project_id: str,
    run: Journal | None,
    results: dict[str, OrgResult],
) -> RunResult:
    """The run's result, its journal closed; RunStopped if it stopped early."""
    if run is not None:
        try:
            run.close()
        except OSError as exc:
            run.stop(unwritable(exc, run.path / RUN_FILE))
    ordered = tuple(results[k] for k in sorted(results))
    result = RunResult(
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
        absent=sum(r.result == "absent" for r in ordered),
        organizations=ordered,
    )
    if run is not None and run.stopped:
        raise RunStopped(run.stopped, result, interrupted=run.stopped == INTERRUPTED)
    return result
