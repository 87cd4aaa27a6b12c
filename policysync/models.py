"""The policy models, shared by desired state (files) and live state (the API).

Field names and shapes are exactly Stytch's, so an API response pastes into a file.
Lists are tuples so that models are immutable and hashable; order carries no meaning
(roles, permissions and actions are sets to Stytch).
The published JSON Schemas in `schemas/` are generated from these classes.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field

MODEL_CONFIG = ConfigDict(frozen=True, extra="forbid")
SCHEMA_KEY = Field(
    default="",
    alias="$schema",
    description="Path or URL of the JSON Schema, for editors. Ignored by policysync.",
)


class Permission(BaseModel):
    """Actions granted on one resource."""

    model_config = MODEL_CONFIG

    resource_id: str = Field(description="A resource of the project policy, e.g. `documents`.")
    actions: tuple[str, ...] = Field(
        description='Actions the resource declares, or `["*"]` for all of them.'
    )


class Role(BaseModel):
    model_config = MODEL_CONFIG

    role_id: str = Field(description="Unique within the organization; not a project role.")
    description: str = Field(default="", description="Shown in Stytch's dashboard.")
    permissions: tuple[Permission, ...]


class OrgPolicy(BaseModel):
    """The org-specific roles of one organization (PUT replaces all of them)."""

    model_config = MODEL_CONFIG

    roles: tuple[Role, ...] = Field(description="`[]` means: no org-specific roles.")


class OrgPolicyFile(BaseModel):
    """One file of `policies/orgs/`: the desired org policy of one organization."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    schema_: str = SCHEMA_KEY
    organization_id: str = Field(
        description="The organization's id, slug or external id, as the API accepts."
    )
    templates: tuple[str, ...] = Field(
        default=(),
        description="Templates whose roles the organization has besides its own: the names "
        "of files in `policies/templates/`, without `.json`.",
    )
    org_policy: OrgPolicy = Field(
        description="The organization's own roles (its templates give it the others)."
    )


class TemplateFile(BaseModel):
    """One file of `policies/templates/`: roles that every organization naming the
    template in its `templates` has, as if they were written in its file."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    schema_: str = SCHEMA_KEY
    description: str = Field(default="", description="What the template is for.")
    roles: tuple[Role, ...] = Field(description="Roles in the shape of `org_policy.roles`.")


class Resource(BaseModel):
    """A resource of the project policy and the actions it declares."""

    model_config = MODEL_CONFIG

    resource_id: str
    description: str = ""
    actions: tuple[str, ...]


class Scope(BaseModel):
    model_config = MODEL_CONFIG

    scope: str
    description: str = ""
    permissions: tuple[Permission, ...]


class ProjectPolicy(BaseModel):
    """The project policy, as GET /v1/b2b/rbac/policy returns it under `policy`."""

    model_config = MODEL_CONFIG

    roles: tuple[Role, ...]
    resources: tuple[Resource, ...]
    scopes: tuple[Scope, ...] = ()


class ProjectPolicyFile(BaseModel):
    """`policies/project.json`: a snapshot of the project policy."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    schema_: str = SCHEMA_KEY
    policy: ProjectPolicy


class Holder(BaseModel):
    """Who holds a role, or what gives it, as the provider reports it. ZenML: a user, a
    team or an invitation, in the whole organization or in one workspace or project.
    Stytch: a member, or a rule of the organization assigning the role implicitly."""

    model_config = MODEL_CONFIG

    kind: str = Field(
        description="ZenML: `user`, `team` or `invitation`. Stytch: `member`, or the rules "
        "`email_domain`, `sso_connection`, `sso_group`, `scim_group`."
    )
    id: str = Field(
        description="The user, team, invitation or member; the email domain; the SSO or SCIM "
        "connection."
    )
    workspace_id: str | None = None
    project_id: str | None = None
    detail: str | None = Field(
        default=None,
        description="Stytch: how a member holds the role (its assignment's source types, e.g. "
        "`direct_assignment`), or the group of an `sso_group` or `scim_group` rule.",
    )


class RoleHolders(BaseModel):
    """Everyone who held one role when it was read."""

    model_config = MODEL_CONFIG

    role_id: str
    holders: tuple[Holder, ...]


class RoleOperation(BaseModel):
    """One change a provider that writes role by role (ZenML) made, once it landed."""

    model_config = MODEL_CONFIG

    action: Literal["create", "update", "delete", "assign"]
    role_id: str
    detail: str = Field(default="", description="e.g. the new role's id, or who was assigned.")


class Organization(NamedTuple):
    """An organization as a provider lists it: its names, and its org-specific roles."""

    organization_id: str
    organization_name: str
    organization_slug: str
    organization_external_id: str | None
    org_policy: OrgPolicy
