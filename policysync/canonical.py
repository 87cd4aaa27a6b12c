"""What "equal" means, defined once: the canonical forms of policies and their
fingerprints.

Roles, permissions and actions are sets to the providers: order carries no meaning,
and a resource split over two permissions grants the same as the two merged. `"*"`
stays as written: what it grants depends on the project policy, which can change, so
`["*"]` and the full list of actions are different policies.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any, Literal

import pydantic_core

from policysync.models import OrgPolicy, Permission, ProjectPolicy, Resource, Role, Scope


def canonical_json(value: Any) -> str:
    """The canonical JSON of a JSON value: sorted keys, no spaces, non-ASCII as is."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def grants(permissions: Iterable[Permission]) -> dict[str, frozenset[str]]:
    """Actions per resource: authorization is on the union of the permissions."""
    merged: dict[str, set[str]] = {}
    for permission in permissions:
        merged.setdefault(permission.resource_id, set()).update(permission.actions)
    return {resource: frozenset(actions) for resource, actions in merged.items()}


def _canonical_permissions(permissions: Iterable[Permission]) -> list[dict[str, Any]]:
    merged = grants(permissions)
    return [{"actions": sorted(merged[r]), "resource_id": r} for r in sorted(merged)]


def _canonical_roles(policy: OrgPolicy) -> list[dict[str, Any]]:
    """The roles as JSON, by role_id, keys sorted (in the order they are made). Made
    without models: planning many organizations normalizes many roles, and models cost
    several times more."""
    return [
        {
            "description": role.description,
            "permissions": _canonical_permissions(role.permissions),
            "role_id": role.role_id,
        }
        for role in sorted(policy.roles, key=lambda role: role.role_id)
    ]


def normalize(policy: OrgPolicy) -> OrgPolicy:
    """The canonical form of `policy`: equal for any two policies applied alike."""
    return OrgPolicy.model_validate({"roles": _canonical_roles(policy)})


def fingerprint(policy: OrgPolicy) -> str:
    """A digest of the canonical form, to tell whether live changed since a plan: sha256
    of its JSON with sorted keys, no spaces, and every non-ASCII character escaped."""
    canonical = {"roles": _canonical_roles(policy)}  # its keys are sorted already
    text: bytes | None
    try:  # pydantic's encoder is faster than json's, and agrees with it on ASCII
        text = pydantic_core.to_json(canonical)  # but DEL, which json escapes
    except pydantic_core.PydanticSerializationError:  # a lone surrogate
        text = None
    if text is None or not text.isascii() or b"\x7f" in text:  # json escapes them all
        text = json.dumps(canonical, sort_keys=True, separators=(",", ":")).encode("ascii")
    return "sha256:" + hashlib.sha256(text).hexdigest()


def same_policy(a: OrgPolicy, b: OrgPolicy) -> bool:
    """Equal as a provider applies them (order carries no meaning)."""
    return a == b or fingerprint(a) == fingerprint(b)


def same_role(a: Role, b: Role) -> bool:
    return a.description == b.description and grants(a.permissions) == grants(b.permissions)


def between(live: OrgPolicy, before: OrgPolicy, after: OrgPolicy) -> bool:
    """Whether every role of `live` is as in `before` or as in `after` (absent counting
    as a state): what a write that changes role after role leaves when it stops half
    way (ZenML's), and what may be resumed or rolled back as if it had not."""
    states = [{role.role_id: role for role in policy.roles} for policy in (live, before, after)]
    now, was, will = states

    def same(a: Role | None, b: Role | None) -> bool:
        return a is b if a is None or b is None else same_role(a, b)

    return all(
        same(now.get(key), was.get(key)) or same(now.get(key), will.get(key))
        for key in now.keys() | was.keys() | will.keys()
    )


# The items of a project policy: (kind, id) -> their canonical forms (a list: an id may
# be declared twice, which validation reports).
ProjectItemKind = Literal["resource", "role", "scope"]
ProjectItems = dict[tuple[ProjectItemKind, str], list[str]]


def _canonical_item(item: Role | Resource | Scope) -> str:
    data = item.model_dump(mode="json")
    if "permissions" in data:
        data["permissions"] = _canonical_permissions(getattr(item, "permissions", ()))
    if "actions" in data:
        data["actions"] = sorted(set(data["actions"]))
    return canonical_json(data)


def project_items(policy: ProjectPolicy) -> ProjectItems:
    """The project policy's roles, resources and scopes, each in its canonical form."""
    items: ProjectItems = {}
    for role in policy.roles:
        items.setdefault(("role", role.role_id), []).append(_canonical_item(role))
    for resource in policy.resources:
        items.setdefault(("resource", resource.resource_id), []).append(_canonical_item(resource))
    for scope in policy.scopes:
        items.setdefault(("scope", scope.scope), []).append(_canonical_item(scope))
    return {key: sorted(values) for key, values in items.items()}


def same_project(a: ProjectPolicy, b: ProjectPolicy) -> bool:
    """Equal as a provider applies them: order carries no meaning."""
    return a == b or project_items(a) == project_items(b)
