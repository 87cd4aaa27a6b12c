"""The planner: desired and live org policies in, the changes `apply` would make out.

Pure: no network, disk, clock or terminal; the caller reads files and Stytch and passes
the time. Roles, permissions and actions are sets to Stytch, so policies are compared in
a canonical form (`normalize`) and only real differences become role changes. The plan
keeps policies as they were written and read: `apply` PUTs what the file says.
Its JSON form (`plan --format json`, `plan --out`) is described by
`schemas/plan.schema.json`, generated from these classes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field

from policysync.models import OrgPolicy, Permission, Role

_CONFIG = ConfigDict(frozen=True, extra="forbid")

ChangeAction = Literal["create", "update", "delete"]
OrgAction = Literal["no-op", "update", "error"]


class RoleChange(BaseModel):
    """One role `apply` creates, updates or deletes in one organization."""

    model_config = _CONFIG

    role_id: str
    action: ChangeAction
    before: Role | None = Field(description="The live role; null when it is created.")
    after: Role | None = Field(description="The role of the file; null when it is deleted.")


class OrgError(BaseModel):
    """Why an organization could not be planned (Stytch's error, or a connection fault)."""

    model_config = _CONFIG

    status: int | None = Field(description="HTTP status; null when no answer came.")
    error_type: str = Field(description="Stytch's `error_type`, e.g. organization_not_found.")
    message: str
    request_id: str | None = Field(description="Stytch's request id, for its support.")


class OrgPlan(BaseModel):
    """The plan of one managed organization."""

    model_config = _CONFIG

    organization_id: str = Field(description="As written in the file: id, slug or external id.")
    file: str = Field(description="The organization file, as policysync found it.")
    action: OrgAction
    prior_fingerprint: str | None = Field(
        description="Fingerprint of the live policy; `apply` refuses a stale plan by it."
    )
    prior: OrgPolicy | None = Field(description="The live policy; null on error.")
    desired: OrgPolicy = Field(description="The policy of the file, as written.")
    role_changes: tuple[RoleChange, ...] = Field(description="Sorted by role_id.")
    error: OrgError | None = Field(description="Why it could not be planned; null otherwise.")


class PlanSummary(BaseModel):
    model_config = _CONFIG

    add: int = Field(ge=0, description="Roles to create.")
    change: int = Field(ge=0, description="Roles to update.")
    destroy: int = Field(ge=0, description="Roles to delete.")
    organizations: int = Field(ge=0, description="Organizations planned.")
    changed: int = Field(ge=0, description="Organizations whose action is update.")
    failed: int = Field(ge=0, description="Organizations whose action is error.")


class Plan(BaseModel):
    """What `apply` would change: the result of `policysync plan`."""

    model_config = _CONFIG

    format_version: Literal["1"]
    policysync_version: str
    created_at: str = Field(description="ISO 8601 date and time.")
    project_id: str = Field(description="The Stytch project planned against.")
    git_commit: str | None = Field(description="Commit of the policy files; null outside git.")
    git_dirty: bool | None = Field(description="Whether the work tree had uncommitted changes.")
    organizations: tuple[OrgPlan, ...] = Field(description="Sorted by organization_id.")
    summary: PlanSummary
    checksum: str | None = Field(
        default=None,
        description="In a saved plan (plan --out): sha256 of the plan's canonical JSON "
        "without this field; apply refuses a plan whose checksum fails.",
    )


# What the caller read for one organization: its id as written, its file, the policy of
# the file, and the live policy or why it could not be read.
OrgState = tuple[str, str, OrgPolicy, OrgPolicy | OrgError]


def _grants(role: Role) -> dict[str, frozenset[str]]:
    """Actions per resource. Stytch authorizes on the union of a role's permissions, so
    a resource split over two entries grants the same as the entries merged."""
    grants: dict[str, set[str]] = {}
    for permission in role.permissions:
        grants.setdefault(permission.resource_id, set()).update(permission.actions)
    return {resource: frozenset(actions) for resource, actions in grants.items()}


def normalize_role(role: Role) -> Role:
    """`role` with permissions merged per resource and everything sorted.

    `"*"` stays as written: what it grants depends on the project policy, which can
    change, so `["*"]` and the full list of actions are different policies.
    """
    grants = _grants(role)
    permissions = tuple(
        Permission(resource_id=resource, actions=tuple(sorted(grants[resource])))
        for resource in sorted(grants)
    )
    return Role(role_id=role.role_id, description=role.description, permissions=permissions)


def normalize(policy: OrgPolicy) -> OrgPolicy:
    """The canonical form of `policy`: equal for any two policies Stytch treats alike."""
    roles = sorted(map(normalize_role, policy.roles), key=lambda role: role.role_id)
    return OrgPolicy(roles=tuple(roles))


def fingerprint(policy: OrgPolicy) -> str:
    """A digest of the canonical form, to tell whether live changed since a plan."""
    canonical = json.dumps(
        normalize(policy).model_dump(mode="json"), sort_keys=True, separators=(",", ":")
    )  # ASCII-only (ensure_ascii): any string, even a lone surrogate, encodes
    return "sha256:" + hashlib.sha256(canonical.encode("ascii")).hexdigest()


def _role_action(before: Role | None, after: Role | None) -> ChangeAction | None:
    if before is None:
        return "create"
    if after is None:
        return "delete"
    return "update" if normalize_role(before) != normalize_role(after) else None


def _role_changes(desired: OrgPolicy, live: OrgPolicy) -> tuple[RoleChange, ...]:
    """The roles that differ, by role_id (role ids are unique in an organization)."""
    before = {role.role_id: role for role in live.roles}
    after = {role.role_id: role for role in desired.roles}
    changes = []
    for role_id in sorted(before.keys() | after.keys()):
        old, new = before.get(role_id), after.get(role_id)
        action = _role_action(old, new)
        if action is not None:
            changes.append(RoleChange(role_id=role_id, action=action, before=old, after=new))
    return tuple(changes)


def plan_org(
    organization_id: str, file: str, desired: OrgPolicy, live: OrgPolicy | OrgError
) -> OrgPlan:
    """The plan of one organization; an unreadable one is planned as an error, so the
    others are still planned and every failure is reported together."""
    if isinstance(live, OrgError):
        return OrgPlan(
            organization_id=organization_id,
            file=file,
            action="error",
            prior_fingerprint=None,
            prior=None,
            desired=desired,
            role_changes=(),
            error=live,
        )
    changes = _role_changes(desired, live)
    return OrgPlan(
        organization_id=organization_id,
        file=file,
        action="update" if changes else "no-op",
        prior_fingerprint=fingerprint(live),
        prior=live,
        desired=desired,
        role_changes=changes,
        error=None,
    )


def _count(orgs: tuple[OrgPlan, ...], action: ChangeAction) -> int:
    return sum(change.action == action for org in orgs for change in org.role_changes)


def _summarize(orgs: tuple[OrgPlan, ...]) -> PlanSummary:
    return PlanSummary(
        add=_count(orgs, "create"),
        change=_count(orgs, "update"),
        destroy=_count(orgs, "delete"),
        organizations=len(orgs),
        changed=sum(org.action == "update" for org in orgs),
        failed=sum(org.action == "error" for org in orgs),
    )


def make_plan(
    orgs: Iterable[OrgState],
    *,
    project_id: str,
    created_at: str,
    policysync_version: str,
    git_commit: str | None,
    git_dirty: bool | None,
) -> Plan:
    planned = tuple(sorted((plan_org(*org) for org in orgs), key=lambda o: o.organization_id))
    return Plan(
        format_version="1",
        policysync_version=policysync_version,
        created_at=created_at,
        project_id=project_id,
        git_commit=git_commit,
        git_dirty=git_dirty,
        organizations=planned,
        summary=_summarize(planned),
    )


def plan_is_empty(plan: Plan) -> bool:
    """No organization to update. Errors are not changes: the CLI reports them apart."""
    return not any(org.action == "update" for org in plan.organizations)


class ResourceChange(NamedTuple):
    """How a role's grant on one resource changes."""

    resource_id: str
    action: ChangeAction  # create: newly granted; delete: no longer granted at all
    added: tuple[str, ...]
    removed: tuple[str, ...]


class RoleDiff(NamedTuple):
    """What differs between two versions of one role, for the renderers."""

    description: tuple[str, str] | None  # (before, after) when it changed
    resources: tuple[ResourceChange, ...]  # sorted by resource_id


def _resource_change(
    resource_id: str, old: frozenset[str] | None, new: frozenset[str] | None
) -> ResourceChange:
    if old is None:
        return ResourceChange(resource_id, "create", tuple(sorted(new or ())), ())
    if new is None:
        return ResourceChange(resource_id, "delete", (), tuple(sorted(old)))
    return ResourceChange(resource_id, "update", tuple(sorted(new - old)), tuple(sorted(old - new)))


def role_diff(before: Role, after: Role) -> RoleDiff:
    old, new = _grants(before), _grants(after)
    resources = tuple(
        _resource_change(resource, old.get(resource), new.get(resource))
        for resource in sorted(old.keys() | new.keys())
        if old.get(resource) != new.get(resource)
    )
    description = (
        (before.description, after.description) if before.description != after.description else None
    )
    return RoleDiff(description, resources)
