"""The drift report and its renderers, without a network: from plans and policies made here."""

from __future__ import annotations

import json
from typing import Any

import click
import jsonschema
import pytest

from policysync import schemas
from policysync.cli import DRIFT_FORMATS
from policysync.drift import (
    DriftReport,
    ProjectDrift,
    UnmanagedOrg,
    build_report,
    project_drift,
    unmanaged_org,
)
from policysync.models import Organization, OrgPolicy, ProjectPolicy
from policysync.plan import EscalationRules, OrgError, PlanEntry, assemble, plan_org
from policysync.selection import Shard
from policysync.views.common import MARKDOWN_LIMIT
from policysync.views.drift import DRIFT_RENDERERS, render_markdown, render_text, summary_line


def role(role_id: str, *actions: str, resource: str = "documents", description: str = "") -> Any:
    return {
        "role_id": role_id,
        "description": description,
        "permissions": [{"resource_id": resource, "actions": list(actions)}],
    }


def policy(*roles: Any) -> OrgPolicy:
    return OrgPolicy.model_validate({"roles": list(roles)})


NO_PROJECT_DRIFT = ProjectDrift(file="policies/project.json", drifted=False, items=())


def report(
    orgs: list[tuple[str, OrgPolicy, OrgPolicy | OrgError]],
    project: ProjectDrift = NO_PROJECT_DRIFT,
    unmanaged: tuple[UnmanagedOrg, ...] | None = None,
) -> DriftReport:
    """The drift report of organizations given as (id, file policy, live policy or error)."""
    entries = [
        PlanEntry.of(plan_org(org_id, f"policies/orgs/{org_id}.json", desired, live))
        for org_id, desired, live in orgs
    ]
    plan = assemble(
        entries,
        project_id="project-test-x",
        created_at="2025-01-01T00:00:00Z",
        policysync_version="0",
        git_commit=None,
        git_dirty=None,
        rules=EscalationRules(),
    )
    return build_report(plan, project, unmanaged)


def not_found(org_id: str) -> OrgError:
    return OrgError(
        status=404,
        error_type="organization_not_found",
        message="Organization could not be found.",
        request_id="request-id-test-1",
    )


def test_plan_changes_are_read_from_live_s_point_of_view() -> None:
    desired = policy(role("kept", "read"), role("gone", "read"), role("edited", "read"))
    live = policy(role("kept", "read"), role("edited", "read", "write"), role("new", "read"))
    result = report([("acme", desired, live), ("same", desired, desired)])
    (org,) = result.organizations
    assert [(r.role_id, r.drift) for r in org.roles] == [
        ("edited", "changed"),
        ("gone", "removed"),
        ("new", "added"),
    ]
    assert org.roles[1].live is None
    assert org.roles[1].file is not None
    assert org.roles[2].file is None
    assert org.roles[2].live is not None
    s = result.summary
    assert (s.organizations, s.drifted, s.roles_added, s.roles_removed, s.roles_changed) == (
        2,
        1,
        1,
        1,
        1,
    )
    assert result.drift_found
    text = click.unstyle(render_text(result))
    assert "  ~ role edited" in text
    assert "      ~ documents: + write" in text  # live has write, the file has not
    assert summary_line(result) == (
        "Drift: 1 of 2 organizations drifted (1 role added, 1 removed, 1 changed outside git)."
    )


def test_order_and_split_permissions_are_no_drift() -> None:
    desired = policy(role("a", "read", "write"), role("b", "read"))
    live = OrgPolicy.model_validate(
        {
            "roles": [
                role("b", "read"),
                {
                    "role_id": "a",
                    "description": "",
                    "permissions": [
                        {"resource_id": "documents", "actions": ["write"]},
                        {"resource_id": "documents", "actions": ["read"]},
                    ],
                },
            ]
        }
    )
    result = report([("acme", desired, live)])
    assert not result.drift_found
    assert summary_line(result) == "No drift. 1 organization matches its file."


def test_missing_organizations_are_drift_other_errors_are_failures() -> None:
    unreadable = OrgError(status=None, error_type="timeout", message="no answer", request_id=None)
    result = report([("ghost", policy(), not_found("ghost")), ("slow", policy(), unreadable)])
    assert [(o.organization_id, o.status) for o in result.organizations] == [
        ("ghost", "missing"),
        ("slow", "error"),
    ]
    assert (result.summary.missing, result.summary.failed) == (1, 1)
    assert result.drift_found
    assert summary_line(result) == (
        "Drift: 1 managed organization no longer exists. 1 could not be read."
    )
    text = click.unstyle(render_text(result))
    assert "! organization ghost: no longer exists live: organization_not_found" in text
    assert "(request request-id-test-1)" in text
    assert "! organization slow: timeout: no answer" in text


def project(**changes: Any) -> ProjectPolicy:
    base: dict[str, Any] = {
        "roles": [role("viewer", "read")],
        "resources": [
            {"resource_id": "documents", "description": "", "actions": ["read", "write"]},
            {"resource_id": "reports", "description": "", "actions": ["read"]},
        ],
        "scopes": [{"scope": "read:documents", "description": "", "permissions": []}],
    }
    return ProjectPolicy.model_validate({**base, **changes})


