"""`policysync apply` and `rollback`, as functions: write org policies without losing one.

A PUT replaces all of an organization's roles, so every write follows one procedure
(`_write`): read live; refuse if it is not what the plan (or the run being rolled back)
expects; journal live as the prior, durably; PUT; check the echoed policy; journal the
outcome. Organizations are independent: one failing does not stop the others. Twice as
many organizations as request slots are in progress (IN_PROGRESS_PER_SLOT), so that a
slot reads the next organization while the last one's prior is being journaled.

The guards (`check_guards`) run before anything is written: deleting roles needs
`allow_delete`, and a plan changing more than a configured share of the managed
organizations needs `force` (octoDNS's "too much change" guard).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field

from policysync.canonical import fingerprint
from policysync.config import ApplySettings
from policysync.errors import ProviderError, UsageError
from policysync.journal import Journal, JournalEntry, RunSummary
from policysync.models import OrgPolicy
from policysync.pacing import each
from policysync.plan import OrgError, OrgPlan, Plan
from policysync.providers.base import Provider

_CONFIG = ConfigDict(frozen=True, extra="forbid")

# Organizations in progress per request slot of the client (`parallelism` of them):
# while one waits for its journal entry to reach the disk, its slot reads the next one,
# instead of idling for a ~quarter of each organization's time. The client still sends
# at most `parallelism` requests at once.
IN_PROGRESS_PER_SLOT = 2

Result = Literal["applied", "unchanged", "stale", "failed"]


class OrgResult(BaseModel):
    """What a run did to one organization."""

    model_config = _CONFIG

    organization_id: str
    result: Result = Field(
        description="applied: written and echoed back; unchanged: nothing to write (live "
        "already as wanted); stale: left alone, live changed since the plan or the run; "
        "failed: could not be read or written (see error)."
    )
    error: OrgError | None = Field(description="Why it is stale or failed; null otherwise.")


class RunResult(BaseModel):
    """The summary of an apply or rollback run (`--format json`)."""

    model_config = _CONFIG

    format_version: Literal["1"]
    kind: Literal["apply", "rollback"]
    run_id: str | None = Field(description="The journal's run id; null if nothing was written.")
    journal: str | None = Field(description="The run's journal folder; null likewise.")
    project_id: str
    applied: int = Field(ge=0)
    unchanged: int = Field(ge=0)
    stale: int = Field(ge=0)
    failed: int = Field(ge=0)
    organizations: tuple[OrgResult, ...] = Field(description="Sorted by organization_id.")

    @property
    def complete(self) -> bool:
        """Every planned change was made."""
        return self.stale == 0 and self.failed == 0


class Expected(NamedTuple):
    """What live should be before a write: what the plan saw (or the run being rolled
    back wrote), and its fingerprint."""

    policy: OrgPolicy | None
    fingerprint: str | None


class Deletion(NamedTuple):
    organization_id: str
    role_id: str


def deletions(plan: Plan) -> list[Deletion]:
    return [
        Deletion(org.organization_id, change.role_id)
        for org in plan.changes
        for change in org.role_changes
        if change.action == "delete"
    ]


def check_guards(plan: Plan, allow_delete: bool, force: bool, guard: ApplySettings) -> None:
    """Refuse (UsageError) a plan that deletes roles without `allow_delete`, or that
    changes too many organizations without `force`. Nothing has been written yet."""
    gone = deletions(plan)
    if gone and not allow_delete:
        shown = "\n".join(f"  - role {d.role_id} in {d.organization_id}" for d in gone[:50])
        more = f"\n  … and {len(gone) - 50} more" if len(gone) > 50 else ""
        raise UsageError(
            f"the plan deletes {len(gone)} role{'s' * (len(gone) != 1)}; nothing was "
            f"written:\n{shown}{more}\nmembers holding a deleted role lose its permissions: "
            "if that is intended, run again with --allow-delete"
        )
    managed, changed = plan.summary.organizations, plan.summary.changed
    too_many = changed > guard.max_change_share * managed
    if too_many and managed >= guard.guard_min_organizations and not force:
        raise UsageError(
            f"the plan changes {changed} of {managed} organizations, more than "
            f"{guard.max_change_share:.0%} (apply.max_change_share); nothing was written: "
            "review the plan, then run again with --force"
        )


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
        return await _write(provider, run, org.organization_id, org.file, org.desired, expected)

    for result in await each(todo, one, IN_PROGRESS_PER_SLOT * parallelism):
        results[result.organization_id] = result
    if run is not None:
        await run.settle()
    for entry in plan.entries:
        if entry.action == "no-op":
            results[entry.organization_id] = OrgResult(
                organization_id=entry.organization_id, result="unchanged", error=None
            )
    return _finish("apply", plan.project_id, run, results)


def rollback_entries(
    summary: RunSummary, entries: list[JournalEntry], project_id: str, only: Sequence[str]
) -> list[JournalEntry]:
    """The entries of a journaled run (`journal.load_run`) that a rollback of it, limited
    to the organizations `only` (all when empty), is about; a UsageError when it cannot
    be rolled back here. Checked before anything is asked or written."""
    if summary.project_id != project_id:
        raise UsageError(
            f"run {summary.run_id} wrote to project {summary.project_id}, not "
            f"{project_id}: check STYTCH_PROJECT_ID"
        )
    unknown = sorted(set(only) - {e.organization_id for e in entries})
    if unknown:
        raise UsageError(f"--org {', '.join(unknown)}: run {summary.run_id} did not write it")
    return [e for e in entries if not only or e.organization_id in only]


async def rollback_run(
    provider: Provider,
    run_id: str,
    project_id: str,
    wanted: list[JournalEntry],
    journal: Callable[[str], Journal],
    parallelism: int,
) -> RunResult:
    """Put back the priors of run `run_id` (its `rollback_entries`), where live is still
    what that run wrote."""
    written = [e for e in wanted if e.state in ("applied", "pending") and e.prior is not None]
    run = journal(run_id) if written else None

    async def one(entry: JournalEntry) -> OrgResult:
        # Live still the prior: nothing to undo (a pending PUT that never landed, too);
        # live what the run wrote: put the prior back; anything else: changed since.
        assert run is not None
        assert entry.prior is not None
        expected = Expected(entry.desired, fingerprint(entry.desired))
        return await _write(
            provider, run, entry.organization_id, entry.file, entry.prior, expected, run_id
        )

    results = {
        r.organization_id: r for r in await each(written, one, IN_PROGRESS_PER_SLOT * parallelism)
    }
    if run is not None:
        await run.settle()
    for entry in wanted:
        if entry.organization_id not in results:  # the run wrote nothing there
            results[entry.organization_id] = OrgResult(
                organization_id=entry.organization_id, result="unchanged", error=None
            )
    return _finish("rollback", project_id, run, results)


async def _write(
    provider: Provider,
    journal: Journal,
    organization_id: str,
    file: str | None,
    desired: OrgPolicy,
    expected: Expected,
    rolled_back_run: str | None = None,
) -> OrgResult:
    """Read live, check it is what was `expected`, journal it, PUT `desired`."""

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

    def finished(entry: JournalEntry, error: OrgError | None) -> OrgResult:
        journal.finish_later(entry, "failed" if error else "applied", error)
        result: Result = "failed" if error else "applied"
        return OrgResult(organization_id=organization_id, result=result, error=error)

    try:
        live = await provider.read_org(organization_id)
    except ProviderError as exc:
        return await not_written("failed", None, OrgError.of(exc))
    # Live exactly as expected has the fingerprint expected (and, expected being a change,
    # is not the desired policy): fingerprints, ~40 µs each, are only computed for a live
    # policy that differs, if only in the order of its roles or actions.
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
        return finished(entry, OrgError.of(exc))
    # Stytch echoes the policy as sent (equal models); else compare them as same_policy does.
    if echoed != desired and fingerprint(echoed) != fingerprint(desired):
        mismatch = OrgError(
            status=200,
            error_type="echo_mismatch",
            message="Stytch stored a policy other than the one sent: compare live with the "
            "file (policysync plan), and tell Stytch support",
            request_id=None,
        )
        return finished(entry, mismatch)
    return finished(entry, None)


def _finish(
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
        organizations=ordered,
    )
