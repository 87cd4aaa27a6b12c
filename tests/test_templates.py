"""Templates: roles shared by organizations, written once in `policies/templates/`;
validated like organization files, expanded before planning, named as each role
change's source, kept by export."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.clirun import run
from support.gitkit import commit_all, git

from policysync.commands.plan import Options, plan_against_ref
from policysync.config import Settings
from policysync.export import Target, org_file, template_remainder
from policysync.models import OrgPolicy, OrgPolicyFile, Permission, Role
from policysync.templates import Template, TemplateError, expand

ROOT = Path(__file__).parent.parent


def write(path: Path, data: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data if isinstance(data, str) else json.dumps(data, indent=2) + "\n")
    return path


def role(role_id: str, resource: str = "invoices", *actions: str) -> dict[str, Any]:
    return {
        "role_id": role_id,
        "description": f"the {role_id}",
        "permissions": [{"resource_id": resource, "actions": list(actions or ("read",))}],
    }


def org(org_id: str, templates: list[str], *roles: dict[str, Any]) -> dict[str, Any]:
    return {"organization_id": org_id, "templates": templates, "org_policy": {"roles": list(roles)}}


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A policies folder with the sample project, a template `finance` and two
    organizations using it; the working directory is its parent."""
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "policies"
    root.mkdir()
    shutil.copy(ROOT / "policies" / "project.json", root / "project.json")
    write(root / "templates" / "finance.json", {"roles": [role("approver", "invoices", "approve")]})
    write(root / "orgs" / "acme.json", org("acme", ["finance"], role("auditor")))
    write(root / "orgs" / "globex.json", org("globex", ["finance"]))
    return root


def diagnostics(capsys: pytest.CaptureFixture[str], *args: str) -> list[dict[str, Any]]:
    code, out, err = run(["validate", "--format", "json", *args], capsys)
    report = json.loads(out)
    assert code == (0 if report["valid"] else 1), err
    found: list[dict[str, Any]] = report["diagnostics"]
    return found


def test_a_tree_using_templates_is_valid(tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["validate"], capsys)
    assert code == 0, out
    assert diagnostics(capsys) == []


def test_an_unknown_template_is_located_with_a_suggestion(
    tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tree / "orgs" / "globex.json", org("globex", ["finanse"]))
    (found,) = diagnostics(capsys)
    assert found["code"] == "template-unknown"
    assert found["file"] == str(Path("policies/orgs/globex.json"))
    assert (found["line"], found["column"]) == (4, 5)
    assert 'did you mean "finance"' in found["message"]
    assert "create templates/finanse.json" in found["message"]


def test_a_role_in_a_template_and_the_file_names_both(
    tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tree / "orgs" / "acme.json", org("acme", ["finance"], role("approver")))
    (found,) = diagnostics(capsys)
    assert found["code"] == "template-role-conflict"
    assert found["file"] == str(Path("policies/orgs/acme.json"))
    assert found["pointer"] == "/org_policy/roles/0/role_id"
    assert str(Path("policies/templates/finance.json")) in found["message"]


def test_a_role_in_two_templates_names_both_files(
    tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tree / "templates" / "payables.json", {"roles": [role("approver", "reports", "read")]})
    write(tree / "orgs" / "globex.json", org("globex", ["finance", "payables"]))
    (found,) = diagnostics(capsys)
    assert found["code"] == "template-role-conflict"
    assert found["pointer"] == "/templates/1"
    message = found["message"]
    assert str(Path("policies/templates/finance.json")) in message
    assert str(Path("policies/templates/payables.json")) in message


