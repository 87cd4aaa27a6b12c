"""`policysync export`, its pure part: which files to write, with what names and bytes.

Live policies are written in one canonical form (keys in the documented order; roles,
permissions, actions, resources and scopes sorted; two-space indent; a final newline),
so that exporting unchanged data again gives byte-identical files and a diff shows only
real changes; a file that says what live says in another form is left as written
(`status`), for `policysync fmt`, which writes these same bytes. A file that exists
keeps its name, its `$schema`, its `organization_id` as written and the templates
live still has exactly (their roles are not written again); a new file is named
after the organization's slug and names the organization by its id (ids never change;
slugs can).
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field

from policysync.canonical import same_policy, same_project, same_role
from policysync.models import (
    OrgPolicy,
    OrgPolicyFile,
    Permission,
    ProjectPolicy,
    ProjectPolicyFile,
    Role,
)
from policysync.plan import OrgError
from policysync.templates import Template

ORG_SCHEMA = "../../schemas/org-policy.schema.json"
PROJECT_SCHEMA = "../schemas/project-policy.schema.json"
_BOM = b"\xef\xbb\xbf"
_CONFIG = ConfigDict(frozen=True, extra="forbid")

FileStatus = Literal["created", "updated", "unchanged"]


class Existing(NamedTuple):
    """An organization file already in `orgs/`."""

    name: str  # its file name
    organization_id: str | None  # as written; None when the file cannot be read
    schema: str | None  # its `$schema`; None when it has none
    templates: tuple[str, ...] = ()  # its `templates`, as written


class Known(NamedTuple):
    """An organization of the project, as organization search lists it."""

    organization_id: str
    slug: str
    external_id: str | None
    has_roles: bool  # org-specific roles


class Target(NamedTuple):
    """An organization to export: read by, and written as, `organization_id`."""

    organization_id: str
    name: str  # the file name in orgs/
    schema: str | None
    templates: tuple[str, ...] = ()  # the templates the file keeps


class ExportedFile(BaseModel):
    model_config = _CONFIG

    file: str
    organization_id: str | None = Field(description="null for project.json.")
    status: FileStatus


class ExportProblem(BaseModel):
    """An organization or file that was not exported; its file, if any, is left as is."""

    model_config = _CONFIG

    file: str | None
    organization_id: str | None
    message: str
    error: OrgError | None = Field(default=None, description="Stytch's answer, if any.")


class ExportResult(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", title="Export")

    project_id: str
    files: tuple[ExportedFile, ...] = Field(description="Sorted by file.")
    problems: tuple[ExportProblem, ...]
    branch: str | None = Field(description="The new branch (--branch); null otherwise.")
    commit: str | None = Field(description="The commit on it; null when nothing changed.")
    notes: tuple[str, ...] = Field(
        default=(), description="What was exported otherwise than asked, and why."
    )


def existing(name: str, data: bytes | None) -> Existing:
    """What export keeps of a file: which organization it names, its `$schema`."""
    try:
        value = json.loads((data or b"").removeprefix(_BOM))
    except ValueError:
        value = None
    if not isinstance(value, dict):
        return Existing(name, None, None)
    org_id, schema = value.get("organization_id"), value.get("$schema")
    templates = value.get("templates")
    return Existing(
        name,
        org_id if isinstance(org_id, str) and org_id else None,
        schema if isinstance(schema, str) else None,
        tuple(t for t in templates if isinstance(t, str)) if isinstance(templates, list) else (),
    )


def choose(
    files: Sequence[Existing],
    wanted: Sequence[str],
    all_orgs: bool,
    known: Sequence[Known] | None,
    schema: str = ORG_SCHEMA,
) -> tuple[list[Target], list[ExportProblem]]:
    """The organizations to export: those named by `wanted` (an id, slug or external
    id; `export_live` has turned file names into ids) and, with `all_orgs`, those with
    org-specific roles; with neither, those that have files. An organization with a
    file is exported into it; a new file gets the `$schema` `schema`. `known`
    (organization search) is needed for the `wanted` no file names as written, and for
    `all_orgs`."""
    refresh = all_orgs or not wanted
    problems: list[ExportProblem] = []
    by_id: dict[str, Existing] = {}
    for file in files:
        if file.organization_id is None:
            if refresh:
                problems.append(_unreadable(file.name))
        elif file.organization_id in by_id:
            problems.append(_duplicate(file, by_id[file.organization_id]))
        else:
            by_id[file.organization_id] = file
    by_name = {name: org for org in known or () for name in _names_of(org)}
    chosen = {f.name: _kept(f) for f in by_id.values()} if refresh else {}
    written = {target.organization_id for target in chosen.values()}
    taken = {file.name for file in files}

    def add(org: Known) -> None:
        file = next((by_id[n] for n in _names_of(org) if n in by_id), None)
        if not written.intersection(_names_of(org)):
            target = _kept(file) if file is not None else _new(org, taken, schema)
            chosen[target.name] = target
            written.add(target.organization_id)

    for org_id in wanted:
        if org_id in by_id:
            chosen[by_id[org_id].name] = _kept(by_id[org_id])
            written.add(org_id)
        elif org_id in by_name:
            add(by_name[org_id])
        else:
            message = (
                "no organization of the project has the id, slug or external id "
                f"{org_id}, and no file in orgs/ has that name"
            )
            names = [*by_id, *by_name, *(f.name.removesuffix(".json") for f in files)]
            close = difflib.get_close_matches(org_id, sorted(set(names)), n=3)
            hint = f"; did you mean {' or '.join(close)}?" if close else ""
            problems.append(
                ExportProblem(file=None, organization_id=org_id, message=message + hint)
            )
    if all_orgs:
        for org in sorted(known or (), key=lambda o: (o.slug, o.organization_id)):
            if org.has_roles:
                add(org)
    return [chosen[name] for name in sorted(chosen)], problems


def _names_of(org: Known) -> list[str]:
    return [n for n in (org.organization_id, org.slug, org.external_id) if n]


def _kept(file: Existing) -> Target:
    assert file.organization_id is not None, "only readable files are kept"
    return Target(file.organization_id, file.name, file.schema, file.templates)


def _new(org: Known, taken: set[str], schema: str) -> Target:
    name = next(n for n in _names(org) if n not in taken)
    taken.add(name)
    return Target(org.organization_id, name, schema)


def _names(org: Known) -> Iterator[str]:
    """File names for a new organization: its slug, else its id, else numbered."""
    stems = [_stem(org.slug), _stem(org.organization_id)]
    yield from (f"{stem}.json" for stem in stems if stem)
    number = 2
    while True:
        yield f"{stems[1] or 'organization'}-{number}.json"
        number += 1


def _stem(text: str) -> str:
    """A file name's stem from a slug: letters, digits, `-`, `_`, `.`; never hidden."""
    return re.sub(r"[^A-Za-z0-9._-]", "-", text).lstrip(".")[:200]


