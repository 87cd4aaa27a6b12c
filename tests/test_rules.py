"""Rule messages: what the corpus (codes and places) does not show."""

from __future__ import annotations

from policysync.config import Limits
from policysync.diagnostics import q, suggest
from policysync.models import OrgPolicy, Permission, ProjectPolicy, Resource, Role
from policysync.rules import ProjectIndex, check_org_policy, check_organization_id

PROJECT = ProjectIndex.of(
    ProjectPolicy(
        roles=(Role(role_id="stytch_admin", permissions=()),),
        resources=(Resource(resource_id="invoices", actions=("read", "approve", "void")),),
    )
)


def findings(*roles: Role) -> list[tuple[str, str, str]]:
    return [tuple(f) for f in check_org_policy(OrgPolicy(roles=roles), PROJECT, Limits())]


def role(role_id: str, *actions: str, resource: str = "invoices") -> Role:
    return Role(role_id=role_id, permissions=(Permission(resource_id=resource, actions=actions),))


def test_q_makes_invisible_characters_visible() -> None:
    assert q("auditor\u200b") == '"auditor\\u200b"'
    assert q("a\u00a0b\ud800") == '"a\\u00a0b\\ud800"'
    assert q("tab\there") == '"tab\\there"'
    assert q("café ✓") == '"café ✓"'


def test_suggest_only_close_matches() -> None:
    assert suggest("aprove", ["approve", "void"]) == ' (did you mean "approve"?)'
    assert suggest("print", ["write", "read"]) == ""


def test_role_id_problems_say_which_one_applies() -> None:
    messages = {
        rid: [m for c, _, m in findings(role(rid, "read")) if c == "role-id-invalid"]
        for rid in ("", "  ", " lead", "zero\u200bwidth", "inner space")
    }
    assert "is empty" in messages[""][0]
    assert "is blank" in messages["  "][0]
    assert "leading or trailing whitespace" in messages[" lead"][0]
    assert '"zero\\u200bwidth" holds invisible' in messages["zero\u200bwidth"][0]
    assert messages["inner space"] == []


def test_a_default_role_is_a_conflict_not_also_a_reserved_prefix() -> None:
    assert [c for c, _, _ in findings(role("stytch_admin", "read"))] == ["role-project-conflict"]
    assert [c for c, _, _ in findings(role("stytch_auditor", "read"))] == ["role-reserved-prefix"]


def test_unknown_action_lists_what_the_resource_declares() -> None:
    [(code, ptr, message)] = findings(role("r", "aprove"))
    assert code == "action-unknown"
    assert ptr == "/org_policy/roles/0/permissions/0/actions/0"
    assert message == (
        'resource "invoices" has no action "aprove" (did you mean "approve"?); '
        "it declares: approve, read, void"
    )


def test_without_a_project_only_project_independent_rules_run() -> None:
    policy = OrgPolicy(roles=(role("stytch_admin", "nope", "nope", resource="ghost"),))
    codes = [f.code for f in check_org_policy(policy, None, Limits())]
    assert codes == ["role-reserved-prefix", "action-duplicate"]


def test_organization_id_messages() -> None:
    limits = Limits(max_organization_id_length=10)
    assert check_organization_id("acme", limits) is None
    assert "is empty" in (check_organization_id("", limits) or "")
    assert "is blank" in (check_organization_id("   ", limits) or "")
    assert "'/'" in (check_organization_id("a/b", limits) or "")
    assert "URL" in (check_organization_id("..", limits) or "")
    assert "whitespace or control" in (check_organization_id("a\u2028b", limits) or "")
    assert "11 characters long" in (check_organization_id("x" * 11, limits) or "")