def test_a_template_is_checked_by_the_rules_in_its_own_file(
    tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = {"roles": [role("approver", "invoicez", "approve"), role("stytch_x")]}
    write(tree / "templates" / "finance.json", bad)
    found = {(d["code"], d["pointer"]) for d in diagnostics(capsys)}
    assert found == {
        ("resource-unknown", "/roles/0/permissions/0/resource_id"),
        ("role-reserved-prefix", "/roles/1/role_id"),
    }
    assert all(d["file"].endswith("finance.json") for d in diagnostics(capsys))


def test_a_template_that_is_not_a_template_is_a_schema_error(
    tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tree / "templates" / "finance.json", {"org_policy": {"roles": []}})
    codes = {d["code"] for d in diagnostics(capsys)}
    assert codes == {"schema-missing-field", "schema-unknown-field"}


def test_repeated_templates_and_too_many_roles(
    tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tree.parent / "policysync.toml", "[limits]\nmax_roles_per_org = 1\n")
    write(tree / "orgs" / "globex.json", org("globex", ["finance", "finance"]))
    found = {(d["file"], d["code"], d["pointer"]) for d in diagnostics(capsys)}
    acme = str(Path("policies/orgs/acme.json"))
    globex = str(Path("policies/orgs/globex.json"))
    assert found == {
        (globex, "template-repeated", "/templates/1"),
        (acme, "too-many-roles", "/templates"),
    }


def test_entries_of_the_templates_folder_that_are_not_read_are_reported(
    tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tree / "templates" / "notes.txt", "not a template")
    (tree / "templates" / "nested").mkdir()
    codes = sorted((Path(d["file"]).name, d["code"]) for d in diagnostics(capsys))
    assert codes == [("nested", "file-ignored"), ("notes.txt", "file-ignored")]


def test_validating_one_file_reports_its_templates_problems_too(
    tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tree / "templates" / "finance.json", {"roles": [role("approver", "invoicez")]})
    found = diagnostics(capsys, "policies/orgs/globex.json")
    assert [d["code"] for d in found] == ["resource-unknown"]
    found = diagnostics(capsys, "policies/templates/finance.json")
    assert [d["code"] for d in found] == ["resource-unknown"]


def test_house_rules_apply_to_templates(tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rule = {
        "title": "kebab-case role ids",
        "properties": {"roles": {"items": {"properties": {"role_id": {"pattern": "^[a-z-]+$"}}}}},
    }
    write(tree.parent / "house" / "rule.json", rule)
    write(tree.parent / "policysync.toml", 'house_rules = ["house/*.json"]\n')
    write(tree / "templates" / "finance.json", {"roles": [role("Approver_1")]})
    (found,) = diagnostics(capsys)
    assert found["code"] == "house-rule"
    assert found["file"] == str(Path("policies/templates/finance.json"))
    assert "kebab-case role ids" in found["message"]


# --- expansion ------------------------------------------------------------------


def _role(role_id: str, *actions: str) -> Role:
    return Role(
        role_id=role_id,
        description="",
        permissions=(Permission(resource_id="invoices", actions=actions or ("read",)),),
    )


FINANCE = Template("finance", "policies/templates/finance.json", (_role("approver"),))


def test_expand_puts_template_roles_first_and_names_their_source() -> None:
    document = OrgPolicyFile(
        organization_id="acme", templates=("finance",), org_policy=OrgPolicy(roles=(_role("own"),))
    )
    expanded = expand(document, {"finance": FINANCE})
    assert [r.role_id for r in expanded.policy.roles] == ["approver", "own"]
    assert expanded.sources == {"approver": "finance"}


@pytest.mark.parametrize(
    ("templates", "own", "match"),
    [
        (("nope",), (), "does not exist"),
        (("broken",), (), "is not valid"),
        (("finance",), ("approver",), "template finance and the file"),
        (("finance", "copy"), (), "templates finance and copy"),
    ],
)
def test_expand_refuses_what_validate_reports(
    templates: tuple[str, ...], own: tuple[str, ...], match: str
) -> None:
    table = {
        "finance": FINANCE,
        "copy": FINANCE._replace(name="copy"),
        "broken": Template("broken", "b.json", None),
    }
    document = OrgPolicyFile(
        organization_id="acme",
        templates=templates,
        org_policy=OrgPolicy(roles=tuple(_role(r) for r in own)),
    )
    with pytest.raises(TemplateError, match=match):
        expand(document, table)


# --- plans ------------------------------------------------------------------------


@pytest.fixture
def repo(tree: Path) -> str:
    """`tree` committed (the base), then the template changed and a third organization
    using it added."""
    git(tree.parent, "init", "-q", "-b", "main")
    base = commit_all(tree.parent, "base")
    write(tree / "templates" / "finance.json", {"roles": [role("approver", "invoices", "void")]})
    write(tree / "orgs" / "initech.json", org("initech", ["finance"], role("clerk")))
    commit_all(tree.parent, "template change")
    return base


def test_a_template_change_is_planned_across_organizations(
    repo: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(["plan", "--against-ref", repo], capsys)
    assert code == 0, err
    assert out.startswith(
        "Templates: changes across organizations\n"
        "  template finance: + role approver (create) in 1 organization\n"
        "  template finance: ~ role approver (update) in 2 organizations\n"
    )
    assert "~ role approver                       (update, template finance)" in out
    assert "+ role clerk                          (create)\n" in out
    code, out, err = run(["plan", "--against-ref", repo, "--format", "markdown"], capsys)
    assert code == 0, err
    assert "**Templates: changes across organizations**" in out
    assert "template finance: ~ role approver (update) in 2 organizations" in out


def test_the_json_plan_names_each_role_change_s_source(
    repo: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(["plan", "--against-ref", repo, "--format", "json"], capsys)
    assert code == 0, err
    plan = json.loads(out)
    assert plan["format_version"] == "4"
    changes = {
        (org["organization_id"], c["role_id"]): (c["action"], c["source"], c["template"])
        for org in plan["organizations"]
        for c in org["role_changes"]
    }
    finance = str(Path("policies/templates/finance.json"))
    assert changes == {
        ("acme", "approver"): ("update", finance, "finance"),
        ("globex", "approver"): ("update", finance, "finance"),
        ("initech", "approver"): ("create", finance, "finance"),
        ("initech", "clerk"): ("create", str(Path("policies/orgs/initech.json")), None),
    }


def test_a_template_missing_at_the_ref_leaves_its_organizations_unknown(
    repo: str, tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tree / "templates" / "finance.json").unlink()
    write(tree / "templates" / "other.json", {"roles": [role("approver")]})
    for name in ("acme", "globex", "initech"):
        path = tree / "orgs" / f"{name}.json"
        path.write_text(path.read_text().replace('"finance"', '"other"'))
    head = commit_all(tree.parent, "renamed")
    git(tree.parent, "checkout", "-q", repo)
    write(tree / "templates" / "finance.json", "{ broken")
    commit_all(tree.parent, "broken template")
    broken = git(tree.parent, "rev-parse", "HEAD")
    git(tree.parent, "checkout", "-q", head)
    code, out, err = run(["plan", "--against-ref", broken, "--format", "json"], capsys)
    assert code == 1, err
    errors = {o["organization_id"]: o["error"] for o in json.loads(out)["organizations"]}
    assert set(errors) >= {"acme", "globex"}
    assert all("templates there are not" in errors[k]["message"] for k in ("acme", "globex"))


# Property: a tree and its template-expanded equivalent plan identically.

ROLE_IDS = st.sampled_from(["a", "b", "c", "d", "e", "f"])
ACTIONS = st.sets(st.sampled_from(["read", "approve", "void", "create"]), min_size=1)


@st.composite
def layouts(draw: st.DrawFn) -> tuple[dict[str, list[str]], dict[str, list[str]], list[str]]:
    """Templates (name -> role ids) and organizations (name -> own role ids) with the
    templates each uses, no role given twice."""
    ids = draw(st.lists(ROLE_IDS, unique=True, max_size=6))
    cut = draw(st.integers(0, len(ids)))
    templates = {"t1": ids[: cut // 2], "t2": ids[cut // 2 : cut]}
    own = ids[cut:]
    used = draw(st.lists(st.sampled_from(["t1", "t2"]), unique=True))
    return templates, {"acme": own}, used


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(layout=layouts(), actions=st.dictionaries(ROLE_IDS, ACTIONS), data=st.data())
def test_a_tree_and_its_expanded_equivalent_plan_identically(
    tmp_path_factory: pytest.TempPathFactory,
    layout: tuple[dict[str, list[str]], dict[str, list[str]], list[str]],
    actions: dict[str, set[str]],
    data: st.DataObject,
) -> None:
    templates, orgs, used = layout

    def roles(ids: list[str]) -> list[dict[str, Any]]:
        return [role(i, "invoices", *sorted(actions.get(i, {"read"}))) for i in ids]

    plans = []
    live = data.draw(st.lists(ROLE_IDS, unique=True, max_size=4))
    for expanded in (False, True):
        base = tmp_path_factory.mktemp("tree")
        root = base / "policies"
        shutil.copytree(ROOT / "policies", root, ignore=shutil.ignore_patterns("orgs"))
        write(root / "orgs" / "acme.json", org("acme", [], *roles(live)))
        git(base, "init", "-q", "-b", "main")
        ref = commit_all(base, "live")
        for name, ids in templates.items():
            write(root / "templates" / f"{name}.json", {"roles": roles(ids)})
        if expanded:
            given_roles = [r for name in used for r in templates[name]] + orgs["acme"]
            write(root / "orgs" / "acme.json", org("acme", [], *roles(given_roles)))
        else:
            write(root / "orgs" / "acme.json", org("acme", used, *roles(orgs["acme"])))
        commit_all(base, "desired")
        plans.append(_plan(base, ref))
    assert plans[0] == plans[1]


def _plan(base: Path, ref: str) -> list[Any]:
    cwd = os.getcwd()
    os.chdir(base)
    try:
        planned = plan_against_ref(Settings(), ref, Options())
    finally:
        os.chdir(cwd)
    assert planned.plan is not None, planned.report
    return [
        (
            o.organization_id,
            o.action,
            o.desired,
            o.prior_fingerprint,
            [(c.role_id, c.action, c.before, c.after) for c in o.role_changes],
        )
        for o in planned.plan.organizations
    ]


# --- export -----------------------------------------------------------------------


def test_export_keeps_a_template_live_has_and_writes_the_rest() -> None:
    target = Target("acme", "acme.json", None, ("finance",))
    live = OrgPolicy(roles=(_role("approver"), _role("own")))
    kept, rest, notes = template_remainder(target, live, {"finance": FINANCE})
    assert kept.templates == ("finance",)
    assert [r.role_id for r in rest.roles] == ["own"]
    assert notes == []
    written = json.loads(org_file(kept, rest))
    assert list(written) == ["organization_id", "templates", "org_policy"]
    assert written["templates"] == ["finance"]


def test_export_drops_a_template_live_departs_from_and_says_so() -> None:
    target = Target("acme", "acme.json", None, ("finance", "gone"))
    live = OrgPolicy(roles=(_role("approver", "void"), _role("own")))
    kept, rest, notes = template_remainder(target, live, {"finance": FINANCE})
    assert kept.templates == ()
    assert [r.role_id for r in rest.roles] == ["approver", "own"]
    assert len(notes) == 2
    assert "live departs from template finance (role approver)" in notes[0]
    assert "template gone does not exist" in notes[1]


# --- ZenML Pro ----------------------------------------------------------------------


def zenml_role(name: str, action: str = "read") -> dict[str, Any]:
    return {
        "name": name,
        "level": "workspace",
        "description": name,
        "permissions": [{"resource": "pipeline_run", "action": action}],
    }


@pytest.fixture
def zenml_tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "policysync.toml", 'provider = "zenml"\n')
    root = tmp_path / "policies"
    write(root / "templates" / "reviewers.json", {"roles": [zenml_role("Run Reviewers")]})
    for name in ("acme", "globex"):
        own = [zenml_role(f"{name} Operators")]
        write(
            root / "orgs" / f"{name}.json",
            {"organization_id": name, "templates": ["reviewers"], "roles": own},
        )
    return root


def test_zenml_templates_are_validated_with_zenml_s_rules(
    zenml_tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert diagnostics(capsys) == []
    write(
        zenml_tree / "templates" / "reviewers.json", {"roles": [zenml_role("Run Reviewers", "fly")]}
    )
    write(
        zenml_tree / "orgs" / "globex.json",
        {
            "organization_id": "globex",
            "templates": ["reviewers"],
            "roles": [zenml_role("Run Reviewers")],
        },
    )
    found = {(Path(d["file"]).name, d["code"], d["pointer"]) for d in diagnostics(capsys)}
    assert found == {
        ("reviewers.json", "zenml-action-unknown", "/roles/0/permissions/0/action"),
        ("globex.json", "template-role-conflict", "/roles/0/name"),
    }
    conflict = next(d for d in diagnostics(capsys) if d["code"] == "template-role-conflict")
    assert "'Run Reviewers' at level 'workspace'" in conflict["message"]


def test_a_zenml_template_change_is_planned_with_its_source(
    zenml_tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    git(zenml_tree.parent, "init", "-q", "-b", "main")
    base = commit_all(zenml_tree.parent, "base")
    write(
        zenml_tree / "templates" / "reviewers.json",
        {"roles": [zenml_role("Run Reviewers", "update")]},
    )
    commit_all(zenml_tree.parent, "template change")
    code, out, err = run(["plan", "--against-ref", base], capsys)
    assert code == 0, err
    assert "template reviewers: ~ role workspace:Run Reviewers (update) in 2 organizations" in out
    code, out, err = run(["plan", "--against-ref", base, "--format", "json"], capsys)
    sources = {c["source"] for o in json.loads(out)["organizations"] for c in o["role_changes"]}
    assert sources == {str(Path("policies/templates/reviewers.json"))}


def test_fmt_puts_templates_of_both_providers_in_the_canonical_form(
    zenml_tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    template = zenml_tree / "templates" / "reviewers.json"
    roles = [zenml_role("Zeta"), zenml_role("Alpha", "update")]
    write(template, json.dumps({"roles": roles, "description": "shared", "$schema": "x"}))
    code, out, _ = run(["fmt", "--check"], capsys)
    assert (code, out) == (1, f"{Path('policies/templates/reviewers.json')}\n")
    assert run(["fmt"], capsys)[0] == 0
    document = json.loads(template.read_text())
    assert list(document) == ["$schema", "description", "roles"]
    assert [r["name"] for r in document["roles"]] == ["Alpha", "Zeta"]
    assert run(["fmt", "--check"], capsys)[0] == 0


def test_an_unknown_template_name_that_no_file_can_have_is_not_offered_as_a_file(
    tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tree / "orgs" / "globex.json", org("globex", ["../orgs/acme", "\u001b[2Jx\ny"]))
    found = diagnostics(capsys)
    assert [d["code"] for d in found] == ["template-unknown", "template-unknown"]
    assert all("create" not in d["message"] for d in found)
    code, out, _ = run(["validate"], capsys)
    assert code == 1
    assert "\u001b" not in out  # shown escaped
    assert "x\ny" not in out
