"""`policysync drift`: is live Stytch still what git says?

A drift run is a plan (the same loading, validation and reading of live state) seen
from the other side: a role the plan would delete is a role *added live*, one it would
create was *removed live*, one it would update was *changed live*. To the plan it adds
what only a scheduled check cares about: managed files whose organization no longer
exists, a `project.json` out of date with the live project policy, and (`--all-orgs`)
organizations that hold org-specific roles but have no file.

The report is pure data (its JSON Schema is published as `schemas/drift.schema.json`),
made here by pure functions; commands/drift.py reads live state for it, views/drift.py
formats it, the CLI chooses the exit code.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from policysync.canonical import ProjectItemKind, project_items
from policysync.errors import ORGANIZATION_NOT_FOUND
from policysync.models import Organization, ProjectPolicy, Role
from policysync.plan import ChangeAction, OrgError, OrgPlan, Plan
from policysync.selection import Shard

_CONFIG = ConfigDict(frozen=True, extra="forbid")

Drift = Literal["added", "removed", "changed"]  # what happened live, outside git
OrgStatus = Literal["drifted", "missing", "error", "absent"]

# The plan's action, which makes live match the file, undoes the drift.
_DRIFT_OF: dict[ChangeAction, Drift] = {"delete": "added", "create": "removed", "update": "changed"}


class RoleDrift(BaseModel):
    """One role of a managed organization that differs live from its file."""

    model_config = _CONFIG

    role_id: str
    drift: Drift = Field(description="added, removed or changed live, outside git.")
    file: Role | None = Field(description="The role in the file; null when added live.")
    live: Role | None = Field(description="The live role; null when removed live.")


class OrgDrift(BaseModel):
    """A managed organization whose live policy is not what its file says, or that
    could not be compared."""

    model_config = _CONFIG

    organization_id: str = Field(description="As written in the file: id, slug or external id.")
    file: str = Field(description="The organization file, as policysync found it.")
    status: OrgStatus = Field(
        description="drifted: roles differ; missing: Stytch has no such organization "
        "(organization_not_found); error: it could not be read; absent: with --env, the "
        "environment has no such organization (skipped there, not drift)."
    )
    roles: tuple[RoleDrift, ...] = Field(description="Sorted by role_id.")
    error: OrgError | None = Field(description="Stytch's answer when missing or an error.")


class ProjectItemDrift(BaseModel):
    """A role, resource or scope of the project policy that differs live from project.json."""

    model_config = _CONFIG

    kind: ProjectItemKind
    id: str = Field(description="Its role_id, resource_id or scope.")
    drift: Drift = Field(description="added, removed or changed live, since project.json.")


class ProjectDrift(BaseModel):
    model_config = _CONFIG

    file: str = Field(description="The project policy snapshot, as policysync found it.")
    drifted: bool = Field(description="Whether it differs from the live project policy.")
    items: tuple[ProjectItemDrift, ...] = Field(description="Sorted by kind, then id.")


class UnmanagedOrg(BaseModel):
    """An organization with org-specific roles and no file (found with --all-orgs)."""

    model_config = _CONFIG

    organization_id: str
    organization_slug: str
    organization_name: str
    organization_external_id: str | None
    role_ids: tuple[str, ...] = Field(description="Its live org-specific roles, sorted.")


class DriftSummary(BaseModel):
    model_config = _CONFIG

    organizations: int = Field(ge=0, description="Managed organizations compared.")
    drifted: int = Field(ge=0, description="Managed organizations whose roles differ.")
    roles_added: int = Field(ge=0, description="Roles added live, outside git.")
    roles_removed: int = Field(ge=0, description="Roles removed live, outside git.")
    roles_changed: int = Field(ge=0, description="Roles changed live, outside git.")
    missing: int = Field(ge=0, description="Managed organizations that no longer exist.")
    failed: int = Field(ge=0, description="Managed organizations that could not be read.")
    absent: int = Field(
        0, ge=0, description="With --env: managed organizations the environment lacks (skipped)."
    )
    project_drifted: bool
    unmanaged: int | None = Field(
        ge=0, description="Unmanaged organizations with roles; null without --all-orgs."
    )


class DriftReport(BaseModel):
    """Whether live Stytch still matches the policy files: `policysync drift`'s result."""

    model_config = ConfigDict(frozen=True, extra="forbid", title="Drift")

    format_version: Literal["1"]
    policysync_version: str
    created_at: str = Field(description="ISO 8601 date and time.")
    project_id: str = Field(
        description="The Stytch project, or ZenML Pro API URL, compared (never a secret)."
    )
    environment: str | None = Field(
        None, description="The environment of the settings compared (--env); null without it."
    )
    git_commit: str | None = Field(description="Commit of the policy files; null outside git.")
    git_dirty: bool | None = Field(description="Whether the work tree had uncommitted changes.")
    drift_found: bool = Field(
        description="Any organization drifted or missing, project.json out of date, or "
        "(with --all-orgs) an unmanaged organization with roles."
    )
    project: ProjectDrift
    organizations: tuple[OrgDrift, ...] = Field(
        description="The managed organizations drifted, missing or unreadable (the others "
        "match their files), sorted by organization_id."
    )
    unmanaged: tuple[UnmanagedOrg, ...] | None = Field(
        description="With --all-orgs: organizations with roles and no file, by "
        "organization_id; null without it."
    )
    search_error: OrgError | None = Field(
        description="Why the organization search (--all-orgs) failed; null otherwise."
    )
    summary: DriftSummary

    def __repr__(self) -> str:
        # asyncio.run formats a finished task's result: keep that cheap for big reports
        return f"DriftReport(summary={self.summary!r})"


