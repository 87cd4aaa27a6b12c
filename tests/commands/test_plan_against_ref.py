"""`policysync plan --against-ref REF`: HEAD's files against REF's, from git alone,
with no Stytch credentials and no network."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from support.clirun import run
from support.gitkit import add_role, commit_all, edit, git, sample_repo

from policysync.canonical import fingerprint
from policysync.models import OrgPolicyFile, TemplateFile
from policysync.templates import expand, read_template

ROOT = Path(__file__).parent.parent.parent
ORGS = Path("policies/orgs")
PLAN_SCHEMA = json.loads((ROOT / "schemas/plan.schema.json").read_text())


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """No STYTCH_* variable at all, and any attempt to connect anywhere fails the test."""
    for name in [n for n in os.environ if n.startswith("STYTCH_")]:
        monkeypatch.delenv(name)

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("plan --against-ref tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, offline: None) -> str:
    """The sample policies at `base` (returned); then a commit that adds a role to
    globex, removes acme's auditor, changes hooli's reporting role and adds a file."""
    base = sample_repo(tmp_path, monkeypatch)
    edit(ORGS / "globex.json", add_role)
    edit(ORGS / "acme.json", _drop_auditor)
    (ORGS / "cyberdyne.json").write_text(
        json.dumps(
            {
                "organization_id": "cyberdyne",
                "org_policy": {
                    "roles": [
                        {
                            "role_id": "operator",
                            "permissions": [{"resource_id": "reports", "actions": ["read"]}],
                        }
                    ]
                },
            }
        )
    )
    (ORGS / "wayne-enterprises.json").unlink()  # unmanaged from now on: not planned
    commit_all(tmp_path, "policy changes")
    return base


def _drop_auditor(document: Any) -> None:
    roles = document["org_policy"]["roles"]
    roles[:] = [r for r in roles if r["role_id"] != "auditor"]


def test_text_plan_and_exit_codes(repo: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["plan", "--against-ref", repo], capsys)
    assert code == 0, err
    assert "organization globex\n  + role new-role" in out
    assert "- role auditor" in out
    assert "organization cyberdyne\n  + role operator" in out
    assert "wayne" not in out
    assert out.rstrip().endswith(
        "Plan: 2 to add, 0 to change, 1 to destroy, in 3 of 7 organizations."
    )
    assert "note: an offline plan cannot tell who depends on the roles it deletes" in err
    code, _, _ = run(["plan", "--against-ref", repo, "--detailed-exitcode"], capsys)
    assert code == 2
    code, out, err = run(["plan", "--against-ref", "HEAD", "--detailed-exitcode"], capsys)
    assert code == 0
    assert "No changes. 7 organizations match their files." in out
    assert "who depends" not in err  # nothing deleted, nothing to say


def test_json_plan_follows_the_schema(
    repo: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(["plan", "--against-ref", repo, "--format", "json"], capsys)
    assert code == 0
    plan = json.loads(out)
    jsonschema.validate(plan, PLAN_SCHEMA)
    head = git(tmp_path, "rev-parse", "HEAD")
    assert (plan["project_id"], plan["git_commit"], plan["git_dirty"]) == (
        f"git:{repo}",
        head,
        False,
    )
    by_id = {org["organization_id"]: org for org in plan["organizations"]}
    acme_id = "organization-test-07971b06-ac8b-4cdb-9c15-63b17e653931"
    finance = read_template(  # acme's template, as at the base
        "finance.json",
        "finance.json",
        git(tmp_path, "show", f"{repo}:policies/templates/finance.json").encode(),
        lambda data: TemplateFile.model_validate_json(data).roles,
    )
    acme_at_base = expand(
        OrgPolicyFile.model_validate_json(git(tmp_path, "show", f"{repo}:policies/orgs/acme.json")),
        {"finance": finance},
    ).policy
    assert by_id[acme_id]["prior_fingerprint"] == fingerprint(acme_at_base)
    assert by_id[acme_id]["role_changes"][0]["action"] == "delete"
    assert by_id[acme_id]["role_changes"][0]["in_use"] is None  # nobody was asked
    assert by_id["cyberdyne"]["prior"] == {"roles": []}
    assert by_id["cyberdyne"]["file"] == str(ORGS / "cyberdyne.json")
    code, out, _ = run(["plan", "--against-ref", repo, "--format", "markdown"], capsys)
    assert code == 0
    assert out.startswith("**Plan: 2 to add, 0 to change, 1 to destroy")


def test_org_and_shard_limit_the_offline_plan(
    repo: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(["plan", "--against-ref", repo, "--org", "globex"], capsys)
    assert code == 0
    assert "Plan: 1 to add, 0 to change, 0 to destroy, in 1 of 1 organization." in out
    code, _, err = run(["plan", "--against-ref", repo, "--org", "nobody"], capsys)
    assert code == 1
    assert "--org nobody" in err
    # by file name too (offline: live names cannot be looked up)
    code, out, _ = run(["plan", "--against-ref", repo, "--org", "globex.json"], capsys)
    assert code == 0
    assert "in 1 of 1 organization." in out
    code, _, err = run(["plan", "--against-ref", repo, "--org", "globx"], capsys)
    assert code == 1
    assert (
        "--org globx: no file in policies/orgs at HEAD names this organization; "
        "did you mean globex?\n(name an organization by its organization_id as written in "
        "its file, or the file's name)"
    ) in err


def test_uncommitted_changes_are_not_planned_and_make_the_tree_dirty(
    repo: str, capsys: pytest.CaptureFixture[str]
) -> None:
    edit(ORGS / "hooli.json", lambda d: add_role(d, "uncommitted"))
    code, out, err = run(["plan", "--against-ref", repo, "--format", "json"], capsys)
    assert code == 0
    assert "uncommitted" not in out
    assert json.loads(out)["git_dirty"] is True
    assert "uncommitted changes" in err


def test_invalid_files_at_head_stop_the_plan_with_their_own_names(
    repo: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    edit(ORGS / "globex.json", lambda d: add_role(d, "broken", "no-such-action"))
    commit_all(tmp_path, "broken")
    code, out, err = run(["plan", "--against-ref", repo], capsys)
    assert code == 1
    assert out == ""
    assert f"{ORGS / 'globex.json'}:" in err
    assert "error[action-unknown]" in err
    assert "policysync-" not in err  # not the temporary folder


def test_an_unreadable_file_at_ref_is_an_error_for_its_organization(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    offline: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sample_repo(tmp_path, monkeypatch)
    edit(ORGS / "globex.json", lambda d: d["org_policy"].update(roles="not a list"))
    base = commit_all(tmp_path, "broken globex")
    git(tmp_path, "checkout", "-q", "HEAD~1", "--", "policies")
    commit_all(tmp_path, "fixed globex")
    code, out, _ = run(["plan", "--against-ref", base], capsys)
    assert code == 1
    assert "! organization globex: unknown_at_ref: at" in out


def test_bad_ref_and_out_are_refused_cleanly(
    repo: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(["plan", "--against-ref", "v99-missing"], capsys)
    assert (code, out) == (1, "")
    assert "'v99-missing' names no commit" in err
    assert "Traceback" not in err
    code, _, err = run(["plan", "--against-ref", repo, "--out", str(tmp_path / "p.json")], capsys)
    assert code == 1
    assert "never applied" in err
    assert not (tmp_path / "p.json").exists()


def test_policies_missing_at_ref_plans_every_role_as_new(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    offline: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sample_repo(tmp_path, monkeypatch)
    git(tmp_path, "rm", "-rq", "policies")
    base = commit_all(tmp_path, "no policies yet")
    git(tmp_path, "checkout", "-q", "HEAD~1", "--", "policies")
    commit_all(tmp_path, "policies back")
    code, out, _ = run(["plan", "--against-ref", base, "--detailed-exitcode"], capsys)
    assert code == 2
    assert "in 6 of 7 organizations." in out  # hooli.json has no roles


def test_house_rules_stop_the_plan_as_they_fail_validate(
    repo: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "house").mkdir()
    rule = {
        "title": "no operators",
        "properties": {
            "org_policy": {
                "properties": {
                    "roles": {"items": {"properties": {"role_id": {"not": {"const": "operator"}}}}}
                }
            }
        },
    }
    (tmp_path / "house" / "no-operators.json").write_text(json.dumps(rule))
    (tmp_path / "policysync.toml").write_text('house_rules = ["house/*.json"]\n')
    code, out, err = run(["plan", "--against-ref", repo], capsys)
    assert (code, out) == (1, "")
    assert (
        f"{ORGS / 'cyberdyne.json'}:1:71: error[house-rule] no operators: 'operator' should not "
        "be valid under {'const': 'operator'} (at /org_policy/roles/0/role_id)" in err
    )
    (tmp_path / "policysync.toml").write_text('house_rules = ["elsewhere/*.json"]\n')
    code, out, err = run(["plan", "--against-ref", repo], capsys)
    assert (code, out) == (1, "")
    assert "policysync.toml:1:1: error[house-rule-invalid] house_rules:" in err


def test_escalations_in_every_format(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Grants that widen access are listed first, and under `escalations` in JSON: a
    wildcard, an action on a Stytch resource, a `sensitive` grant of the settings."""
    base = sample_repo(tmp_path, monkeypatch)
    Path("policysync.toml").write_text('sensitive = ["invoices:void"]\n')

    def widen(document: Any) -> None:
        add_role(document, "voider", "void")
        add_role(document, "reader", "read")
        document["org_policy"]["roles"][-1]["permissions"].append(
            {"resource_id": "stytch.member", "actions": ["search"]}
        )
        add_role(document, "boss", "*")

    edit(ORGS / "globex.json", widen)
    commit_all(tmp_path, "widen globex")
    code, out, err = run(["plan", "--against-ref", base, "--format", "json"], capsys)
    assert code == 0, err
    document = json.loads(out)
    jsonschema.Draft202012Validator(PLAN_SCHEMA).validate(document)
    assert document["format_version"] == "4"
    organization_id = OrgPolicyFile.model_validate_json(
        (ORGS / "globex.json").read_bytes()
    ).organization_id
    assert document["escalations"] == [
        {
            "organization_id": organization_id,
            "role_id": role_id,
            "resource_id": resource_id,
            "action": action,
            "reason": reason,
        }
        for role_id, resource_id, action, reason in [
            ("boss", "invoices", "*", "wildcard"),
            ("reader", "stytch.member", "search", "stytch-resource"),
            ("voider", "invoices", "void", "sensitive"),
        ]
    ]
    code, out, _ = run(["plan", "--against-ref", base, "--detailed-exitcode"], capsys)
    assert code == 2  # escalations change no exit code
    assert out.startswith("Escalations: grants that widen access (3)\n  ! role boss in globex")
    assert "  ! role voider in globex" in out
    assert "gains invoices:void (sensitive)\n" in out
    code, out, _ = run(["plan", "--against-ref", base, "--format", "markdown"], capsys)
    assert out.split("\n\n")[1] == "**Escalations: grants that widen access (3)**"

    Path("policysync.toml").write_text("")  # without the setting, void is no escalation
    code, out, _ = run(["plan", "--against-ref", base, "--format", "json"], capsys)
    assert [e["reason"] for e in json.loads(out)["escalations"]] == [
        "wildcard",
        "stytch-resource",
    ]