def _unreadable(name: str) -> ExportProblem:
    return ExportProblem(
        file=name,
        organization_id=None,
        message="not a readable organization file (no organization_id): left as it is; fix "
        "it (policysync validate) and export again",
    )


def _duplicate(file: Existing, first: Existing) -> ExportProblem:
    return ExportProblem(
        file=file.name,
        organization_id=file.organization_id,
        message=f"{first.name} names the same organization: this file was left as it is",
    )


def _permissions(permissions: Sequence[Permission]) -> list[dict[str, Any]]:
    pairs = sorted((p.resource_id, sorted(p.actions)) for p in permissions)
    return [{"resource_id": resource, "actions": actions} for resource, actions in pairs]


def _role(role: Role) -> dict[str, Any]:
    return {
        "role_id": role.role_id,
        "description": role.description,
        "permissions": _permissions(role.permissions),
    }


def _roles(roles: Sequence[Role]) -> list[dict[str, Any]]:
    return [_role(role) for role in sorted(roles, key=lambda role: role.role_id)]


def dump(document: dict[str, Any]) -> bytes:
    """A policy file's bytes in the canonical form (the keys in `document`'s order)."""
    return (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def org_head(target: Target) -> dict[str, Any]:
    """The keys an organization file of either provider starts with."""
    head: dict[str, Any] = {"$schema": target.schema} if target.schema is not None else {}
    head |= {"organization_id": target.organization_id}
    return head | ({"templates": list(target.templates)} if target.templates else {})


def template_head(schema: str | None, description: str) -> dict[str, Any]:
    """The keys a template file of either provider starts with (then its `roles`)."""
    head: dict[str, Any] = {"$schema": schema} if schema is not None else {}
    return head | ({"description": description} if description else {})


def org_file(target: Target, policy: OrgPolicy) -> bytes:
    """The bytes of an organization file, in the canonical form."""
    return dump(org_head(target) | {"org_policy": {"roles": _roles(policy.roles)}})


def template_file(schema: str | None, description: str, roles: Sequence[Role]) -> bytes:
    """The bytes of a template file, in the canonical form of an organization file's."""
    return dump(template_head(schema, description) | {"roles": _roles(roles)})


def template_remainder(
    target: Target, policy: OrgPolicy, templates: Mapping[str, Template]
) -> tuple[Target, OrgPolicy, list[str]]:
    """What an organization's file says when its live `policy` is exported: the templates
    it names that live has exactly (every role of theirs, the same), and the live roles
    they do not give it. A template live departs from is dropped from the file, whose
    roles then say what live has, and a note says why."""
    live = {role.role_id: role for role in policy.roles}
    kept: list[str] = []
    given: set[str] = set()
    notes = []
    for name in dict.fromkeys(target.templates):
        template = templates.get(name)
        roles = template.roles if template is not None else None
        if roles is None:
            reason = "does not exist" if template is None else "is not valid"
            notes.append(f"{target.name}: template {name} {reason}: dropped from the file")
            continue
        differ = [
            r.role_id for r in roles if r.role_id in given or not _same(live.get(r.role_id), r)
        ]
        if differ:
            notes.append(
                f"{target.name}: live departs from template {name} (role "
                f"{', '.join(sorted(differ))}): the template is dropped from the file, which "
                "lists the organization's live roles instead"
            )
            continue
        kept.append(name)
        given.update(r.role_id for r in roles)
    rest = OrgPolicy(roles=tuple(r for r in policy.roles if r.role_id not in given))
    return target._replace(templates=tuple(kept)), rest, notes


def _same(live: Role | None, role: Role) -> bool:
    return live is not None and same_role(live, role)


def project_file(schema: str | None, policy: ProjectPolicy) -> bytes:
    """The bytes of `project.json`, in the canonical form."""
    body = {
        "roles": _roles(policy.roles),
        "resources": [
            {
                "resource_id": r.resource_id,
                "description": r.description,
                "actions": sorted(r.actions),
            }
            for r in sorted(policy.resources, key=lambda r: r.resource_id)
        ],
        "scopes": [
            {
                "scope": s.scope,
                "description": s.description,
                "permissions": _permissions(s.permissions),
            }
            for s in sorted(policy.scopes, key=lambda s: s.scope)
        ],
    }
    return dump(({"$schema": schema} if schema is not None else {}) | {"policy": body})


def status(
    current: Mapping[str, bytes | None],
    path: str,
    data: bytes,
    same: Callable[[bytes], bool] = lambda _: False,
) -> FileStatus:
    """What writing `data` at `path` does to the files `current` holds. A file that
    already says what `data` says, in another form (`same` of its bytes), is
    `unchanged` and left as written: putting it in the canonical form is `policysync
    fmt`'s job, and a refresh reports only what live changed."""
    if path not in current:
        return "created"
    old = current[path]
    return "unchanged" if old == data or (old is not None and same(old)) else "updated"


def same_org_file(
    parse: Callable[[bytes], OrgPolicyFile], target: Target, policy: OrgPolicy
) -> Callable[[bytes], bool]:
    """Whether an organization file's bytes (read by `parse`, a `FileFormat`'s) name
    `target`'s organization and say `policy`, in any form."""

    def same(data: bytes) -> bool:
        try:
            document = parse(data.removeprefix(_BOM))
        except ValueError:  # pydantic's ValidationError included: not a valid file
            return False
        return (
            document.organization_id == target.organization_id
            and document.templates == target.templates
            and same_policy(document.org_policy, policy)
        )

    return same


def same_project_file(policy: ProjectPolicy) -> Callable[[bytes], bool]:
    """Whether the bytes of `project.json` say `policy`, in any form."""

    def same(data: bytes) -> bool:
        try:
            document = ProjectPolicyFile.model_validate_json(data.removeprefix(_BOM))
        except ValueError:
            return False
        return same_project(document.policy, policy)

    return same
