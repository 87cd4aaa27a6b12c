"""The plan renderers: golden renderings, the summary line, markdown's size limit."""

from __future__ import annotations

import json
from pathlib import Path

import click
import jsonschema
import pytest
from support.plancases import (
    ALL_CASES,
    PLAN_CASES,
    case_state,
    check_golden,
    plan_case_dirs,
    plan_of,
)

from policysync import planfile
from policysync.errors import UsageError
from policysync.formats import file_format
from policysync.models import Holder, OrgPolicy, Permission, Role, RoleHolders
from policysync.plan import (
    OrgError,
    OrgState,
    Plan,
    PlanDocument,
    PlanEntry,
    assemble,
    members_in_use,
    plan_org,
    with_in_use,
)
from policysync.views.common import MARKDOWN_LIMIT
from policysync.views.plan import (
    PLAN_RENDERERS,
    render_json,
    render_markdown,
    render_text,
    summary_line,
)

SCHEMA = Path(__file__).parent.parent.parent / "schemas" / "plan.schema.json"
SUFFIX = {"text": "txt", "markdown": "md", "json": "json"}


def all_cases() -> Plan:
    return plan_of(map(case_state, plan_case_dirs()))


def role(role_id: str, *actions: str) -> Role:
    return Role(role_id=role_id, permissions=(Permission(resource_id="invoices", actions=actions),))


def error() -> OrgError:
    return OrgError(
        status=404, error_type="organization_not_found", message="Not found.", request_id="req-1"
    )


@pytest.mark.parametrize("case", plan_case_dirs(), ids=lambda p: p.name)
def test_case_text(case: Path, update_golden: bool) -> None:
    text = click.unstyle(render_text(plan_of([case_state(case)])))
    check_golden(case / "expected.txt", text + "\n", update_golden)


@pytest.mark.parametrize("fmt", sorted(PLAN_RENDERERS))
def test_rendering_of_all_cases(fmt: str, update_golden: bool) -> None:
    out = click.unstyle(PLAN_RENDERERS[fmt](all_cases()))
    check_golden(ALL_CASES / f"rendered.{SUFFIX[fmt]}", out + "\n", update_golden)


def test_every_format_has_a_golden_file() -> None:
    assert set(SUFFIX) == set(PLAN_RENDERERS)


def test_text_colours_the_symbols() -> None:
    out = render_text(all_cases())
    assert click.style("+", fg="green", bold=True) + " role" in out
    assert click.style("-", fg="red", bold=True) + " role" in out
    assert click.style("~", fg="yellow", bold=True) + " role" in out
    assert click.style("!", fg="red", bold=True) + " organization" in out
    assert "\x1b" not in render_markdown(all_cases()) + render_json(all_cases())


def test_json_is_valid_against_the_published_schema_and_reads_back() -> None:
    plan = all_cases()
    doc = json.loads(render_json(plan))
    jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text())).validate(doc)
    document = PlanDocument.model_validate(doc)
    assert Plan.of(document) == plan
    assert document == plan.document()
    assert doc == plan.document().model_dump(mode="json", exclude={"checksum"})


def test_streamed_checksum_is_the_checksum_of_the_document() -> None:
    """`Plan.checksum` hashes the canonical JSON piece by piece; it must equal what
    `planfile.checksum` computes from the whole document (what `apply` checks)."""
    plan = all_cases()
    assert plan.checksum() == planfile.checksum(json.loads(render_json(plan)))
    unicode = plan_of_policies((OrgPolicy(roles=(role("prüfer", "read"),)), SAME))
    assert unicode.checksum() == planfile.checksum(json.loads(render_json(unicode)))
    empty = plan_of([])
    assert empty.checksum() == planfile.checksum(json.loads(render_json(empty)))
    assert json.loads(render_json(empty))["organizations"] == []


