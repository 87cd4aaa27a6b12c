"""A new Stytch project's policy: the two default roles and the built-in resources, as
the sample's policies/project.json holds them. `policysync init` writes it as the
placeholder `project.json` of a new policy repository, and the emulator serves it when
started on an empty database without --seed."""

from __future__ import annotations

from policysync.models import Permission, ProjectPolicy, Resource, Role


def _resource(resource_id: str, description: str, actions: str) -> Resource:
    return Resource(resource_id=resource_id, description=description, actions=actions.split())


def _everything(*resource_ids: str) -> tuple[Permission, ...]:
    return tuple(Permission(resource_id=r, actions=("*",)) for r in resource_ids)


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
