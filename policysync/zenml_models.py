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
    roles: tuple[ZenmlRole, ...] = Field(description="`[]` means: no custom roles.")


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