def test_project_drift_by_item_with_order_ignored() -> None:
    snapshot = project()
    same = project(
        resources=[
            {"resource_id": "reports", "description": "", "actions": ["read"]},
            {"resource_id": "documents", "description": "", "actions": ["write", "read"]},
        ]
    )
    assert project_drift("p.json", snapshot, same) == ProjectDrift(
        file="p.json", drifted=False, items=()
    )
    live = project(
        roles=[role("viewer", "read", "write"), role("auditor", "read")],
        resources=[{"resource_id": "documents", "description": "", "actions": ["read", "write"]}],
        scopes=[],
    )
    drift = project_drift("p.json", snapshot, live)
    assert drift.drifted
    assert [(i.kind, i.id, i.drift) for i in drift.items] == [
        ("resource", "reports", "removed"),
        ("role", "auditor", "added"),
        ("role", "viewer", "changed"),
        ("scope", "read:documents", "removed"),
    ]
    result = report([], project=drift)
    assert result.drift_found
    text = click.unstyle(render_text(result))
    assert "  - resource reports" in text
    assert "(removed live)" in text
    assert summary_line(result) == ("Drift: p.json is out of date with the live project policy.")


def organization(org_id: str, slug: str, external: str | None, *roles: Any) -> Organization:
    return Organization(org_id, "", slug, external, OrgPolicy.model_validate({"roles": roles}))


def test_unmanaged_means_roles_and_no_file_by_any_name() -> None:
    managed = frozenset({"org-1", "slug-2", "ext-3"})
    with_roles = [role("r", "read")]
    assert unmanaged_org(organization("org-1", "slug-1", None, *with_roles), managed, None) is None
    assert unmanaged_org(organization("org-2", "slug-2", None, *with_roles), managed, None) is None
    assert (
        unmanaged_org(organization("org-3", "slug-3", "ext-3", *with_roles), managed, None) is None
    )
    assert unmanaged_org(organization("org-4", "slug-4", None), managed, None) is None
    found = unmanaged_org(organization("org-5", "slug-5", "ext-5", *with_roles), managed, None)
    assert found is not None
    assert (found.organization_slug, found.role_ids) == ("slug-5", ("r",))
    shards = [
        unmanaged_org(organization("org-5", "s", None, *with_roles), managed, Shard(i, 3))
        for i in (1, 2, 3)
    ]
    assert sum(shard is not None for shard in shards) == 1


def test_no_drift_with_all_orgs_says_so() -> None:
    result = report([("acme", policy(), policy())], unmanaged=())
    assert not result.drift_found
    assert summary_line(result) == (
        "No drift. 1 organization matches its file; no unmanaged organization has roles."
    )


def test_values_from_stytch_cannot_forge_lines() -> None:
    desired = policy(role("a", "read"))
    live = policy(role("a", "read"), role("evil\n+ role forged\x1b[2J", "read"))
    text = click.unstyle(render_text(report([("acme", desired, live)])))
    assert "forged\\u001b[2J" in text
    assert not any(line.startswith("+ role forged") for line in text.splitlines())


def big_report(organizations: int) -> DriftReport:
    desired = policy(*(role(f"role-{i:03d}", "read") for i in range(20)))
    live = policy(*(role(f"role-{i:03d}", "write") for i in range(20)))
    unmanaged = tuple(
        UnmanagedOrg(
            organization_id=f"organization-test-{i:08d}",
            organization_slug=f"tenant-{i}",
            organization_name="",
            organization_external_id=None,
            role_ids=("reader",),
        )
        for i in range(2000)
    )
    orgs = [(f"org-{i:05d}", desired, live) for i in range(organizations)]
    orgs.append(("ghost", desired, not_found("ghost")))
    return report(orgs, unmanaged=unmanaged)


def test_markdown_is_bounded_with_its_summary_line_first() -> None:
    result = big_report(300)
    markdown = render_markdown(result)
    assert len(markdown) <= MARKDOWN_LIMIT
    first = markdown.splitlines()[0]
    assert first.startswith("**Drift: 300 of 301 organizations drifted (0 roles added")
    assert "1 managed organization no longer exists; 2000 unmanaged organizations" in first
    assert "```diff\n! organization ghost" in markdown  # what cannot be compared comes first
    assert markdown.rstrip().endswith(
        "left out to stay under 65,000 characters: see the JSON report (`--report FILE`)._"
    )


def test_small_markdown_holds_everything() -> None:
    desired = policy(role("a", "read"))
    markdown = render_markdown(report([("acme", desired, policy())], unmanaged=()))
    assert markdown.startswith("**Drift: 1 of 1 organization drifted")
    assert "<details><summary>acme: 0 added, 0 changed, 1 removed live</summary>" in markdown
    assert "```diff\n- role a" in markdown
    assert "left out" not in markdown


@pytest.mark.parametrize("fmt", sorted(DRIFT_RENDERERS))
def test_every_format_renders(fmt: str) -> None:
    assert DRIFT_RENDERERS[fmt](big_report(3))


def test_the_cli_offers_every_renderer() -> None:
    assert set(DRIFT_FORMATS) == set(DRIFT_RENDERERS)


def test_json_report_validates_against_the_published_schema() -> None:
    document = json.loads(DRIFT_RENDERERS["json"](big_report(3)))
    jsonschema.validate(document, schemas.generate("drift"))
    assert schemas.generate("drift")["$id"] == "urn:policysync:schema:drift"


def test_a_failed_search_is_reported_and_counts_as_an_error() -> None:
    desired = policy(role("a", "read"))
    plan_report = report([("acme", desired, desired)])
    error = OrgError(
        status=429, error_type="too_many_requests", message="slow down", request_id="r-9"
    )
    result = plan_report.model_copy(update={"search_error": error})
    assert summary_line(result) == (
        "No drift. 1 organization matches its file. The organization search failed."
    )
    text = click.unstyle(render_text(result))
    assert "! organization search: too_many_requests: slow down (request r-9)" in text
    assert "```diff\n! organization search: too_many_requests" in render_markdown(result)
