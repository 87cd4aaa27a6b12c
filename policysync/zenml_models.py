"""The ZenML Pro file models: an organization's custom roles, and the permission
vocabulary a team declares in `policies/permissions.json`.

Field names are ZenML's (`zenml-pro-api.md`): a role is `{name, level, description,
permissions}`, a permission `{resource, action}` (that shape is a guess of the wire
contract; the files keep it whatever the adapter sends). The published JSON Schemas
`schemas/zenml-org-roles.schema.json` and `schemas/zenml-permissions.schema.json` are
generated from these classes.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from policysync.models import MODEL_CONFIG as _CONFIG
from policysync.models import SCHEMA_KEY as _SCHEMA_KEY
from policysync.models import OrgPolicy, OrgPolicyFile, Permission, Role
from policysync.zenml_vocabulary import ACTIONS, LEVELS, RESOURCES

_FILE_CONFIG = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class ZenmlPermission(BaseModel):
    """One action granted on one resource type."""

    model_config = _CONFIG

    resource: str = Field(
        description="A resource type of the role's level, e.g. `pipeline_run`.",
        examples=sorted(RESOURCES),
    )
    action: str = Field(
        description="An action of the role's level, e.g. `read`.",
        examples=sorted(ACTIONS),
    )


class ZenmlRole(BaseModel):
    """A custom role, identified by `(level, name)` within its organization."""

    model_config = _CONFIG

    name: str = Field(description="Not the name of a system-managed (predefined) role.")
    level: str = Field(
        description="Where the role applies: `organization`, `workspace` or `project`.",
        examples=list(LEVELS),
    )
    description: str = Field(default="", description="Shown in ZenML Pro's dashboard.")
    permissions: tuple[ZenmlPermission, ...] = Field(
        description="Resource/action pairs from the level's permission vocabulary."
    )


class ZenmlOrgFile(BaseModel):
    """One file of `policies/orgs/`: all the custom roles of one ZenML Pro organization
    (a live custom role missing here is deleted by apply)."""

    model_config = _FILE_CONFIG

    schema_: str = _SCHEMA_KEY
    organization_id: str = Field(description="The organization's id (a uuid) or its name.")
    templates: tuple[str, ...] = Field(
        default=(),
        description="Templates whose roles the organization has besides its own: the names "
        "of files in `policies/templates/`, without `.json`.",
    )
    roles: tuple[ZenmlRole, ...] = Field(
        description="The organization's own custom roles (its templates give it the others); "
        "`[]` with no templates means: no custom roles."
    )


class ZenmlTemplateFile(BaseModel):
    """One file of `policies/templates/`: custom roles that every organization naming the
    template in its `templates` has, as if they were written in its file."""

    model_config = _FILE_CONFIG

    schema_: str = _SCHEMA_KEY
    description: str = Field(default="", description="What the template is for.")
    roles: tuple[ZenmlRole, ...] = Field(description="Roles in the shape of an organization's.")


class ZenmlVocabulary(BaseModel):
    """Resource types and actions added to one level; any declared action goes with any
    declared resource, as in ZenML's own vocabulary."""

    model_config = _CONFIG

    resources: tuple[str, ...] = Field(default=(), description="Resource types of the level.")
    actions: tuple[str, ...] = Field(default=(), description="Actions of the level.")


class ZenmlPermissionsFile(BaseModel):
    """`policies/permissions.json`: what the permission vocabulary gains beyond the built-in
    workspace and project one. The organization level has only what this file declares."""

    model_config = _FILE_CONFIG

    schema_: str = _SCHEMA_KEY
    organization: ZenmlVocabulary = Field(
        default=ZenmlVocabulary(), description="The organization level (not public)."
    )
    workspace: ZenmlVocabulary = Field(
        default=ZenmlVocabulary(), description="Added to the built-in workspace vocabulary."
    )
    project: ZenmlVocabulary = Field(
        default=ZenmlVocabulary(), description="Added to the built-in project vocabulary."
    )


# The core's view of ZenML's roles ---------------------------------------------------
# The planner, the journal and rollback compare policies of Stytch's shape (`models.py`):
# a ZenML role is one of its roles under the key `level:name` (unique in an
# organization; no level has a colon), its permissions grouped by resource.

KEY_SEPARATOR = ":"


def role_key(level: str, name: str) -> str:
    return f"{level}{KEY_SEPARATOR}{name}"


def split_key(key: str) -> tuple[str, str]:
    """`(level, name)` of a role key."""
    level, _, name = key.partition(KEY_SEPARATOR)
    return level, name


def core_role(role: ZenmlRole) -> Role:
    grouped: dict[str, list[str]] = {}
    for permission in role.permissions:
        actions = grouped.setdefault(permission.resource, [])
        if permission.action not in actions:
            actions.append(permission.action)
    return Role(
        role_id=role_key(role.level, role.name),
        description=role.description,
        permissions=tuple(Permission(resource_id=r, actions=tuple(a)) for r, a in grouped.items()),
    )


def zenml_role(role: Role) -> ZenmlRole:
    level, name = split_key(role.role_id)
    pairs = dict.fromkeys(
        (permission.resource_id, action)
        for permission in role.permissions
        for action in permission.actions
    )
    return ZenmlRole(
        name=name,
        level=level,
        description=role.description,
        permissions=tuple(ZenmlPermission(resource=r, action=a) for r, a in pairs),
    )


def core_file(document: ZenmlOrgFile) -> OrgPolicyFile:
    """An organization file as the core plans it."""
    policy = OrgPolicy(roles=tuple(core_role(role) for role in document.roles))
    return OrgPolicyFile(
        organization_id=document.organization_id, templates=document.templates, org_policy=policy
    )
