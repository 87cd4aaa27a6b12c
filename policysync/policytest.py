"""Policy tests: `policies/tests/*.json` say what members of an organization may do, and
`policysync test` checks each assertion offline, the way the provider authorizes.

A member holding `roles` (and the roles every member holds: Stytch's `stytch_member`)
may take `action` on `resource` when one of those roles grants that action, or the
provider's wildcard (Stytch's `"*"`), on that resource. A role is one every
organization has (Stytch's project roles, from `project.json`) or one of the
organization's own, as `org_policies` reads them: the one way tests see organizations.

Provider-neutral: each provider's `SuiteFormat` (by the settings' `provider`, in
`SUITE_FORMATS`) reads its test files into `Case`s and says which roles, resources and
actions a tree has; ZenML Pro's is in `zenml_policytest.py`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field

from policysync.config import Limits, Settings
from policysync.diagnostics import q, suggest
from policysync.formats import file_format
from policysync.loader import load_project, org_paths
from policysync.models import MODEL_CONFIG, SCHEMA_KEY, Permission
from policysync.rules import check_project
from policysync.templates import TemplateError, expand, read_templates

# The test files, in the shape of Stytch's org policies --------------------------------


class AssertedPermission(BaseModel):
    """One action on one resource."""

    model_config = MODEL_CONFIG

    resource_id: str = Field(description="A resource of the project policy, e.g. `invoices`.")
    action: str = Field(description="One action the resource declares, e.g. `approve`.")


class PolicyTest(BaseModel):
    """What a member holding `roles` may (`allow`) and may not (`deny`) do."""

    model_config = MODEL_CONFIG

    name: str = Field(description="Named in failures and in the JUnit report.")
    organization: str = Field(
        description="The `organization_id` as an organization file writes it, or that "
        "file's name without `.json`."
    )
    roles: tuple[str, ...] = Field(
        description="The member's roles: project roles or the organization's (everyone "
        "holds `stytch_member` besides)."
    )
    allow: tuple[AssertedPermission, ...] = Field(default=(), description="What the member may do.")
    deny: tuple[AssertedPermission, ...] = Field(
        default=(), description="What the member may not do."
    )


class PolicyTestFile(BaseModel):
    """One file of `policies/tests/`: assertions `policysync test` checks offline."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    schema_: str = SCHEMA_KEY
    tests: tuple[PolicyTest, ...]


# The core's view of a test ----------------------------------------------------------

Expect = Literal["allow", "deny"]


class Assertion(NamedTuple):
    expect: Expect
    resource: str
    action: str
    pointer: str  # of the entry in its file


class Case(NamedTuple):
    """One test, whatever the provider's shape of its file."""

    name: str
    organization: str
    roles: tuple[str, ...]  # as the file names them
    assertions: tuple[Assertion, ...]
    pointer: str  # of the test in its file


def cases_of(tests: Sequence[Any], resource_of: Callable[[Any], str]) -> list[Case]:
    """The tests of a file as `Case`s: each allow and deny entry an assertion on the
    resource `resource_of` gives."""
    out = []
    for i, test in enumerate(tests):
        assertions = tuple(
            Assertion(expect, resource_of(entry), entry.action, f"/tests/{i}/{expect}/{j}")
            for expect in ("allow", "deny")
            for j, entry in enumerate(getattr(test, expect))
        )
        out.append(Case(test.name, test.organization, test.roles, assertions, f"/tests/{i}"))
    return out


class HeldRole(NamedTuple):
    """A role a test can name, and the file that defines it (explanations name it)."""

    role_id: str
    source: str
    permissions: tuple[Permission, ...]

    def actions_on(self, resource: str) -> list[str]:
        return [a for p in self.permissions if p.resource_id == resource for a in p.actions]


class OrgRoles(NamedTuple):
    organization_id: str | None  # None when the file does not read
    file: Path
    roles: dict[str, HeldRole] | None  # role_id -> role; None when the file does not read


def org_policies(root: Path, settings: Settings) -> list[OrgRoles]:
    """Every organization of the tree `root` with its roles, its templates expanded, each
    role with its file (the template's for a role a template gives): the one place tests
    read organizations from."""
    files_of = file_format(settings.provider)
    real_root = root.resolve()
    templates = read_templates(root, files_of.parse_template, settings.limits)
    out = []
    for path in org_paths(root, []):  # what it skips, validate reports
        document = files_of.read_policy(path, real_root, settings.limits)
        try:
            expanded = None if document is None else expand(document, templates)
        except TemplateError:  # validate reports it
            expanded = None
        if document is None or expanded is None:
            out.append(OrgRoles(None if document is None else document.organization_id, path, None))
            continue
        roles = {
            role.role_id: HeldRole(
                role.role_id,
                templates[expanded.sources[role.role_id]].file
                if role.role_id in expanded.sources
                else str(path),
                role.permissions,
            )
            for role in expanded.policy.roles
        }
        out.append(OrgRoles(document.organization_id, path, roles))
    return out


