"""The seed file: a project policy and organizations with their org policies (and the
rules that assign roles implicitly: email domains, SAML and SCIM connections), the
members and the roles they hold; and the state the emulator starts with when there is
none: a new project's. Field names are those of Stytch's own objects.

The same shape is what `policysync emulator --dump` prints, so a dump seeds again.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from policysync.default_project import DEFAULT_POLICY
from policysync.models import OrgPolicy, ProjectPolicy

_CONFIG = ConfigDict(frozen=True, extra="forbid")


class EmailRule(BaseModel):
    """An Organization's `rbac_email_implicit_role_assignments` item."""

    model_config = _CONFIG

    domain: str = Field(min_length=1)
    role_id: str = Field(min_length=1)


class ConnectionRule(BaseModel):
    """A SAML connection's `saml_connection_implicit_role_assignments` item."""

    model_config = _CONFIG

    role_id: str = Field(min_length=1)


class GroupRule(BaseModel):
    """A SAML connection's `saml_group_implicit_role_assignments` item."""

    model_config = _CONFIG

    role_id: str = Field(min_length=1)
    group: str = Field(min_length=1)


class ScimGroupRule(BaseModel):
    """A SCIM connection's `scim_group_implicit_role_assignments` item."""

    model_config = _CONFIG

    role_id: str = Field(min_length=1)
    group_id: str = Field(min_length=1)
    group_name: str = ""


class SamlConnection(BaseModel):
    model_config = _CONFIG

    connection_id: str = Field(min_length=1)
    display_name: str = ""
    saml_connection_implicit_role_assignments: tuple[ConnectionRule, ...] = ()
    saml_group_implicit_role_assignments: tuple[GroupRule, ...] = ()


class ScimConnection(BaseModel):
    model_config = _CONFIG

    connection_id: str = Field(min_length=1)
    display_name: str = ""
    scim_group_implicit_role_assignments: tuple[ScimGroupRule, ...] = ()


class RoleSource(BaseModel):
    """How a member holds a role: `direct_assignment`, `email_assignment`,
    `sso_connection`, `sso_connection_group` or `scim_connection_group`."""

    model_config = _CONFIG

    type: str = Field(min_length=1)
    details: dict[str, Any] = {}


class MemberRole(BaseModel):
    model_config = _CONFIG

    role_id: str = Field(min_length=1)
    sources: tuple[RoleSource, ...] = Field(min_length=1)


class SeedMember(BaseModel):
    """A Member, reduced to what the emulator keeps (the rest is served with Stytch's
    defaults)."""

    model_config = _CONFIG

    organization_id: str = Field(min_length=1)
    member_id: str = Field(min_length=1)
    email_address: str = Field(min_length=1)
    status: str = "active"
    name: str = ""
    roles: tuple[MemberRole, ...] = ()


class OrgRules(BaseModel):
    """The rules of one organization that assign roles implicitly."""

    model_config = _CONFIG

    rbac_email_implicit_role_assignments: tuple[EmailRule, ...] = ()
    saml_connections: tuple[SamlConnection, ...] = ()
    scim_connection: ScimConnection | None = None

    def role_ids(self) -> list[tuple[str, str]]:
        """(where, role_id) of every rule."""
        found = [
            (f"rbac_email_implicit_role_assignments/{i}", r.role_id)
            for i, r in enumerate(self.rbac_email_implicit_role_assignments)
        ]
        for i, saml in enumerate(self.saml_connections):
            found += [
                (f"saml_connections/{i}/saml_connection_implicit_role_assignments/{j}", r.role_id)
                for j, r in enumerate(saml.saml_connection_implicit_role_assignments)
            ]
            found += [
                (f"saml_connections/{i}/saml_group_implicit_role_assignments/{j}", r.role_id)
                for j, r in enumerate(saml.saml_group_implicit_role_assignments)
            ]
        if self.scim_connection is not None:
            found += [
                (f"scim_connection/scim_group_implicit_role_assignments/{j}", r.role_id)
                for j, r in enumerate(self.scim_connection.scim_group_implicit_role_assignments)
            ]
        return found


class SeedOrganization(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    organization_id: str = Field(min_length=1)
    organization_name: str = ""
    organization_slug: str = Field(min_length=1)
    organization_external_id: str | None = None
    org_policy: OrgPolicy = OrgPolicy(roles=())
    # Organizations for which the org-policy feature answers 401 enterprise_endpoint.
    org_policy_disabled: bool = False
    rbac_email_implicit_role_assignments: tuple[EmailRule, ...] = ()
    saml_connections: tuple[SamlConnection, ...] = ()
    scim_connection: ScimConnection | None = None

    def rules(self) -> OrgRules:
        return OrgRules(
            rbac_email_implicit_role_assignments=self.rbac_email_implicit_role_assignments,
            saml_connections=self.saml_connections,
            scim_connection=self.scim_connection,
        )


class Seed(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    policy: ProjectPolicy
    organizations: tuple[SeedOrganization, ...] = ()
    members: tuple[SeedMember, ...] = ()


# A new project's policy (`DEFAULT_POLICY`): the emulator serves it when started on an
# empty database without --seed.
DEFAULT_SEED = Seed(policy=DEFAULT_POLICY)


def people_problem(seed: Seed) -> str | None:
    """What makes the seed's members and rules impossible in Stytch, as "where: what";
    None when nothing does. A member belongs to a seeded organization (named by its id,
    slug or external id) and has an id of its own; a member holds, and a rule assigns,
    only roles that exist: the project's, or its organization's own."""
    by_name: dict[str, SeedOrganization] = {}
    for org in seed.organizations:
        for key in (org.organization_id, org.organization_slug, org.organization_external_id):
            if key is not None:
                by_name.setdefault(key, org)
    project = {role.role_id for role in seed.policy.roles}

    def roles_of(org: SeedOrganization) -> set[str]:
        return project | {role.role_id for role in org.org_policy.roles}

    for i, org in enumerate(seed.organizations):
        for where, role_id in org.rules().role_ids():
            if role_id not in roles_of(org):
                return (
                    f"organizations/{i}/{where}: role {role_id!r} is neither a project role "
                    f"nor one of {org.organization_id}'s roles"
                )
    seen: dict[str, int] = {}
    for i, member in enumerate(seed.members):
        owner = by_name.get(member.organization_id)
        if owner is None:
            return (
                f"members/{i}: organization {member.organization_id!r} is not among the seed's "
                "organizations"
            )
        other = seen.setdefault(member.member_id, i)
        if other != i:
            return f"members/{other} and members/{i} are both member {member.member_id!r}"
        for j, held in enumerate(member.roles):
            if held.role_id not in roles_of(owner):
                return (
                    f"members/{i}/roles/{j}: role {held.role_id!r} is neither a project role "
                    f"nor one of {owner.organization_id}'s roles"
                )
    return None
