"""Policy tests of a ZenML Pro tree (`policytest.SuiteFormat`): assertions
`{"resource", "action"}` on the organization's custom roles, named as ZenML names them.

A role is identified by `(level, name)`: a test names it `level:name`, or by its name
alone when only one level of the organization has a role of that name. The permissions
of system-managed roles are not public, so they cannot be tested. There is no project
policy: no role is held by every member, the vocabulary is the tree's
(`permissions.json` on top of the built-in one), and no action is a wildcard.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from policysync.config import Limits
from policysync.diagnostics import q, suggest
from policysync.models import MODEL_CONFIG, SCHEMA_KEY
from policysync.policytest import Catalog, HeldRole, SuiteFormat, cases_of
from policysync.zenml_models import split_key
from policysync.zenml_validate import load_permissions
from policysync.zenml_vocabulary import ACTIONS, LEVELS, RESOURCES, SYSTEM_MANAGED_NAMES


class ZenmlAssertedPermission(BaseModel):
    """One action on one resource type."""

    model_config = MODEL_CONFIG

    resource: str = Field(
        description="A resource type, e.g. `pipeline_run`.", examples=sorted(RESOURCES)
    )
    action: str = Field(description="An action, e.g. `read`.", examples=sorted(ACTIONS))


class ZenmlPolicyTest(BaseModel):
    """What a member holding `roles` may (`allow`) and may not (`deny`) do."""

    model_config = MODEL_CONFIG

    name: str = Field(description="Named in failures and in the JUnit report.")
    organization: str = Field(
        description="The `organization_id` as an organization file writes it, or that "
        "file's name without `.json`."
    )
    roles: tuple[str, ...] = Field(
        description="Custom roles of the organization: `level:name`, or the name alone "
        "when one level only has a role of that name."
    )
    allow: tuple[ZenmlAssertedPermission, ...] = Field(
        default=(), description="What the member may do."
    )
    deny: tuple[ZenmlAssertedPermission, ...] = Field(
        default=(), description="What the member may not do."
    )


class ZenmlPolicyTestFile(BaseModel):
    """One file of `policies/tests/`: assertions `policysync test` checks offline."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    schema_: str = SCHEMA_KEY
    tests: tuple[ZenmlPolicyTest, ...]


def vocabulary_catalog(root: Path, limits: Limits) -> Catalog | None:
    """No shared roles; each resource type with the actions of the levels it is in."""
    words, _ = load_permissions(root, limits)  # what is wrong with it, validate reports
    if words is None:
        return None
    resources: dict[str, frozenset[str]] = {}
    for level in words.values():
        for resource in level.resources:
            resources[resource] = resources.get(resource, frozenset()) | level.actions
    return Catalog(
        {}, (), resources, None, "the permission vocabulary (built in, and permissions.json)"
    )


def resolve_role(name: str, roles: Mapping[str, HeldRole], where: str) -> tuple[str | None, str]:
    """`level:name`, or a name one level alone has."""
    if name in roles:
        return name, ""
    levels = sorted(key for key in roles if split_key(key)[1] == name)
    if len(levels) == 1:
        return levels[0], ""
    if levels:
        keys = " and ".join(q(key) for key in levels)
        return None, f"{q(name)} names roles at two levels of {where} ({keys}): write level:name"
    level, _, rest = name.partition(":")
    bare = rest if level in LEVELS else name
    if bare in SYSTEM_MANAGED_NAMES:
        return None, (
            f"{q(bare)} is a system-managed role, whose permissions are not public: only "
            "custom roles can be tested"
        )
    names = [*roles, *(split_key(key)[1] for key in roles)]
    return None, (
        f"no custom role {q(name)}{suggest(name, names)} in {where}: name one it has, as "
        "level:name or by its name"
    )


TESTS = SuiteFormat(
    model=ZenmlPolicyTestFile,
    cases=lambda doc: cases_of(doc.tests, lambda entry: entry.resource),
    resource_field="resource",
    catalog=vocabulary_catalog,
    resolve=resolve_role,
)
