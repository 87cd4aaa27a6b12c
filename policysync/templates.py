"""Templates: roles many organizations share, written once in `policies/templates/`.

An organization file names its templates (`"templates": ["enterprise"]`); its desired
roles are its templates' roles, then its own. A role comes from one place only: the
same role in two templates, or in a template and the organization's file, is an error
that names both. Everything after validation (plan, apply, drift, test) works on the
expanded roles, and each role remembers which template gave it (`Expanded.sources`).

Provider-neutral: roles are in the core's shape (a ZenML role under its `level:name`
key); each provider's `FileFormat.parse_template` reads its template files into it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

from policysync.config import Limits
from policysync.diagnostics import Diagnostic, q, suggest
from policysync.layout import TEMPLATES_DIR, template_name
from policysync.loader import folder_files
from policysync.models import OrgPolicy, OrgPolicyFile, Role
from policysync.rules import Finding

_BOM = b"\xef\xbb\xbf"
_FILE_STEM = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*")  # a name a template file can have


class Template(NamedTuple):
    name: str  # as organization files name it: the file's name without .json
    file: str  # the file, as policysync found it
    roles: tuple[Role, ...] | None  # in the core's shape; None when the file is invalid


Templates = Mapping[str, Template]
ParseTemplate = Callable[[bytes], tuple[Role, ...]]  # pydantic's ValidationError if invalid


class Expanded(NamedTuple):
    """An organization's desired roles, its templates expanded."""

    policy: OrgPolicy
    sources: dict[str, str]  # role_id -> the template that gives it (own roles are absent)


class TemplateError(Exception):
    """An organization's templates cannot be expanded (validation reports it in detail)."""


def expand(document: OrgPolicyFile, templates: Templates) -> Expanded:
    """The roles of `document`'s templates, then its own; TemplateError when a template
    is unknown or invalid, or a role comes from two places."""
    if not document.templates:
        return Expanded(document.org_policy, {})
    roles: list[Role] = []
    sources: dict[str, str] = {}
    for name in dict.fromkeys(document.templates):
        template = templates.get(name)
        if template is None or template.roles is None:
            state = "does not exist" if template is None else "is not valid"
            raise TemplateError(f"template {q(name)} {state}")
        for role in template.roles:
            if role.role_id in sources:
                raise TemplateError(
                    f"role {q(role.role_id)} is in templates {sources[role.role_id]} and {name}"
                )
            sources[role.role_id] = name
            roles.append(role)
    for role in document.org_policy.roles:
        if role.role_id in sources:
            raise TemplateError(
                f"role {q(role.role_id)} is in template {sources[role.role_id]} and the file"
            )
    roles.extend(document.org_policy.roles)
    return Expanded(OrgPolicy(roles=tuple(roles)), sources)


def check_templates(
    names: Sequence[str],
    own: Iterable[tuple[str, str]],
    templates: Templates,
    limits: Limits,
    shown: Callable[[str], str] = q,
) -> list[Finding]:
    """What is wrong with an organization file's `templates` (`names`), given its own
    roles (`own`: each role's key and the pointer to where the file names it): unknown
    or repeated templates, a role two places give, too many roles in all. `shown`
    names a role key in messages."""
    out: list[Finding] = []
    given: dict[str, Template] = {}  # role key -> the template that gives it
    count = 0
    seen: set[str] = set()
    for i, name in enumerate(names):
        at = f"/templates/{i}"
        if name in seen:
            out.append(Finding("template-repeated", at, f"template {q(name)} is listed twice"))
            continue
        seen.add(name)
        template = templates.get(name)
        if template is None:
            known = sorted(templates)
            out.append(
                Finding(
                    "template-unknown",
                    at,
                    f"no template {q(name)} in {TEMPLATES_DIR}/"
                    + suggest(name, known)
                    + (
                        f": create {TEMPLATES_DIR}/{name}.json or fix the name"
                        if _FILE_STEM.fullmatch(name)
                        else ": fix the name (a template is named by its file's name)"
                    )
                    + (f" (templates: {', '.join(known)})" if known else ""),
                )
            )
            continue
        for role in template.roles or ():  # an invalid template is reported in its file
            count += 1
            first = given.get(role.role_id)
            if first is not None:
                out.append(
                    Finding(
                        "template-role-conflict",
                        at,
                        f"role {shown(role.role_id)} is defined by template {q(first.name)} "
                        f"({first.file}) and by template {q(name)} ({template.file}): a role "
                        "comes from one place only; remove it from one of them",
                    )
                )
            else:
                given[role.role_id] = template
    own_count = 0
    for key, ptr in own:
        own_count += 1
        template = given.get(key)
        if template is not None:
            out.append(
                Finding(
                    "template-role-conflict",
                    ptr,
                    f"role {shown(key)} is also defined by template {q(template.name)} "
                    f"({template.file}): a role comes from one place only; remove it here to "
                    "take the template's, or stop using the template",
                )
            )
    # beyond the limit on its own roles alone, the file's rules have said so
    if names and own_count <= limits.max_roles_per_org < count + own_count:
        out.append(
            Finding(
                "too-many-roles",
                "/templates",
                f"{count + own_count} roles with its templates', more than the limit of "
                f"{limits.max_roles_per_org} (limits.max_roles_per_org): remove roles or "
                "raise the limit",
            )
        )
    return out


def template_paths(root: Path, diagnostics: list[Diagnostic] | None = None) -> list[Path]:
    """The template files of `root`, in name order; what is skipped is reported in
    `diagnostics`, when given."""
    return folder_files(root, TEMPLATES_DIR, "template", [] if diagnostics is None else diagnostics)


def read_templates(root: Path, parse: ParseTemplate, limits: Limits) -> dict[str, Template]:
    """The templates of `root` known to be valid (validated moments ago); a file that no
    longer reads has no roles, and expanding it fails."""
    return {
        t.name: t
        for t in (
            read_template(path.name, str(path), _read(path, limits), parse)
            for path in template_paths(root)
        )
    }


def read_template(file_name: str, shown: str, data: bytes | None, parse: ParseTemplate) -> Template:
    """One template from its bytes (None when unreadable: the template has no roles)."""
    roles = None
    if data is not None:
        try:
            roles = parse(data.removeprefix(_BOM))
        except ValueError:  # pydantic's ValidationError included
            roles = None
    return Template(template_name(file_name), shown, roles)


def _read(path: Path, limits: Limits) -> bytes | None:
    try:
        if path.stat().st_size > limits.max_file_bytes:
            return None
        return path.read_bytes()
    except OSError:
        return None