@pytest.mark.parametrize("name", ["all cases", "unicode", "empty"])
def test_a_saved_plan_reads_back_as_the_plan_saved(name: str, tmp_path: Path) -> None:
    plans = {
        "all cases": all_cases(),
        "unicode": plan_of_policies((OrgPolicy(roles=(role("prüfer\u2028", "read"),)), SAME)),
        "empty": plan_of([]),
    }
    plan, path = plans[name], tmp_path / "plan.json"
    planfile.save(plan, path)
    assert json.loads(path.read_text(encoding="utf-8"))["checksum"] == plan.checksum()
    assert planfile.load(path, plan.project_id) == plan
    assert [p.name for p in tmp_path.iterdir()] == ["plan.json"]  # no temporary file left


def test_a_saved_plan_laid_out_again_is_checked_by_its_document(tmp_path: Path) -> None:
    """Formatted by an editor, a saved plan is still the plan reviewed; one edit and it
    is refused, laid out as saved or not."""
    plan, path = all_cases(), tmp_path / "plan.json"
    planfile.save(plan, path)
    document = json.loads(path.read_text(encoding="utf-8"))
    path.write_text(json.dumps(document, indent=4), encoding="utf-8")
    assert planfile.load(path, plan.project_id) == plan
    path.write_text(json.dumps(document, indent=4).replace("update", "create", 1))
    with pytest.raises(UsageError, match="checksum mismatch"):
        planfile.load(path, plan.project_id)
    planfile.save(plan, path)
    edited = path.read_text(encoding="utf-8").replace('"read"', '"write"', 1)
    assert edited != path.read_text(encoding="utf-8")
    path.write_text(edited, encoding="utf-8")
    with pytest.raises(UsageError, match="checksum mismatch"):
        planfile.load(path, plan.project_id)


def test_organizations_without_changes_are_kept_as_json_only() -> None:
    plan = plan_of_policies((SAME, SAME), (CHANGED, SAME), (SAME, error()))
    assert [e.action for e in plan.entries] == ["no-op", "update", "error"]
    assert [e.detail is None for e in plan.entries] == [True, False, False]
    assert [o.organization_id for o in plan.changes] == ["org-1", "org-2"]
    assert next(iter(plan.organizations)).prior == SAME  # made again from its JSON


def test_live_values_cannot_forge_lines() -> None:
    """A role id holding terminal escapes and a carriage return is printed escaped."""
    out = render_text(plan_of([case_state(PLAN_CASES / "invisible-characters")]))
    assert "\x1b[2K" not in out
    assert "\r" not in out
    assert (
        click.unstyle(out).splitlines()[1]
        == '  - role "admin\\u001b[2K\\r+ role harmless" (delete)'
    )


def plan_of_policies(*pairs: tuple[OrgPolicy, OrgPolicy | OrgError]) -> Plan:
    return plan_of((f"org-{i}", f"orgs/org-{i}.json", d, live) for i, (d, live) in enumerate(pairs))


SAME = OrgPolicy(roles=(role("r", "read"),))
CHANGED = OrgPolicy(roles=(role("r", "read", "approve"),))


@pytest.mark.parametrize(
    ("pairs", "line"),
    [
        ([], "No changes. 0 organizations match their files."),
        ([(SAME, SAME)], "No changes. 1 organization matches its file."),
        ([(SAME, SAME), (SAME, SAME)], "No changes. 2 organizations match their files."),
        (
            [(SAME, SAME), (SAME, error())],
            "No changes. 1 organization matches its file; 1 could not be planned.",
        ),
        (
            [(CHANGED, SAME), (SAME, SAME)],
            "Plan: 0 to add, 1 to change, 0 to destroy, in 1 of 2 organizations.",
        ),
        (
            [(CHANGED, SAME), (SAME, error()), (SAME, error())],
            "Plan: 0 to add, 1 to change, 0 to destroy, in 1 of 3 organizations;"
            " 2 could not be planned.",
        ),
        ([(CHANGED, SAME)], "Plan: 0 to add, 1 to change, 0 to destroy, in 1 of 1 organization."),
    ],
)
def test_summary_line(pairs: list[tuple[OrgPolicy, OrgPolicy | OrgError]], line: str) -> None:
    assert summary_line(plan_of_policies(*pairs)) == line


