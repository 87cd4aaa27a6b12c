"""`policysync plan`, as a function: validate, read live state, compare.

The order matters: the catalog (the project policy) is read first, as the authority
the files are validated against; an invalid tree stops the run before any organization
is read; only then are the managed organizations read, concurrently. With
`--against-ref REF` the files at HEAD are planned the same way, against the files at
REF playing live (`providers/gitref.py`).
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

from policysync import __version__, git
from policysync.config import Limits, Settings
from policysync.diagnostics import sort_diagnostics
from policysync.errors import ProviderError, UsageError
from policysync.formats import file_format
from policysync.layout import ORGS_DIR
from policysync.models import OrgPolicy, OrgPolicyFile, ProjectPolicy
from policysync.plan import (
    InUseOf,
    OrgError,
    Plan,
    PlanEntry,
    Source,
    assemble,
    plan_org,
    with_in_use,
)
from policysync.providers.base import Provider
from policysync.providers.gitref import GitRef, relocate
from policysync.report import ValidationReport
from policysync.selection import Shard, resolve, resolve_by_files, select
from policysync.templates import Template, TemplateError, expand, read_templates
from policysync.validate import house_rules_of
from policysync.workers import Progress, each


class PlanRun(NamedTuple):
    plan: Plan | None  # None when the files are invalid
    report: ValidationReport  # what validation found (warnings, or the errors that stopped it)
    live_project: ProjectPolicy | None = None  # what the files were validated against
    managed: frozenset[str] = frozenset()  # every organization_id a file names (drift)
    notes: tuple[str, ...] = ()  # what the plan could not take into account

    def __repr__(self) -> str:
        # Python 3.11's asyncio.run formats the finished task, result included, when it
        # restores the Ctrl-C handler: a full repr of a large plan costs seconds.
        summary = self.plan.summary if self.plan is not None else None
        return f"PlanRun(plan summary={summary!r}, report valid={self.report.valid})"


class Options(NamedTuple):
    only: Sequence[str] = ()
    shard: Shard | None = None
    parallelism: int = 16
    environment: str | None = None  # --env: recorded in the plan; absent organizations skipped


async def plan_live(
    settings: Settings,
    provider: Provider,
    options: Options,
    progress: Callable[[int], Progress] | None = None,
    dependants: bool = True,
) -> PlanRun:
    """Plan the managed organizations of `settings.policies` against the provider (which
    the caller has entered). `progress(total)` is called once the total is known and
    returns the per-org callback. With `dependants`, each deletion says who depends on
    its role (`in_use`)."""
    root = Path(settings.policies)
    live_project = await provider.read_catalog()
    rules, problems = house_rules_of(settings)
    files_of = file_format(settings.provider)
    checked = files_of.validate_tree(root, settings.limits, live_project, rules)
    report = ValidationReport.build(
        sort_diagnostics(problems + checked.diagnostics),
        checked.files_checked,
        checked.organizations,
        strict=False,
    )
    if not report.valid:
        return PlanRun(None, report, live_project)
    files = checked.files
    only = await resolve(options.only, _named(files), provider.list_orgs, _no_file(root))
    ids = select(sorted(files), only, options.shard)
    tick = progress(len(ids)) if progress else None
    desired = Desired.of(files, root, settings.limits, settings.provider)
    # git's state meanwhile: the organizations' reads leave the CPU idle
    git_state = asyncio.ensure_future(asyncio.to_thread(git.head_state, root))
    in_use = files_of.in_use if dependants else None
    entries = await plan_orgs(
        provider, desired, ids, options.parallelism, tick, options.environment, in_use
    )
    state = await git_state
    plan = _assemble(
        entries, provider.project_id, state.commit, state.dirty, settings, options.environment
    )
    return PlanRun(plan, report, live_project, frozenset(files))


def plan_against_ref(settings: Settings, ref: str, options: Options) -> PlanRun:
    """The offline plan: the files at HEAD against the files at `ref` playing live.
    HEAD's files are validated as `plan` validates them, against HEAD's project.json:
    written to a temporary folder for the loader, the diagnostics naming them as they
    are named in the work tree."""
    root, limits = Path(settings.policies), settings.limits
    head = git.files_at(root, "HEAD", limits.max_file_bytes)
    files_of = file_format(settings.provider)
    live = GitRef.at(
        root, ref, limits.max_file_bytes, files_of.parse_policy, files_of.parse_template
    )
    state = git.head_state(root)
    notes = list(live.notes)
    if state.dirty:
        notes.insert(
            0,
            f"{root} has uncommitted changes: they are not in this plan, which compares "
            f"the commits HEAD and {ref}",
        )
    rules, problems = house_rules_of(settings)  # as in the work tree
    with tempfile.TemporaryDirectory(prefix="policysync-") as tmp:
        tree = Path(tmp) / "policies"
        git.materialize(head.files, tree, settings.provider)
        checked = files_of.validate_tree(tree, limits, None, rules)
        diagnostics = problems + [relocate(d, tree, root) for d in checked.diagnostics]
        report = ValidationReport.build(
            sort_diagnostics(diagnostics), checked.files_checked, checked.organizations, False
        )
        if not report.valid:
            return PlanRun(None, report, notes=tuple(notes))
        only = resolve_by_files(options.only, _named(checked.files), _no_file(root, " at HEAD"))
        ids = select(sorted(checked.files), only, options.shard)
        desired = Desired.of(checked.files, tree, limits, settings.provider, root)
        entries = asyncio.run(plan_orgs(live, desired, ids, options.parallelism, None))
    plan = _assemble(entries, live.project_id, head.commit, state.dirty, settings)
    if plan.summary.destroy:
        notes.append(
            "an offline plan cannot tell who depends on the roles it deletes (in_use is "
            "null): the plan against live says, and apply refuses a deletion of a role in "
            "use without --allow-delete-in-use"
        )
    return PlanRun(plan, report, None, frozenset(checked.files), tuple(notes))


def _named(files: dict[str, Path]) -> dict[str, str | None]:
    """The organizations the files name, with their files, as `--org` finds them."""
    return {org_id: str(path) for org_id, path in files.items()}


def _no_file(root: Path, at: str = "") -> str:
    return f"no file in {root / ORGS_DIR}{at} names"


def _assemble(
    entries: list[PlanEntry],
    project_id: str,
    commit: str | None,
    dirty: bool | None,
    settings: Settings,
    environment: str | None = None,
) -> Plan:
    return assemble(
        entries,
        project_id=project_id,
        environment=environment,
        created_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        policysync_version=__version__,
        git_commit=commit,
        git_dirty=dirty,
        rules=file_format(settings.provider).escalations._replace(
            sensitive=frozenset(settings.sensitive_grants())
        ),
    )


class Desired(NamedTuple):
    """Where the policy files of the organizations are, to read each when needed, and
    the templates they use (read once)."""

    files: dict[str, Path]  # organization_id -> file
    real_root: Path
    limits: Limits
    provider: str = "stytch"  # whose files they are (`formats.file_format`)
    tree: Path | None = None  # files read from `tree`, named as under `shown` (--against-ref)
    shown: Path | None = None
    templates: Mapping[str, Template] = {}

    @classmethod
    def of(
        cls,
        files: dict[str, Path],
        root: Path,
        limits: Limits,
        provider: str,
        shown: Path | None = None,
    ) -> Desired:
        """The organization files `files` of the policies folder `root` (a copy of the
        folder `shown`, for --against-ref), which validation found valid."""
        templates = read_templates(root, file_format(provider).parse_template, limits)
        desired = cls(files, root.resolve(), limits, provider, root if shown else None, shown)
        return desired._replace(
            templates={
                name: t._replace(file=desired.shown_as(Path(t.file)))
                for name, t in templates.items()
            }
        )

    def shown_as(self, path: Path) -> str:
        if self.tree is None or self.shown is None:
            return str(path)
        return str(self.shown / path.relative_to(self.tree))

    def name(self, organization_id: str) -> str:
        return self.shown_as(self.files[organization_id])

    def document(self, organization_id: str) -> OrgPolicyFile:
        path = self.files[organization_id]
        read_policy = file_format(self.provider).read_policy
        document = read_policy(path, self.real_root, self.limits)
        if document is None or document.organization_id != organization_id:
            raise UsageError(f"{path} changed during the plan: run it again")
        return document

    def expanded(self, organization_id: str) -> tuple[OrgPolicy, dict[str, Source]]:
        """An organization's desired roles, its templates expanded, and the template
        each role comes from."""
        try:
            policy, sources = expand(self.document(organization_id), self.templates)
        except TemplateError as exc:
            path = self.files[organization_id]
            raise UsageError(f"{path}: {exc}: the templates changed during the plan") from None
        origins = {
            role_id: Source(name, self.templates[name].file) for role_id, name in sources.items()
        }
        return policy, origins


async def read_live(provider: Provider, organization_id: str) -> OrgPolicy | OrgError:
    """The live policy of an organization, or why it could not be read."""
    try:
        return await provider.read_org(organization_id)
    except ProviderError as exc:
        return OrgError.of(exc)


async def plan_orgs(
    provider: Provider,
    desired: Desired,
    ids: Sequence[str],
    parallelism: int,
    tick: Progress | None,
    environment: str | None = None,
    in_use: InUseOf | None = None,
) -> list[PlanEntry]:
    """Each organization planned as soon as its live policy comes in; only the plan's
    compact entries are kept. With an `environment`, one it lacks is skipped. With
    `in_use`, the roles an organization's plan deletes are looked up (the provider's
    `holders`, in the organization's slot) and each deletion carries `in_use` of them;
    an organization whose lookup fails is planned as an error, since its deletions
    could not be weighed."""

    async def plan_one(org_id: str) -> PlanEntry:
        live = await read_live(provider, org_id)
        policy, sources = desired.expanded(org_id)
        org = plan_org(org_id, desired.name(org_id), policy, live, sources, environment)
        deleted = [c.role_id for c in org.role_changes if c.action == "delete"]
        if in_use is not None and deleted:
            try:
                held = await provider.holders(org_id, deleted)
            except ProviderError as exc:
                error = OrgError.of(exc)
                message = f"reading who depends on the roles to delete: {error.message}"
                error = error.model_copy(update={"message": message})
                return PlanEntry.of(plan_org(org_id, org.file, policy, error))
            org = with_in_use(org, held, in_use)
        return PlanEntry.of(org)

    return await each(ids, plan_one, parallelism, tick)
