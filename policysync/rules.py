"""The semantic rules of an organization policy: Stytch's (1 to 6) and policysync's own.

Pure functions from models to findings. Every violation is reported, not only the first;
the official SDK's `validate_org_policy` stops at the first, and a property-based test
checks that it raises exactly when these rules report a rule-1-to-6 error.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from policysync.config import Limits
from policysync.diagnostics import pointer, q, suggest
from policysync.models import OrgPolicy, ProjectPolicy

RESERVED_ROLE_PREFIX = "stytch_"


class Finding(NamedTuple):
    """A rule violation, placed by JSON pointer within its file."""

    code: str
    pointer: str
    message: str


class ProjectIndex(NamedTuple):
    """What the org-policy rules need to know of the project policy."""

    role_ids: frozenset[str]
    resources: dict[str, frozenset[str]]  # resource_id -> declared actions

    @classmethod
    def of(cls, project: ProjectPolicy) -> ProjectIndex:
        return cls(
            role_ids=frozenset(r.role_id for r in project.roles),
            resources={r.resource_id: frozenset(r.actions) for r in project.resources},
        )


def check_project(project: ProjectPolicy) -> list[Finding]:
    """Duplicates in the project snapshot would make the org rules ambiguous."""
    findings = []
    for kind, ids in (
        ("resource", [r.resource_id for r in project.resources]),
        ("role", [r.role_id for r in project.roles]),
    ):
        first: dict[str, int] = {}
        for i, value in enumerate(ids):
            if value in first:
                findings.append(
                    Finding(
                        f"project-{kind}-duplicate",
                        pointer("policy", f"{kind}s", i, f"{kind}_id"),
                        f"{kind} {q(value)} is defined twice (also at "
                        f"/policy/{kind}s/{first[value]}): refresh project.json from Stytch "
                        "(`policysync export`) or remove one",
                    )
                )
            else:
                first[value] = i
    return findings


def check_organization_id(value: str, limits: Limits) -> str | None:
    """Why `value` cannot name a Stytch organization, or None when it can."""
    if not value:
        return "organization_id is empty: write the organization's id, slug or external id"
    if not value.strip():
        return "organization_id is blank: write the organization's id, slug or external id"
    if value in (".", ".."):
        return f"organization_id {q(value)} would change the meaning of the request URL"
    if "/" in value:
        return f"organization_id {q(value)} contains '/', which no id, slug or external id has"
    if not value.isprintable() or " " in value:  # control, format, separator characters
        return f"organization_id {q(value)} contains whitespace or control characters: remove them"
    if len(value) > limits.max_organization_id_length:
        return (
            f"organization_id is {len(value)} characters long, more than the limit of "
            f"{limits.max_organization_id_length} (limits.max_organization_id_length)"
        )
    return None


def check_org_policy(
    policy: OrgPolicy, project: ProjectIndex | None, limits: Limits, base: str = "/org_policy"
) -> list[Finding]:
    """Every violation in one org policy, whose roles are at `base`/roles in its file (a
    template's at /roles); `project` None skips the checks that need it."""
    out: list[Finding] = []
    if len(policy.roles) > limits.max_roles_per_org:
        out.append(
            Finding(
                "too-many-roles",
                base + "/roles",
                f"{len(policy.roles)} roles, more than the limit of {limits.max_roles_per_org} "
                "(limits.max_roles_per_org): remove roles or raise the limit",
            )
        )
    first_role: dict[str, int] = {}
    for i, role in enumerate(policy.roles):
        at = f"{base}/roles/{i}"
        out.extend(_check_role_id(role.role_id, first_role, at + "/role_id", base, project, limits))
        first_role.setdefault(role.role_id, i)
        if len(role.description) > limits.max_description_length:
            out.append(
                Finding(
                    "description-too-long",
                    at + "/description",
                    f"description is {len(role.description)} characters long, more than the limit "
                    f"of {limits.max_description_length} (limits.max_description_length)",
                )
            )
        if not role.permissions:
            out.append(
                Finding(
                    "role-no-permissions",
                    at + "/permissions",
                    f"role {q(role.role_id)} has no permissions: grant at least one, "
                    "or delete the role",
                )
            )
        first_resource: dict[str, int] = {}
        for j, perm in enumerate(role.permissions):
            pat = f"{at}/permissions/{j}"
            if perm.resource_id in first_resource:
                out.append(
                    Finding(
                        "resource-repeated",
                        pat + "/resource_id",
                        f"resource {q(perm.resource_id)} is already granted by "
                        f"{at}/permissions/{first_resource[perm.resource_id]}: merge the two",
                    )
                )
            else:
                first_resource[perm.resource_id] = j
            out.extend(_check_permission(perm.resource_id, perm.actions, pat, project, limits))
    return out


def _check_role_id(
    role_id: str,
    first: dict[str, int],
    at: str,
    base: str,
    project: ProjectIndex | None,
    limits: Limits,
) -> Iterable[Finding]:
    if role_id in first:  # rule 1
        yield Finding(
            "role-duplicate",
            at,
            f"role {q(role_id)} is already defined at {base}/roles/{first[role_id]}: "
            "role ids are unique within an organization; rename or merge the two",
        )
    if project is not None and role_id in project.role_ids:  # rule 2
        yield Finding(
            "role-project-conflict",
            at,
            f"role {q(role_id)} is a project role: org roles cannot redefine project roles "
            "(stytch_member and stytch_admin included); choose another role_id",
        )
    elif role_id.startswith(RESERVED_ROLE_PREFIX):
        yield Finding(
            "role-reserved-prefix",
            at,
            f"role {q(role_id)} starts with {q(RESERVED_ROLE_PREFIX)}, reserved for Stytch's "
            "default roles: choose another role_id",
        )
    problem = _role_id_problem(role_id)
    if problem:
        yield Finding(
            "role-id-invalid",
            at,
            f"role_id {q(role_id)} {problem}: write a plain identifier such as invoice-approver",
        )
    if len(role_id) > limits.max_role_id_length:
        yield Finding(
            "role-id-too-long",
            at,
            f"role_id is {len(role_id)} characters long, more than the limit of "
            f"{limits.max_role_id_length} (limits.max_role_id_length)",
        )


def _role_id_problem(role_id: str) -> str | None:
    if not role_id.strip():
        return "is empty" if not role_id else "is blank"
    if role_id != role_id.strip():
        return "has leading or trailing whitespace"
    if not role_id.isprintable():
        return "holds invisible or control characters (shown as \\u escapes)"
    return None


def _check_permission(
    resource_id: str,
    actions: tuple[str, ...],
    at: str,
    project: ProjectIndex | None,
    limits: Limits,
) -> Iterable[Finding]:
    declared: frozenset[str] | None = None
    if project is not None:
        declared = project.resources.get(resource_id)
        if declared is None:  # rule 3
            yield Finding(
                "resource-unknown",
                at + "/resource_id",
                f"resource {q(resource_id)} is not defined in the project policy"
                + suggest(resource_id, project.resources)
                + ": fix the name, or add the resource to the project in Stytch and refresh "
                "project.json",
            )
    if not actions:  # rule 4
        yield Finding(
            "actions-empty",
            at + "/actions",
            f"no actions on resource {q(resource_id)}: list the actions to grant, or "
            '["*"] for all of them',
        )
        return
    if actions == ("*",):  # all actions of the resource: nothing more to check
        return
    if declared is not None and _plainly_valid(actions, declared, limits.max_action_length):
        return
    if "*" in actions:  # rule 5
        yield Finding(
            "wildcard-not-alone",
            at + "/actions",
            f'"*" already grants every action of {q(resource_id)} and must be the only action: '
            'keep ["*"] or list the actions without it',
        )
    seen: set[str] = set()
    for k, action in enumerate(actions):
        aat = f"{at}/actions/{k}"
        if action == "*":
            continue
        if not action.strip():  # rule 6
            yield Finding("action-blank", aat, "empty action: remove it or name an action")
            continue
        if action in seen:
            yield Finding(
                "action-duplicate", aat, f"action {q(action)} is listed twice: remove one"
            )
        seen.add(action)
        if len(action) > limits.max_action_length:
            yield Finding(
                "action-too-long",
                aat,
                f"action is {len(action)} characters long, more than the limit of "
                f"{limits.max_action_length} (limits.max_action_length)",
            )
        if declared is not None and action not in declared:  # rule 6
            yield Finding(
                "action-unknown",
                aat,
                f"resource {q(resource_id)} has no action {q(action)}"
                + suggest(action, declared)
                + f"; it declares: {', '.join(sorted(declared)) or 'none'}",
            )


def _plainly_valid(actions: tuple[str, ...], declared: frozenset[str], max_length: int) -> bool:
    """The common case, decided at C speed: distinct, declared, non-blank, short actions
    without "*". Exactly when the checks below would find nothing."""
    return (
        len(set(actions)) == len(actions)
        and declared.issuperset(actions)
        and "*" not in actions
        and all(map(str.strip, actions))
        and max(map(len, actions)) <= max_length
    )
