"""`policysync rollback RUN_ID`, as a function: put back the priors an earlier run
replaced, organization by organization, where live is still what that run wrote."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from policysync import git
from policysync.canonical import fingerprint
from policysync.commands.apply import (
    Expected,
    finish,
    open_run,
    through,
    unnamed,
    write_org,
)
from policysync.errors import UsageError
from policysync.journal import MAY_HAVE_LANDED, Journal, JournaledRun, JournalEntry, refusal
from policysync.providers.base import Provider
from policysync.result import OrgResult, RunResult
from policysync.selection import resolve
from policysync.workers import Progress


async def rollback(
    provider: Provider,
    base: Path,
    run_id: str,
    wanted: list[JournalEntry],
    policies: Path,
    parallelism: int,
    started: Callable[[str], None] = unnamed,
    progress: Callable[[int], Progress] | None = None,
    environment: str | None = None,
) -> RunResult:
    """Roll back run `run_id` (its entries `wanted`) through `provider`, journaled as a
    run of its own under `base` (of `environment`, the run's own: `check_environment`);
    `policies` is the folder whose git state is recorded;
    `started(run_id)` once the rollback's own run is created; `progress(total)` once
    the organizations to put back are known, then its callback after each."""
    state = git.head_state(policies)

    def journal(rolled_back: str) -> Journal:
        run = Journal.create(
            base,
            kind="rollback",
            project_id=provider.project_id,
            git_commit=state.commit,
            git_dirty=state.dirty,
            rolled_back_run=rolled_back,
            environment=environment,
        )
        started(run.run_id)
        return run

    return await rollback_run(
        provider, run_id, provider.project_id, wanted, journal, parallelism, progress
    )


def rollback_entries(run: JournaledRun, project_id: str, only: Sequence[str]) -> list[JournalEntry]:
    """The entries of a journaled run (`journal.read_run`) that a rollback of it, limited
    to the organizations `only` (all when empty), is about; a UsageError when it cannot
    be rolled back here: another project, or a journal that does not add up (for `only`,
    their own entries must be intact). Checked before anything is asked or written."""
    summary, entries = run.summary, run.entries
    _check_project(run, project_id)
    problems = run.problems_of(only)
    if problems:
        raise refusal(run, problems)
    unknown = sorted(set(only) - {e.organization_id for e in entries})
    if unknown:
        raise UsageError(f"--org {', '.join(unknown)}: run {summary.run_id} did not write it")
    return [e for e in entries if not only or e.organization_id in only]


async def named_orgs(run: JournaledRun, provider: Provider, names: Sequence[str]) -> list[str]:
    """The organizations, as the run's entries name them, that the `--org` names give:
    an id as the run wrote it, an entry's file name (`acme` for policies/orgs/acme.json),
    or another name the organization has live (listed only when needed)."""
    _check_project(run, provider.project_id)
    damaged = [name for name in names if run.problems_of([name])]  # refused by its problems
    managed = {entry.organization_id: entry.file for entry in run.entries}
    rest = [name for name in names if name not in damaged]
    nothing = f"run {run.summary.run_id} did not write"
    found = await resolve(rest, managed, provider.list_orgs, nothing)
    return damaged + found


def check_environment(run: JournaledRun, environment: str | None) -> None:
    """A UsageError unless `environment` (--env) is the one the run wrote to: a journal
    of one environment is never put back in another."""
    written = run.summary.environment
    if written == environment:
        return

    def named(name: str | None) -> str:
        return f"environment {name}" if name is not None else "no environment (no --env)"

    again = f"--env {written}" if written is not None else "without --env"
    raise UsageError(
        f"run {run.summary.run_id} wrote to {named(written)}, not {named(environment)}: "
        f"roll it back {again}"
    )


def _check_project(run: JournaledRun, project_id: str) -> None:
    summary = run.summary
    if summary.project_id != project_id:
        raise UsageError(
            f"run {summary.run_id} wrote to project {summary.project_id}, not "
            f"{project_id}: check which project the credentials in the environment name"
        )


async def rollback_run(
    provider: Provider,
    run_id: str,
    project_id: str,
    wanted: list[JournalEntry],
    journal: Callable[[str], Journal],
    parallelism: int,
    progress: Callable[[int], Progress] | None = None,
) -> RunResult:
    """Put back the priors of run `run_id` (its `rollback_entries`), where live is still
    what that run wrote: live is read for every entry whose PUT may have landed
    (pending, unknown, applied)."""
    written = [e for e in wanted if e.state in MAY_HAVE_LANDED and e.prior is not None]
    run = open_run(lambda: journal(run_id)) if written else None

    async def one(entry: JournalEntry) -> OrgResult:
        # Live still the prior: nothing to undo (a pending or unknown PUT that never
        # landed, too); live what the run wrote, or half of it (a write role by role that
        # stopped): put the prior back, giving deleted roles back to their holders;
        # anything else: changed since (stale, left alone).
        assert run is not None
        assert entry.prior is not None
        expected = Expected(entry.desired, fingerprint(entry.desired))
        return await write_org(
            provider,
            run,
            entry.organization_id,
            entry.file,
            entry.prior,
            expected,
            run_id,
            entry.holders,
        )

    results: dict[str, OrgResult] = {}
    if run is not None:
        tick = progress(len(written)) if progress else None
        done = await through(run, written, one, parallelism, tick)
        results = {r.organization_id: r for r in done}
    for entry in wanted:
        if entry.organization_id not in results:  # the run wrote nothing there
            results[entry.organization_id] = OrgResult(
                organization_id=entry.organization_id, result="unchanged", error=None
            )
    return finish("rollback", project_id, run, results)
