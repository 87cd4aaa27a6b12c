"""ZenML Pro's permission vocabulary and predefined roles, as `zenml-pro-api.md` verifies
them, and the vocabulary a policy tree declares on top (`policies/permissions.json`).

The workspace and project levels share the vocabulary ZenML's workspace server asks the
Pro API about. The organization level's is not public: it holds only what
`permissions.json` declares.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:  # the models name this vocabulary in their schema's examples
    from policysync.zenml_models import ZenmlPermissionsFile

LEVELS = ("organization", "workspace", "project")
ACTIONS = frozenset(
    {
        "create",
        "read",
        "update",
        "delete",
        "read_secret_value",
        "prune",
        "client",
        "promote",
        "backup_restore",
        "share",
    }
)
RESOURCES = frozenset(
    {
        "artifact",
        "artifact_version",
        "code_repository",
        "flavor",
        "model",
        "model_version",
        "pipeline",
        "pipeline_run",
        "pipeline_deployment",
        "pipeline_build",
        "deployment",
        "schedule",
        "run_template",
        "service",
        "run_metadata",
        "secret",
        "service_account",
        "service_connector",
        "stack",
        "stack_component",
        "tag",
        "project",
        "trigger",
        "webhook",
    }
)

# The predefined roles every organization has, by level: system-managed, never
# created, changed or deleted by policysync, and no custom role may take their names.
SYSTEM_MANAGED_ROLES: dict[str, tuple[str, ...]] = {
    "organization": (
        "Organization Admin",
        "Organization Manager",
        "Organization Viewer",
        "Billing Admin",
        "Organization Member",
    ),
    "workspace": (
        "Workspace Admin",
        "Workspace Developer",
        "Workspace Contributor",
        "Workspace Viewer",
        "Stack Admin",
    ),
    "project": ("Project Admin", "Project Developer", "Project Contributor", "Project Viewer"),
}
SYSTEM_MANAGED_NAMES = frozenset(n for names in SYSTEM_MANAGED_ROLES.values() for n in names)


class LevelVocabulary(NamedTuple):
    resources: frozenset[str]
    actions: frozenset[str]


Vocabulary = dict[str, LevelVocabulary]  # level -> its resources and actions


def vocabulary(declared: ZenmlPermissionsFile | None = None) -> Vocabulary:
    """The built-in vocabulary, plus what `declared` (permissions.json) adds."""
    builtin = LevelVocabulary(RESOURCES, ACTIONS)
    words = {
        "organization": LevelVocabulary(frozenset(), frozenset()),
        "workspace": builtin,
        "project": builtin,
    }
    if declared is None:
        return words
    return {
        level: LevelVocabulary(
            base.resources | frozenset(added.resources), base.actions | frozenset(added.actions)
        )
        for level, base in words.items()
        for added in [getattr(declared, level)]
    }
