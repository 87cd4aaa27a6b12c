"""The rules of a ZenML Pro organization file: pure functions from models to findings,
every violation reported.

A role is identified by `(level, name)`; its level must be one ZenML knows, its
permissions must come from that level's vocabulary, and its name must not be a
system-managed role's.
"""

from __future__ import annotations

from policysync.config import Limits
from policysync.diagnostics import q, suggest
from policysync.rules import Finding
from policysync.zenml_models import ZenmlOrgFile, ZenmlTemplateFile
from policysync.zenml_vocabulary import LEVELS, SYSTEM_MANAGED_NAMES, Vocabulary

PERMISSIONS_HINT = "policies/permissions.json"


def check_zenml_org(
    doc: ZenmlOrgFile | ZenmlTemplateFile, vocabulary: Vocabulary | None, limits: Limits
) -> list[Finding]:
    """Every violation in one ZenML organization file (or template); `vocabulary` None
    (permissions.json has errors) skips the checks of permissions."""
    out: list[Finding] = []
    if len(doc.roles) > limits.max_roles_per_org:
        out.append(
            Finding(
                "too-many-roles",
                "/roles",
                f"{len(doc.roles)} roles, more than the limit of {limits.max_roles_per_org} "
                "(limits.max_roles_per_org): remove roles or raise the limit",
            )
        )
    first: dict[tuple[str, str], int] = {}
    system = {name.casefold(): name for name in SYSTEM_MANAGED_NAMES}
    for i, role in enumerate(doc.roles):
        at = f"/roles/{i}"
        key = (role.level, role.name)
        if key in first:
            out.append(
                Finding(
                    "zenml-role-duplicate",
                    at + "/name",
                    f"role {q(role.name)} at level {q(role.level)} is already defined at "
                    f"/roles/{first[key]}: a role is identified by its level and name; rename "
                    "or merge the two",
                )
            )
        else:
            first[key] = i
        predefined = system.get(role.name.strip().casefold())
        if predefined is not None:
            out.append(
                Finding(
                    "zenml-role-system-managed",
                    at + "/name",
                    f"{q(role.name)} is"
                    + ("" if predefined == role.name else f" close to {q(predefined)},")
                    + " the name of a system-managed role, which policysync never creates, "
                    "changes or deletes: choose another name for this custom role",
                )
            )
        if len(role.description) > limits.max_description_length:
            out.append(
                Finding(
                    "description-too-long",
                    at + "/description",
                    f"description is {len(role.description)} characters long, more than the "
                    f"limit of {limits.max_description_length} (limits.max_description_length)",
                )
            )
        if role.level not in LEVELS:
            out.append(
                Finding(
                    "zenml-level-unknown",
                    at + "/level",
                    f"level {q(role.level)} is not one of {', '.join(LEVELS)}"
                    + suggest(role.level, LEVELS)
                    + ": write one of them",
                )
            )
            continue
        if vocabulary is None:
            continue
        words = vocabulary[role.level]
        where = (
            f"declare the organization level's vocabulary in {PERMISSIONS_HINT}"
            if role.level == "organization"
            else f"fix the name, or add it to the {role.level} level in {PERMISSIONS_HINT}"
        )
        for j, perm in enumerate(role.permissions):
            pat = f"{at}/permissions/{j}"
            if perm.resource not in words.resources:
                out.append(
                    Finding(
                        "zenml-resource-unknown",
                        pat + "/resource",
                        f"resource {q(perm.resource)} is not in the {role.level} level's "
                        f"vocabulary{suggest(perm.resource, words.resources)}: {where}",
                    )
                )
            if perm.action not in words.actions:
                out.append(
                    Finding(
                        "zenml-action-unknown",
                        pat + "/action",
                        f"action {q(perm.action)} is not in the {role.level} level's "
                        f"vocabulary{suggest(perm.action, words.actions)}: {where}",
                    )
                )
    return out
