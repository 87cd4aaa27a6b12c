"""The semantics of policy tests, as Stytch (and ZenML Pro) authorize: which roles a
member holds, what grants an action, and what a failure says."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from policysync.config import Settings
from policysync.models import Permission
from policysync.policytest import (
    Assertion,
    HeldRole,
    find_org,
    judge,
    org_policies,
    project_catalog,
    suite_format,
)
from policysync.testsuite import read_suite, run_suite

ROOT = Path(__file__).parent.parent
ZENML = ROOT / "examples" / "zenml"


def role(role_id: str, source: str = "policies/orgs/acme.json", **grants: list[str]) -> HeldRole:
    return HeldRole(
        role_id,
        source,
        tuple(Permission(resource_id=r, actions=tuple(a)) for r, a in grants.items()),
    )


def allow(resource: str, action: str) -> Assertion:
    return Assertion("allow", resource, action, "/tests/0/allow/0")


def deny(resource: str, action: str) -> Assertion:
    return Assertion("deny", resource, action, "/tests/0/deny/0")


APPROVER = role("invoice-approver", invoices=["approve", "read"], reports=["read"])
ADMIN = role("billing-admin", "policies/project.json", invoices=["*"])


def test_an_action_is_granted_by_a_role_listing_it_on_that_resource() -> None:
    assert judge(allow("invoices", "approve"), [APPROVER], "*").explanation == ""
    assert judge(deny("invoices", "void"), [APPROVER], "*").explanation == ""
    assert not judge(allow("reports", "approve"), [APPROVER], "*").granted  # another resource


def test_the_wildcard_grants_every_action_of_its_resource_only() -> None:
    verdict = judge(allow("invoices", "void"), [ADMIN], "*")
    assert (verdict.granted, verdict.grants) == (True, [(ADMIN, True)])
    assert not judge(allow("reports", "read"), [ADMIN], "*").granted
    assert not judge(allow("invoices", "void"), [ADMIN], None).granted  # ZenML: none


def test_a_failed_deny_names_every_role_granting_it_and_how() -> None:
    verdict = judge(deny("invoices", "read"), [APPROVER, ADMIN], "*")
    assert verdict.explanation == (
        "allowed: role invoice-approver (policies/orgs/acme.json) grants it; "
        'role billing-admin (policies/project.json) grants it through "*"'
    )


def test_a_failed_allow_says_what_each_role_held_grants_on_the_resource() -> None:
    member = role("stytch_member", "policies/project.json", **{"stytch.self": ["*"]})
    verdict = judge(allow("invoices", "void"), [member, APPROVER], "*")
    assert verdict.explanation == (
        "denied: no role the member holds grants it (role stytch_member "
        "(policies/project.json) grants nothing on invoices; role invoice-approver "
        "(policies/orgs/acme.json) grants approve, read on invoices)"
    )
    assert judge(allow("invoices", "read"), [], "*").explanation == (
        "denied: the member holds no role"
    )


def test_project_roles_and_stytch_member_are_in_every_organization() -> None:
    catalog = project_catalog(ROOT / "policies", Settings().limits)
    assert catalog is not None
    assert catalog.everyone == ("stytch_member",)
    assert {"billing-admin", "editor", "viewer", "stytch_admin"} <= set(catalog.roles)
    assert catalog.roles["billing-admin"].source == str(ROOT / "policies" / "project.json")
    assert catalog.wildcard == "*"
    assert catalog.resources["invoices"] == {"approve", "create", "delete", "read", "void"}


def test_an_organization_is_named_by_its_id_or_its_file_name() -> None:
    orgs = org_policies(ROOT / "policies", Settings())
    by_file = find_org(orgs, "acme")
    by_id = find_org(orgs, "organization-test-07971b06-ac8b-4cdb-9c15-63b17e653931")
    assert by_file is not None
    assert by_file == by_id
    assert by_file.roles is not None
    assert by_file.roles["invoice-approver"].source == str(
        ROOT / "policies/templates/finance.json"
    )  # its template
    assert find_org(orgs, "acme.json") is None
    assert find_org(orgs, "organization-test") is None


def test_an_organization_id_wins_over_another_files_name(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "policies", tmp_path / "policies")
    umbrella = tmp_path / "policies/orgs/umbrella.json"
    document = json.loads(umbrella.read_text())
    document["organization_id"] = "globex-2"
    umbrella.write_text(json.dumps(document))
    (tmp_path / "policies/orgs/globex.json").rename(tmp_path / "policies/orgs/globex-2.json")
    orgs = org_policies(tmp_path / "policies", Settings(policies=str(tmp_path / "policies")))
    found = find_org(orgs, "globex-2")
    assert found is not None
    assert found.file.name == "umbrella.json"


# ZenML Pro: roles by (level, name).

RESOLVE = suite_format("zenml").resolve
ROLES = {
    "workspace:Run Operators": role("workspace:Run Operators"),
    "project:Reviewers": role("project:Reviewers"),
    "workspace:Reviewers": role("workspace:Reviewers"),
}


@pytest.mark.parametrize(
    ("name", "found"),
    [
        ("workspace:Run Operators", "workspace:Run Operators"),
        ("Run Operators", "workspace:Run Operators"),
        ("project:Reviewers", "project:Reviewers"),
    ],
)
def test_a_zenml_role_is_named_by_level_and_name_or_by_a_name_one_level_has(
    name: str, found: str
) -> None:
    assert RESOLVE(name, ROLES, "acme (policies/orgs/acme.json)") == (found, "")


def test_a_zenml_name_two_levels_share_asks_for_level_and_name() -> None:
    assert RESOLVE("Reviewers", ROLES, "acme (policies/orgs/acme.json)") == (
        None,
        '"Reviewers" names roles at two levels of acme (policies/orgs/acme.json) '
        '("project:Reviewers" and "workspace:Reviewers"): write level:name',
    )


@pytest.mark.parametrize("name", ["Workspace Admin", "workspace:Workspace Admin"])
def test_a_zenml_system_managed_role_cannot_be_tested(name: str) -> None:
    assert RESOLVE(name, ROLES, "acme (policies/orgs/acme.json)") == (
        None,
        '"Workspace Admin" is a system-managed role, whose permissions are not public: only '
        "custom roles can be tested",
    )


def test_an_unknown_zenml_role_gets_a_did_you_mean() -> None:
    assert RESOLVE("Run Operator", ROLES, "acme (policies/orgs/acme.json)") == (
        None,
        'no custom role "Run Operator" (did you mean "Run Operators"?) in acme '
        "(policies/orgs/acme.json): name one it has, as level:name or by its name",
    )


def test_a_zenml_suite_runs_against_the_custom_roles(tmp_path: Path) -> None:
    shutil.copytree(ZENML / "policies", tmp_path / "policies")
    (tmp_path / "policies/tests").mkdir()
    (tmp_path / "policies/tests/runs.json").write_text(
        json.dumps(
            {
                "tests": [
                    {
                        "name": "run operators run pipelines but touch no secret",
                        "organization": "initech",
                        "roles": ["Run Operators", "organization:Team Leads"],
                        "allow": [
                            {"resource": "pipeline_run", "action": "create"},
                            {"resource": "team", "action": "update"},
                        ],
                        "deny": [{"resource": "secret", "action": "read"}],
                    }
                ]
            }
        )
    )
    settings = Settings(provider="zenml", policies=str(tmp_path / "policies"))
    suite = read_suite(tmp_path / "policies", None, settings)
    assert suite.diagnostics == []
    report = run_suite(suite)
    assert report.passed
    assert report.tests[0].roles == ("workspace:Run Operators", "organization:Team Leads")
    assert [a.granted_by[0].role for a in report.tests[0].assertions[:2]] == [
        "workspace:Run Operators",
        "organization:Team Leads",
    ]
