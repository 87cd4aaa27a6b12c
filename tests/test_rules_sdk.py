"""Differential check: policysync's rules 1 to 6 agree with the official Stytch SDK.

`stytch.b2b.api.rbac_organizations.Organizations.validate_org_policy` stops at the first
violation; policysync reports all of them. For any project and org policy, the SDK must
raise exactly when policysync reports at least one rule-1-to-6 error.
"""

from __future__ import annotations

from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st
from stytch.b2b.api.rbac_organizations import Organizations
from stytch.b2b.models.rbac import OrgPolicy as SdkOrgPolicy
from stytch.b2b.models.rbac import Policy as SdkPolicy

from policysync.config import Limits
from policysync.diagnostics import STYTCH_RULE_CODES
from policysync.models import OrgPolicy, ProjectPolicy
from policysync.rules import ProjectIndex, check_org_policy

HUGE = Limits(
    max_organization_id_length=10**6,
    max_role_id_length=10**6,
    max_description_length=10**6,
    max_action_length=10**6,
    max_roles_per_org=10**6,
)

# Small pools make collisions (duplicates, project roles, known resources) frequent.
role_ids = st.sampled_from(["admin", "viewer", "stytch_admin", "stytch_member", "x", ""])
resource_ids = st.sampled_from(["documents", "invoices", "stytch.member", "x", " "])
actions = st.sampled_from(["read", "write", "*", "", "  ", "approve", "read "]) | st.text(
    max_size=3
)

permissions = st.fixed_dictionaries(
    {"resource_id": resource_ids, "actions": st.lists(actions, max_size=4)}
)
roles = st.fixed_dictionaries(
    {
        "role_id": role_ids,
        "description": st.just(""),
        "permissions": st.lists(permissions, max_size=3),
    }
)
resources = st.fixed_dictionaries(
    {
        "resource_id": resource_ids,
        "description": st.just(""),
        "actions": st.lists(actions, max_size=5),
    }
)
projects = st.fixed_dictionaries(
    {
        "roles": st.lists(roles, max_size=3),
        "resources": st.lists(resources, max_size=4),
        "scopes": st.just([]),
    }
)
org_policies = st.fixed_dictionaries({"roles": st.lists(roles, max_size=4)})


def sdk_raises(project: dict[str, Any], org: dict[str, Any]) -> bool:
    try:
        Organizations.validate_org_policy(SdkPolicy(**project), SdkOrgPolicy(**org))
    except Exception:
        return True
    return False


def policysync_errors(project: dict[str, Any], org: dict[str, Any]) -> set[str]:
    index = ProjectIndex.of(ProjectPolicy.model_validate(project))
    findings = check_org_policy(OrgPolicy.model_validate(org), index, HUGE)
    return {f.code for f in findings} & STYTCH_RULE_CODES


STANDARD_PROJECT: dict[str, Any] = {
    "roles": [{"role_id": "admin", "description": "", "permissions": []}],
    "resources": [
        {"resource_id": "documents", "description": "", "actions": ["read", "write"]},
    ],
    "scopes": [],
}


def _org(*perms: tuple[str, list[str]], role_id: str = "r") -> dict[str, Any]:
    return {
        "roles": [
            {
                "role_id": role_id,
                "description": "",
                "permissions": [{"resource_id": r, "actions": a} for r, a in perms],
            }
        ]
    }


@settings(max_examples=600, deadline=None)
@given(projects, org_policies)
@example(STANDARD_PROJECT, _org(("documents", ["*"])))
@example(STANDARD_PROJECT, _org(("documents", ["*", "*"])))
@example(STANDARD_PROJECT, _org(("documents", ["*", "read"])))
@example(STANDARD_PROJECT, _org(("documents", [])))
@example(STANDARD_PROJECT, _org(("documents", ["  "])))
@example(STANDARD_PROJECT, _org(("documents", ["read", "read"])))
@example(STANDARD_PROJECT, _org(("nope", ["read"])))
@example(STANDARD_PROJECT, _org(("documents", ["read"]), role_id="admin"))
@example(STANDARD_PROJECT, {"roles": [_org()["roles"][0], _org()["roles"][0]]})
def test_sdk_raises_exactly_when_policysync_reports_a_stytch_rule(
    project: dict[str, Any], org: dict[str, Any]
) -> None:
    assert sdk_raises(project, org) == bool(policysync_errors(project, org))


def test_the_examples_exercise_both_outcomes() -> None:
    assert not sdk_raises(STANDARD_PROJECT, _org(("documents", ["*"])))
    assert sdk_raises(STANDARD_PROJECT, _org(("documents", ["*", "read"])))
    assert policysync_errors(STANDARD_PROJECT, _org(("documents", ["*", "read"]))) == {
        "wildcard-not-alone"
    }