def org_drift(org: OrgPlan) -> OrgDrift | None:
    """What drifted in one planned organization; None when it matches its file."""
    if org.action == "no-op":
        return None
    if org.error is not None:
        status: OrgStatus = (
            "absent"
            if org.action == "absent"
            else "missing"
            if org.error.error_type == ORGANIZATION_NOT_FOUND
            else "error"
        )
        return OrgDrift(
            organization_id=org.organization_id,
            file=org.file,
            status=status,
            roles=(),
            error=org.error,
        )
    roles = tuple(
        RoleDrift(role_id=c.role_id, drift=_DRIFT_OF[c.action], file=c.after, live=c.before)
        for c in org.role_changes
    )
    return OrgDrift(
        organization_id=org.organization_id,
        file=org.file,
        status="drifted",
        roles=roles,
        error=None,
    )


def _item_drift(before: list[str] | None, after: list[str] | None) -> Drift | None:
    if before is None:
        return "added"
    if after is None:
        return "removed"
    return "changed" if before != after else None


def project_drift(file: str, snapshot: ProjectPolicy, live: ProjectPolicy) -> ProjectDrift:
    """What changed live in the project policy since `snapshot` (project.json) was taken."""
    before, after = project_items(snapshot), project_items(live)
    items = []
    for key in sorted(before.keys() | after.keys()):
        drift = _item_drift(before.get(key), after.get(key))
        if drift is not None:
            items.append(ProjectItemDrift(kind=key[0], id=key[1], drift=drift))
    return ProjectDrift(file=file, drifted=bool(items), items=tuple(items))


def unmanaged_org(
    organization: Organization, managed: frozenset[str], shard: Shard | None
) -> UnmanagedOrg | None:
    """The organization when it has roles, no file names it (by id, slug or external id)
    and it falls in `shard`; None otherwise."""
    names = {
        organization.organization_id,
        organization.organization_slug,
        organization.organization_external_id,
    }
    if not organization.org_policy.roles or names & managed:
        return None
    if shard is not None and not shard.holds(organization.organization_id):
        return None
    return UnmanagedOrg(
        organization_id=organization.organization_id,
        organization_slug=organization.organization_slug,
        organization_name=organization.organization_name,
        organization_external_id=organization.organization_external_id,
        role_ids=tuple(sorted(role.role_id for role in organization.org_policy.roles)),
    )


def build_report(
    plan: Plan,
    project: ProjectDrift,
    unmanaged: tuple[UnmanagedOrg, ...] | None,
    search_error: OrgError | None = None,
) -> DriftReport:
    """The drift report of a plan (whose changes are the drift), the project policy
    comparison and, with --all-orgs, the unmanaged organizations found."""
    orgs = tuple(drift for org in plan.changes if (drift := org_drift(org)) is not None)

    def count(status: OrgStatus) -> int:
        return sum(org.status == status for org in orgs)

    def roles(drift: Drift) -> int:
        return sum(role.drift == drift for org in orgs for role in org.roles)

    summary = DriftSummary(
        organizations=plan.summary.organizations,
        drifted=count("drifted"),
        roles_added=roles("added"),
        roles_removed=roles("removed"),
        roles_changed=roles("changed"),
        missing=count("missing"),
        failed=count("error"),
        absent=count("absent"),
        project_drifted=project.drifted,
        unmanaged=None if unmanaged is None else len(unmanaged),
    )
    return DriftReport(
        format_version="1",
        policysync_version=plan.policysync_version,
        created_at=plan.created_at,
        project_id=plan.project_id,
        environment=plan.environment,
        git_commit=plan.git_commit,
        git_dirty=plan.git_dirty,
        drift_found=bool(summary.drifted or summary.missing or project.drifted or unmanaged),
        project=project,
        organizations=orgs,
        unmanaged=unmanaged,
        search_error=search_error,
        summary=summary,
    )
