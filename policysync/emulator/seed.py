"""The seed file: a project policy and organizations with their org policies; and the
state the emulator starts with when there is none: a new project's.

The same shape is what `policysync emulator --dump` prints, so a dump seeds again.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from policysync.models import OrgPolicy, Permission, ProjectPolicy, Resource, Role


class SeedOrganization(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    organization_id: str = Field(min_length=1)
    organization_name: str = ""
    organization_slug: str = Field(min_length=1)
    organization_external_id: str | None = None
    org_policy: OrgPolicy = OrgPolicy(roles=())
    # Organizations for which the org-policy feature answers 401 enterprise_endpoint.
    org_policy_disabled: bool = False


class Seed(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    policy: ProjectPolicy
    organizations: tuple[SeedOrganization, ...] = ()


def _resource(resource_id: str, description: str, actions: str) -> Resource:
    return Resource(resource_id=resource_id, description=description, actions=actions.split())


def _everything(*resource_ids: str) -> tuple[Permission, ...]:
    return tuple(Permission(resource_id=r, actions=("*",)) for r in resource_ids)


# A new Stytch project's policy: the two default roles and the built-in resources, as
# the sample's policies/project.json holds them. The emulator serves it when started on
# an empty database without --seed.
DEFAULT_POLICY = ProjectPolicy(
    roles=(
        Role(
            role_id="stytch_admin",
            description="Granted to Members who create an Organization through the Discovery "
            "flow. Admins will also have the stytch_member role. Cannot be deleted.",
            permissions=_everything(
                "stytch.organization", "stytch.member", "stytch.sso", "stytch.scim", "stytch.self"
            ),
        ),
        Role(
            role_id="stytch_member",
            description="Granted to all Members upon creation; grants permissions already "
            "implicitly granted to logged in Members via the SDK. Cannot be deleted.",
            permissions=_everything("stytch.self"),
        ),
    ),
    resources=(
        _resource(
            "stytch.organization",
            "Stytch default resource: the Organization",
            "update.info.name update.info.slug update.info.logo_url "
            "update.info.untrusted_metadata update.info.email_jit_provisioning "
            "update.info.email_invites update.info.allowed_domains "
            "update.info.default_sso_connection update.info.sso_jit_provisioning "
            "update.info.mfa_policy update.info.implicit_roles delete",
        ),
        _resource(
            "stytch.member",
            "Stytch default resource: Members of the Organization",
            "create update.info.name update.info.untrusted_metadata update.info.mfa-phone "
            "update.info.delete.mfa-phone update.settings.is-breakglass "
            "update.settings.mfa_enrolled update.settings.roles search delete",
        ),
        _resource("stytch.sso", "Stytch default resource: SSO connections", "create update delete"),
        _resource(
            "stytch.scim",
            "Stytch default resource: SCIM connections",
            "create update delete get rotate",
        ),
        _resource(
            "stytch.self",
            "Stytch default resource: the logged-in Member",
            "update.info.name update.info.untrusted_metadata update.info.mfa-phone "
            "update.info.delete.mfa-phone update.info.delete.password "
            "update.settings.mfa_enrolled delete",
        ),
    ),
)
DEFAULT_SEED = Seed(policy=DEFAULT_POLICY)
