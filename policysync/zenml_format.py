"""ZenML Pro's policy files as the core reads and writes them (`formats.FileFormat`):
validated by `zenml_validate`, converted to the core's shape by `zenml_models.core_file`,
exported in ZenML's shape (roles by level and name, permissions by resource and action).
There is no project policy: the vocabulary is the tree's own (`permissions.json`)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from policysync.config import Limits
from policysync.export import Target, dump, org_head, template_head
from policysync.formats import FileFormat
from policysync.layout import PERMISSIONS_FILE
from policysync.models import OrgPolicy, OrgPolicyFile, ProjectPolicy, Role
from policysync.plan import EscalationRules, assignments_in_use
from policysync.validate import RootResult, Rules
from policysync.zenml_models import (
    ZenmlOrgFile,
    ZenmlTemplateFile,
    core_file,
    core_role,
    split_key,
    zenml_role,
)
from policysync.zenml_validate import load_zenml_org, validate_zenml_root
from policysync.zenml_vocabulary import LEVELS, vocabulary

SCHEMA = "../../schemas/zenml-org-roles.schema.json"
PERMISSIONS_SCHEMA = "../schemas/zenml-permissions.schema.json"


def _validate(root: Path, limits: Limits, live: ProjectPolicy | None, rules: Rules) -> RootResult:
    return validate_zenml_root(root, [], limits, rules=rules)


def _read(path: Path, real_root: Path, limits: Limits) -> OrgPolicyFile | None:
    document, _, _ = load_zenml_org(path, real_root, limits)
    return None if document is None else core_file(document)


def _parse_template(data: bytes) -> tuple[Role, ...]:
    return tuple(core_role(role) for role in ZenmlTemplateFile.model_validate_json(data).roles)


def _parse(data: bytes) -> OrgPolicyFile:
    return core_file(ZenmlOrgFile.model_validate_json(data))


def _listed(core_roles: Sequence[Role]) -> list[dict[str, object]]:
    """Roles in ZenML's shape and the canonical order."""
    roles = sorted((zenml_role(role) for role in core_roles), key=lambda r: (r.level, r.name))
    return [
        {
            "name": role.name,
            "level": role.level,
            "description": role.description,
            "permissions": [
                {"resource": p.resource, "action": p.action}
                for p in sorted(role.permissions, key=lambda p: (p.resource, p.action))
            ],
        }
        for role in roles
    ]


def template_file(schema: str | None, description: str, roles: Sequence[Role]) -> bytes:
    """The bytes of a ZenML Pro template file, in the canonical form."""
    return dump(template_head(schema, description) | {"roles": _listed(roles)})


def org_file(target: Target, policy: OrgPolicy) -> bytes:
    """The bytes of a ZenML Pro organization file, in the canonical form."""
    return dump(org_head(target) | {"roles": _listed(policy.roles)})


def _starter(live: Sequence[OrgPolicy] | None) -> dict[str, bytes]:
    """`permissions.json`, declaring the words the exported `live` roles use beyond the
    built-in vocabulary, level by level (at the organization level, every one); without
    them, empty, to show where such words go."""
    builtin = vocabulary()
    added: dict[str, tuple[set[str], set[str]]] = {level: (set(), set()) for level in LEVELS}
    for policy in live or ():
        for role in policy.roles:
            level, _ = split_key(role.role_id)
            if level not in added:  # validate reports it
                continue
            resources, actions = added[level]
            for permission in role.permissions:
                resources.add(permission.resource_id)
                actions.update(permission.actions)
    document: dict[str, object] = {"$schema": PERMISSIONS_SCHEMA}
    for level, (resources, actions) in added.items():
        document[level] = {
            "resources": sorted(resources - builtin[level].resources),
            "actions": sorted(actions - builtin[level].actions),
        }
    return {PERMISSIONS_FILE: (json.dumps(document, indent=2) + "\n").encode("utf-8")}


FORMAT = FileFormat(
    validate_tree=_validate,
    read_policy=_read,
    parse_policy=_parse,
    org_file=org_file,
    org_schema=SCHEMA,
    project_policy=False,
    exported="the live ZenML Pro roles",
    starter=_starter,
    # ZenML Pro's permissions have no wildcard, and none on resources of its own that
    # widen access by their nature: only the settings' `sensitive` grants are escalations.
    escalations=EscalationRules(),
    parse_template=_parse_template,
    template_file=template_file,
    # A role is held through its assignments (to users, teams, invitations).
    in_use=assignments_in_use,
)