def test_an_organization_named_by_its_file_is_named_once() -> None:
    plan = plan_of([("acme", "policies/orgs/acme.json", CHANGED, SAME)])
    assert click.unstyle(render_text(plan)).splitlines()[0] == "organization acme"


def test_markdown_without_changes_is_the_summary_line() -> None:
    assert render_markdown(plan_of_policies((SAME, SAME))) == (
        "**No changes. 1 organization matches its file.**"
    )


def many(count: int, live: OrgPolicy | OrgError) -> list[OrgState]:
    desired = OrgPolicy(roles=tuple(role(f"role-{i:02}", "read") for i in range(20)))
    return [(f"org-{n:05}", f"orgs/org-{n:05}.json", desired, live) for n in range(count)]


def test_markdown_of_a_large_plan_stays_under_the_limit_and_says_what_is_left_out() -> None:
    out = render_markdown(plan_of(many(2_000, OrgPolicy(roles=()))))
    assert len(out) < MARKDOWN_LIMIT
    assert out.splitlines()[0] == (
        "**Plan: 40000 to add, 0 to change, 0 to destroy, in 2000 of 2000 organizations.**"
    )
    left = 2_000 - out.count("<details>")
    assert 0 < left < 2_000
    assert out.splitlines()[-1] == (
        f"_{left} more organizations ({left * 20} role changes) left out to stay under "
        "65,000 characters: see the JSON plan (`--format json`) or the job log._"
    )


def test_markdown_lists_errors_before_changes() -> None:
    plan = plan_of([*many(1, OrgPolicy(roles=())), ("zeta", "orgs/zeta.json", SAME, error())])
    out = render_markdown(plan)
    assert out.index("! organization zeta: organization_not_found") < out.index("<details>")


def test_markdown_truncates_errors_too() -> None:
    out = render_markdown(plan_of([*many(3, OrgPolicy(roles=())), *many(5_000, error())[3:]]))
    assert len(out) < MARKDOWN_LIMIT
    assert "<details>" not in out  # the changes come after the errors: all left out
    assert out.splitlines()[-1].endswith(
        "organizations (60 role changes) left out to stay under 65,000 characters: "
        "see the JSON plan (`--format json`) or the job log._"
    )


def widening(count: int) -> list[OrgState]:
    desired = OrgPolicy(roles=(role("finance-admin", "*"), role("clerk", "read")))
    live = OrgPolicy(roles=(role("finance-admin", "read"),))
    return [(f"org-{n:05}", f"orgs/org-{n:05}.json", desired, live) for n in range(count)]


def test_escalations_come_first_in_text_and_markdown() -> None:
    plan = plan_of([*widening(1), ("zeta", "orgs/zeta.json", SAME, error())])
    text = click.unstyle(render_text(plan)).splitlines()
    assert text[:3] == [
        "Escalations: grants that widen access (1)",
        "  ! role finance-admin in org-00000 gains invoices:* (wildcard)",
        "",
    ]
    assert click.style("!", fg="red", bold=True) + " role finance-admin" in render_text(plan)
    markdown = render_markdown(plan).split("\n\n")
    assert markdown[1:3] == [
        "**Escalations: grants that widen access (1)**",
        "```diff\n! role finance-admin in org-00000 gains invoices:* (wildcard)\n```",
    ]
    assert markdown[3].startswith("```diff\n! organization zeta")  # then the errors
    assert "Escalations" not in render_text(plan_of(many(2, OrgPolicy(roles=()))))