def find_org(orgs: Sequence[OrgRoles], name: str) -> OrgRoles | None:
    """The organization a test names: by `organization_id`, else by file name."""
    found = next((org for org in orgs if org.organization_id == name), None)
    return found or next((org for org in orgs if org.file.name == f"{name}.json"), None)


def org_names(orgs: Sequence[OrgRoles]) -> list[str]:
    names = [org.file.name.removesuffix(".json") for org in orgs]
    return names + [org.organization_id for org in orgs if org.organization_id is not None]


class Catalog(NamedTuple):
    """What every organization of a tree shares, as tests see it."""

    roles: dict[str, HeldRole]  # roles a test may name besides the organization's
    everyone: tuple[str, ...]  # the roles every member holds, named or not
    resources: dict[str, frozenset[str]]  # resource -> its actions
    wildcard: str | None  # the action that grants every action
    declared_in: str  # where the resources are declared, for messages


# A role a test names as the role_id it is among `roles` (those of `where`, for
# messages), or None and why not.
Resolve = Callable[[str, Mapping[str, HeldRole], str], tuple[str | None, str]]


class SuiteFormat(NamedTuple):
    model: type[BaseModel]  # a test file
    cases: Callable[[Any], list[Case]]  # the tests of a valid one
    resource_field: str  # the key of an assertion's resource
    catalog: Callable[[Path, Limits], Catalog | None]  # None when it cannot be known
    resolve: Resolve


def resolve_role(name: str, roles: Mapping[str, HeldRole], where: str) -> tuple[str | None, str]:
    if name in roles:
        return name, ""
    return None, f"no role {q(name)}{suggest(name, roles)} in {where}: name a role they have"


EVERY_MEMBER = "stytch_member"


def project_catalog(root: Path, limits: Limits) -> Catalog | None:
    """Project roles (every organization has them), and `stytch_member`, held by all."""
    project, _ = load_project(root, limits)  # what is wrong with it, validate reports
    if project is None or check_project(project.policy):
        return None
    policy, source = project.policy, str(project.path)
    roles = {r.role_id: HeldRole(r.role_id, source, r.permissions) for r in policy.roles}
    resources = {r.resource_id: frozenset(r.actions) for r in policy.resources}
    everyone = (EVERY_MEMBER,) if EVERY_MEMBER in roles else ()
    return Catalog(roles, everyone, resources, "*", source)


PROJECT_TESTS = SuiteFormat(
    model=PolicyTestFile,
    cases=lambda doc: cases_of(doc.tests, lambda entry: entry.resource_id),
    resource_field="resource_id",
    catalog=project_catalog,
    resolve=resolve_role,
)

# provider -> "module:attribute" of its tests' format
SUITE_FORMATS = {
    "stytch": f"{__name__}:PROJECT_TESTS",
    "zenml": "policysync.zenml_policytest:TESTS",
}


def suite_format(provider: str) -> SuiteFormat:
    module, _, attribute = SUITE_FORMATS[provider].partition(":")
    found: SuiteFormat = getattr(importlib.import_module(module), attribute)
    return found


# Authorization ----------------------------------------------------------------------


class Verdict(NamedTuple):
    granted: bool
    grants: list[tuple[HeldRole, bool]]  # the roles granting it; True: through the wildcard
    explanation: str  # why the assertion fails; "" when it holds


def role_label(role: HeldRole) -> str:
    return f"role {role.role_id} ({role.source})"


def judge(assertion: Assertion, held: Sequence[HeldRole], wildcard: str | None) -> Verdict:
    """Whether a member holding `held` may do what `assertion` names, and, when that is
    not what it expects, why: which roles grant it, or what each grants on the resource."""
    resource, action = assertion.resource, assertion.action
    grants = []
    for role in held:
        actions = role.actions_on(resource)
        if action in actions:
            grants.append((role, False))
        elif wildcard is not None and wildcard in actions:
            grants.append((role, True))
    granted = bool(grants)
    if granted == (assertion.expect == "allow"):
        return Verdict(granted, grants, "")
    if granted:
        named = "; ".join(
            role_label(role) + (f' grants it through "{wildcard}"' if through else " grants it")
            for role, through in grants
        )
        return Verdict(granted, grants, f"allowed: {named}")
    if not held:
        return Verdict(granted, grants, "denied: the member holds no role")
    details = "; ".join(_on(role, resource) for role in held)
    return Verdict(granted, grants, f"denied: no role the member holds grants it ({details})")


def _on(role: HeldRole, resource: str) -> str:
    actions = list(dict.fromkeys(role.actions_on(resource)))
    granted = ", ".join(actions) if actions else "nothing"
    return f"{role_label(role)} grants {granted} on {resource}"
