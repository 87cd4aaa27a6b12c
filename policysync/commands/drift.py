"""`policysync drift` as a function: the plan (planning.plan_live), the project policy
snapshot compared with live, and with --all-orgs the unmanaged organizations found by
organization search; drift.py makes the report of them, views/drift.py prints it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import NamedTuple

from policysync import durable
from policysync.commands.plan import Options, plan_live
from policysync.config import Settings
from policysync.drift import (
    DriftReport,
    ProjectDrift,
    UnmanagedOrg,
    build_report,
    project_drift,
    unmanaged_org,
)
from policysync.errors import ProviderError, UsageError
from policysync.formats import file_format
from policysync.layout import root_file
from policysync.loader import load_project
from policysync.models import Organization
from policysync.plan import OrgError
from policysync.providers.base import Provider
from policysync.report import ValidationReport
from policysync.selection import Shard
from policysync.workers import Progress

MAX_PAGE_SIZE = 1000  # Stytch's ceiling for one page of organization search


async def find_unmanaged(
    organizations: AsyncIterator[Organization], managed: frozenset[str], shard: Shard | None
) -> tuple[UnmanagedOrg, ...]:
    """The unmanaged organizations with roles among `organizations` (every search page)."""
    found = [org async for o in organizations if (org := unmanaged_org(o, managed, shard))]
    return tuple(sorted(found, key=lambda org: org.organization_id))


class DriftRun(NamedTuple):
    report: DriftReport | None  # None when the files are invalid
    validation: ValidationReport  # what validation found (warnings, or the errors)


async def drift_live(
    settings: Settings,
    provider: Provider,
    options: Options,
    all_orgs: bool = False,
    page_size: int = MAX_PAGE_SIZE,
    progress: Callable[[int], Progress] | None = None,
) -> DriftRun:
    """Compare live Stytch with the files of `settings.policies`."""
    if all_orgs and options.only:
        raise UsageError(
            "--all-orgs looks for unmanaged organizations among all of them; --org limits the "
            "run to some: give one or the other"
        )
    # Drift reports differences; who depends on a role is apply's question, not its.
    run = await plan_live(settings, provider, options, progress, dependants=False)
    if run.plan is None or run.live_project is None:
        return DriftRun(None, run.report)
    root = Path(settings.policies)
    if not file_format(settings.provider).project_policy:  # nothing live to compare
        project = ProjectDrift(
            file=str(root / root_file(settings.provider)), drifted=False, items=()
        )
    else:
        snapshot, _ = load_project(root, settings.limits)
        if snapshot is None:  # it was valid moments ago, in the plan
            raise UsageError(f"{root / 'project.json'} changed during the run: run it again")
        project = project_drift(str(snapshot.path), snapshot.policy, run.live_project)
    unmanaged, search_error = None, None
    if all_orgs:
        # Sequential pages, after the plan, through the same provider and its pacing.
        try:
            pages = provider.list_orgs(page_size)
            unmanaged = await find_unmanaged(pages, run.managed, options.shard)
        except ProviderError as exc:
            search_error = OrgError.of(exc)
    return DriftRun(build_report(run.plan, project, unmanaged, search_error), run.report)


def write_report(report: DriftReport, path: Path) -> None:
    """The JSON report (`--report FILE`), written whole or not at all (`durable.replace`)."""
    try:
        durable.replace(path, report.model_dump_json(indent=2).encode() + b"\n")
    except OSError as exc:
        raise UsageError(f"--report {path}: cannot write it: {exc.strerror or exc}") from None