def test_markdown_truncates_escalations_to_leave_room_for_the_changes() -> None:
    out = render_markdown(plan_of(widening(2_000)))
    assert len(out) < MARKDOWN_LIMIT
    assert "**Escalations: grants that widen access (2000)**" in out
    shown = out.count("! role finance-admin in org-")
    assert 0 < shown < 2_000
    assert (
        f"_{2_000 - shown} more escalations left out to stay under 65,000 characters: "
        "see the JSON plan (`--format json`)._"
    ) in out
    assert out.count("<details>") > 0  # half of the room is the changes'


def test_a_saved_plan_of_another_format_is_refused(tmp_path: Path) -> None:
    plan, path = all_cases(), tmp_path / "plan.json"
    planfile.save(plan, path)
    document = json.loads(path.read_text(encoding="utf-8"))
    del document["escalations"]
    document["format_version"] = "1"  # as policysync saved plans before escalations
    document["checksum"] = planfile.checksum(document)
    path.write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(UsageError) as refused:
        planfile.load(path, plan.project_id)
    assert str(refused.value) == (
        f'{path}: a plan of format_version "1", made by another version of policysync; '
        "this one applies format_version 4: make a new plan (policysync plan --out) "
        "and review it"
    )


def _deleting(in_use: list[tuple[str, str, str | None]]) -> Plan:
    """A plan deleting role `legacy` from one organization, its holders `in_use` (kind,
    id, detail), summarised as Stytch's are."""
    role = Role(role_id="legacy", permissions=(Permission(resource_id="docs", actions=("read",)),))
    org = plan_org("org-1", "policies/orgs/one.json", OrgPolicy(roles=()), OrgPolicy(roles=(role,)))
    held = RoleHolders(
        role_id="legacy",
        holders=tuple(Holder(kind=k, id=i, detail=d) for k, i, d in in_use),
    )
    org = with_in_use(org, [held], members_in_use)
    return assemble(
        [PlanEntry.of(org)],
        project_id="project-test-x",
        created_at="2025-01-01T00:00:00Z",
        policysync_version="0",
        git_commit=None,
        git_dirty=None,
        rules=file_format("stytch").escalations,
    )


def test_a_deletion_in_use_is_shown_on_its_line_and_listed_first() -> None:
    plan = _deleting(
        [
            ("member", "m-1", "direct_assignment"),
            ("member", "m-2", "email_assignment"),
            ("email_domain", "acme.com", None),
            ("sso_group", "saml-1", "admins"),
        ]
    )
    text = click.unstyle(render_text(plan))
    assert text.startswith(
        "Deletions of roles in use (apply needs --allow-delete-in-use) (1)\n"
        "  - role legacy in one (org-1): held by 2 members; assigned by email domain "
        "acme.com; assigned by SSO group saml-1 admins\n"
    )
    assert (
        "  - role legacy                         (delete) held by 2 members; assigned by "
        "email domain acme.com; assigned by SSO group saml-1 admins" in text
    )
    markdown = render_markdown(plan)
    assert "**Deletions of roles in use (apply needs --allow-delete-in-use) (1)**" in markdown
    document = json.loads(render_json(plan))
    (change,) = document["organizations"][0]["role_changes"]
    assert change["in_use"] == {
        "members": 2,
        "rules": [
            {"kind": "email_domain", "detail": "acme.com"},
            {"kind": "sso_group", "detail": "saml-1 admins"},
        ],
    }
    jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text())).validate(document)


def test_a_deletion_nothing_depends_on_is_not_listed() -> None:
    plan = _deleting([])
    text = click.unstyle(render_text(plan))
    assert "in use" not in text
    assert text.startswith("organization one (org-1)\n  - role legacy")
    (change,) = json.loads(render_json(plan))["organizations"][0]["role_changes"]
    assert change["in_use"] == {"members": 0, "rules": []}
    loaded = PlanDocument.model_validate_json(render_json(plan))  # the union reads it back
    assert loaded.organizations[0].role_changes[0].in_use == plan.changes[0].role_changes[0].in_use
