"""Every live command with `provider = "zenml"`, end to end: the CLI in-process against
the ZenML Pro emulator on loopback, seeded with examples/zenml/emulator-seed.json (plus
one organization no file manages), on a copy of the sample tree examples/zenml/. Every
live state is read back with raw HTTP requests, never through policysync's client."""

from __future__ import annotations

import json
import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from support.clirun import run
from support.gitkit import IDENTITY, commit_all, edit, git

from policysync.emulator.server import EmulatorThread
from policysync.emulator.zenml_app import DEFAULT_API_KEY, build
from policysync.emulator.zenml_store import ZenmlSeed, ZenmlStore
from policysync.journal import list_runs, load_run
from policysync.models import Holder, RoleHolders, RoleOperation

ROOT = Path(__file__).parent.parent.parent
SAMPLE = ROOT / "examples" / "zenml"
PLAN_SCHEMA = json.loads((ROOT / "schemas" / "plan.schema.json").read_text())
JOURNAL = Path(".policysync/journal")
ORGS = Path("policies/orgs")

ACME = "9a1b2c3d-0000-4000-8000-000000000001"
INITECH = "9a1b2c3d-0000-4000-8000-000000000003"
HOOLI = "9a1b2c3d-0000-4000-8000-000000000004"
REVIEWERS = "3f2c0000-0000-4000-8000-000000000101"  # acme's role the plan deletes
ALICE = "00000000-0000-4000-8000-0000000000a1"
WORKSPACE = "00000000-0000-4000-8000-0000000000f1"

# An organization with a custom role and no file: what `--all-orgs` finds.
UNMANAGED = {
    "id": HOOLI,
    "name": "hooli",
    "roles": [
        {
            "name": "Stack Auditors",
            "level": "workspace",
            "description": "Look at stacks",
            "permissions": [{"resource": "stack", "action": "read"}],
        }
    ],
}

Key = tuple[str, str]  # (level, name)
Roles = dict[Key, tuple[str, frozenset[tuple[str, str]]]]


def roles_of(roles: list[dict[str, Any]]) -> Roles:
    """Roles as ZenML keys them, permissions as a set of (resource, action)."""
    return {
        (r["level"], r["name"]): (
            r.get("description") or "",
            frozenset((p["resource"], p["action"]) for p in r.get("permissions") or []),
        )
        for r in roles
    }


def seed_document() -> dict[str, Any]:
    document: dict[str, Any] = json.loads((SAMPLE / "emulator-seed.json").read_text())
    document["organizations"].append(UNMANAGED)
    return document


def seeded(org: str) -> Roles:
    """An organization's custom roles as seeded, by its name."""
    (found,) = [o for o in seed_document()["organizations"] if o["name"] == org]
    return roles_of(found["roles"])


def desired(org: str) -> Roles:
    """An organization's roles as the sample's file of that name says."""
    return roles_of(json.loads((SAMPLE / ORGS / f"{org}.json").read_text())["roles"])


class Zenml:
    """The emulator's live state, read and changed with raw HTTP, logged in as a user
    of the API would be."""

    def __init__(self, url: str) -> None:
        token = httpx.post(url + "auth/login", data={"password": DEFAULT_API_KEY}, timeout=10)
        assert token.status_code == 200, token.text
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        self.url = url
        self.http = httpx.Client(base_url=url, headers=headers, timeout=10)

    def org_id(self, name: str) -> str:
        answer = self.http.get(f"organizations/{name}")
        assert answer.status_code == 200, answer.text
        value: str = answer.json()["id"]
        return value

    def listed(self, org: str) -> list[dict[str, Any]]:
        """The custom roles of the organization named `org`, each with its permissions
        (which the list leaves out: GET /roles/{id} carries them)."""
        path = f"organizations/{self.org_id(org)}/roles"
        answer = self.http.get(path, params={"system_managed": "false", "limit": 100})
        assert answer.status_code == 200, answer.text
        return [self.http.get(f"roles/{r['id']}").json() for r in answer.json()]

    def roles(self, org: str) -> Roles:
        return roles_of(self.listed(org))

    def role_id(self, org: str, level: str, name: str) -> str:
        (found,) = [r["id"] for r in self.listed(org) if (r["level"], r["name"]) == (level, name)]
        value: str = found
        return value

    def assignments(self, role_id: str) -> list[dict[str, Any]]:
        answer = self.http.get(f"roles/{role_id}/assignments")
        assert answer.status_code == 200, answer.text
        found: list[dict[str, Any]] = answer.json()
        return found

    def patch(self, role_id: str, body: dict[str, Any]) -> None:
        answer = self.http.patch(f"roles/{role_id}", json=body)
        assert answer.status_code == 200, answer.text

    def untouched(self) -> None:
        """Every organization as seeded, Alice still holding the role a plan deletes."""
        for org in ("acme", "globex", "initech", "hooli"):
            assert self.roles(org) == seeded(org), org
        assert self.role_id("acme", "workspace", "Pipeline Reviewers") == REVIEWERS
        assert [a["user"] for a in self.assignments(REVIEWERS)] == [ALICE]


def start(seed: dict[str, Any]) -> EmulatorThread:
    store = ZenmlStore()
    store.load(ZenmlSeed.model_validate(seed))
    return EmulatorThread(build(store, DEFAULT_API_KEY))


@pytest.fixture
def emulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[EmulatorThread]:
    with start(seed_document()) as running:
        monkeypatch.setenv("ZENML_PRO_API_KEY", DEFAULT_API_KEY)
        monkeypatch.setenv("ZENML_PRO_API_URL", running.url)
        yield running


@pytest.fixture
def live(emulator: EmulatorThread) -> Iterator[Zenml]:
    zenml = Zenml(emulator.url)
    yield zenml
    zenml.http.close()


@pytest.fixture
def sample(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of examples/zenml/ (settings, policies), as the current folder."""
    shutil.copytree(SAMPLE, tmp_path / "zenml")
    monkeypatch.chdir(tmp_path / "zenml")
    return tmp_path / "zenml"


def applied_run(capsys: pytest.CaptureFixture[str]) -> str:
    """The sample applied from a saved plan; the run's id."""
    assert run(["plan", "--out", "plan.json"], capsys)[0] == 0
    code, out, err = run(
        ["apply", "plan.json", "--allow-delete", "--allow-delete-in-use", "--allow-delete-in-use"],
        capsys,
    )
    assert code == 0, out + err
    (run_id,) = list_runs(JOURNAL)
    return run_id


def assert_applied(live: Zenml) -> None:
    for org in ("acme", "globex", "initech"):
        assert live.roles(org) == desired(org), org
    assert live.roles("hooli") == seeded("hooli")  # no file: never written


# validate and plan --------------------------------------------------------------------


def test_the_sample_validates(sample: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["validate"], capsys)
    assert code == 0, out + err
    assert "4 files valid (3 organizations)." in out


def test_plan_as_text_markdown_and_json(
    sample: Path, live: Zenml, capsys: pytest.CaptureFixture[str]
) -> None:
    code, text, err = run(["plan"], capsys)
    assert code == 0, err
    assert f"organization acme ({ACME})\n  ~ role project:Model Promoters" in text
    assert "      + model: read\n      ~ model_version: + read\n" in text
    assert "  - role workspace:Pipeline Reviewers   (delete)" in text
    assert "organization globex\n  + role workspace:Stack Operators      (create)" in text
    assert "initech" not in text
    assert "hooli" not in text
    assert text.rstrip().endswith(
        "Plan: 1 to add, 1 to change, 1 to destroy, in 2 of 3 organizations."
    )

    code, markdown, _ = run(["plan", "--format", "markdown"], capsys)
    assert code == 0
    assert markdown.startswith(
        "**Plan: 1 to add, 1 to change, 1 to destroy, in 2 of 3 organizations.**"
    )
    assert f"<summary>acme ({ACME}): 0 to add, 1 to change, 1 to destroy</summary>" in markdown
    assert "- role workspace:Pipeline Reviewers   (delete)" in markdown
    assert "<summary>globex: 1 to add, 0 to change, 0 to destroy</summary>" in markdown

    code, out, _ = run(["plan", "--format", "json"], capsys)
    assert code == 0
    document = json.loads(out)
    jsonschema.Draft202012Validator(PLAN_SCHEMA).validate(document)
    assert document["project_id"] == live.url.rstrip("/")
    summary = document["summary"]
    assert (summary["add"], summary["change"], summary["destroy"]) == (1, 1, 1)
    assert (summary["changed"], summary["organizations"], summary["failed"]) == (2, 3, 0)
    changes = {
        o["organization_id"]: sorted((c["action"], c["role_id"]) for c in o["role_changes"])
        for o in document["organizations"]
        if o["role_changes"]
    }
    assert changes == {
        ACME: [("delete", "workspace:Pipeline Reviewers"), ("update", "project:Model Promoters")],
        "globex": [("create", "workspace:Stack Operators")],
    }
    in_use = {
        c["role_id"]: c["in_use"] for o in document["organizations"] for c in o["role_changes"]
    }
    assert in_use == {
        "workspace:Pipeline Reviewers": {"assignments": 1},  # held by a user
        "project:Model Promoters": None,
        "workspace:Stack Operators": None,
    }
    assert "  - role workspace:Pipeline Reviewers   (delete) assigned 1 time\n" in text
    code, _, _ = run(["plan", "--detailed-exitcode"], capsys)
    assert code == 2
    live.untouched()  # planning wrote nothing


def test_from_the_orgs_folder_an_organization_named_another_way(
    sample: Path, live: Zenml, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # the settings (provider = "zenml") are found above; their paths are relative to them
    monkeypatch.chdir(sample / "policies" / "orgs")
    code, out, err = run(["validate", "."], capsys)
    assert (code, out.strip()) == (0, "4 files valid (3 organizations)."), err
    # globex.json names its organization by name: its id finds it, through the listing
    globex = "9a1b2c3d-0000-4000-8000-000000000002"
    code, out, err = run(["plan", "--org", globex], capsys)
    assert code == 0, err
    assert "organization globex\n  + role workspace:Stack Operators" in out
    assert out.rstrip().endswith("in 1 of 1 organization.")
    # acme.json names its organization by id: its name finds it (its file's name, here)
    code, out, err = run(["plan", "--org", "acme"], capsys)
    assert code == 0, err
    assert out.rstrip().endswith("in 1 of 1 organization.")
    # hooli exists live, but no file names it
    code, out, err = run(["plan", "--org", "hooli"], capsys)
    assert (code, out) == (1, "")
    assert "--org hooli: no file in ../../policies/orgs names this organization\n" in err
    live.untouched()


# apply --------------------------------------------------------------------------------


def test_a_saved_plan_is_refused_without_allow_delete_then_applied_with_it(
    sample: Path, live: Zenml, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["plan", "--out", "plan.json"], capsys)[0] == 0
    code, out, err = run(["apply", "plan.json"], capsys)
    assert code == 1
    assert "error: the plan deletes 1 role; nothing was written:" in err
    assert f"  - role workspace:Pipeline Reviewers in {ACME}" in err
    assert "--allow-delete" in err
    assert "Traceback" not in out + err
    assert not JOURNAL.exists()
    live.untouched()

    # the role is assigned to a user: deleting it needs --allow-delete-in-use too
    code, out, err = run(["apply", "plan.json", "--allow-delete"], capsys)
    assert code == 1
    assert "error: the plan deletes 1 role in use; nothing was written:" in err
    assert f"  - role workspace:Pipeline Reviewers in {ACME}: assigned 1 time" in err
    assert not JOURNAL.exists()
    live.untouched()

    code, applied, err = run(
        ["apply", "plan.json", "--allow-delete", "--allow-delete-in-use", "--allow-delete-in-use"],
        capsys,
    )
    assert code == 0, applied + err
    assert "Apply: 2 applied, 1 unchanged, 0 stale, 0 failed, of 3 organizations." in applied
    assert_applied(live)
    code, out, _ = run(["plan", "--detailed-exitcode"], capsys)
    assert code == 0
    assert out.startswith("No changes. 3 organizations match their files.")

    (run_id,) = list_runs(JOURNAL)
    assert f"Undo with: policysync rollback {run_id}" in applied
    summary, entries = load_run(JOURNAL, run_id)
    assert summary.project_id == live.url.rstrip("/")
    assert summary.counts is not None
    assert summary.counts.applied == 2
    (acme,) = [e for e in entries if e.organization_id == ACME]
    assert acme.state == "applied"
    assert acme.holders == (
        RoleHolders(
            role_id="workspace:Pipeline Reviewers",
            holders=(Holder(kind="user", id=ALICE, workspace_id=WORKSPACE, project_id=None),),
        ),
    )
    assert acme.operations == (
        RoleOperation(action="update", role_id="project:Model Promoters", detail=""),
        RoleOperation(action="delete", role_id="workspace:Pipeline Reviewers", detail=""),
    )
    (globex,) = [e for e in entries if e.organization_id == "globex"]
    assert [(o.action, o.role_id) for o in globex.operations] == [
        ("create", "workspace:Stack Operators")
    ]
    new_id = live.role_id("globex", "workspace", "Stack Operators")
    assert globex.operations[0].detail == new_id  # the created role's id
    text = "".join(p.read_text() for p in Path(".policysync").rglob("*") if p.is_file())
    assert DEFAULT_API_KEY not in text


def test_a_role_changed_live_after_the_plan_makes_its_organization_stale(
    sample: Path, live: Zenml, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["plan", "--out", "plan.json"], capsys)[0] == 0
    promoters = live.role_id("acme", "project", "Model Promoters")
    live.patch(promoters, {"description": "changed outside policysync"})
    code, out, _ = run(["apply", "plan.json", "--allow-delete", "--allow-delete-in-use"], capsys)
    assert code == 1
    assert f"stale    {ACME}: stale: live changed since the plan was made" in out
    assert "Apply: 1 applied, 1 unchanged, 1 stale, 0 failed, of 3 organizations." in out
    acme = seeded("acme")
    key = ("project", "Model Promoters")
    acme[key] = ("changed outside policysync", acme[key][1])
    assert live.roles("acme") == acme  # left as it was changed, nothing deleted
    assert [a["user"] for a in live.assignments(REVIEWERS)] == [ALICE]
    assert live.roles("globex") == desired("globex")
    (run_id,) = list_runs(JOURNAL)
    _, entries = load_run(JOURNAL, run_id)
    assert {e.organization_id: e.state for e in entries}[ACME] == "skipped"


def test_an_edited_saved_plan_is_refused(
    sample: Path, live: Zenml, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["plan", "--out", "plan.json"], capsys)[0] == 0
    text = Path("plan.json").read_text()
    Path("plan.json").write_text(text.replace('"promote"', '"delete"', 1))
    code, out, err = run(["apply", "plan.json", "--allow-delete", "--allow-delete-in-use"], capsys)
    assert code == 1
    assert "plan.json: checksum mismatch" in err
    assert "Traceback" not in out + err
    live.untouched()


def test_a_plan_made_against_another_api_url_is_refused(
    sample: Path, live: Zenml, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run(["plan", "--out", "plan.json"], capsys)[0] == 0
    # The same emulator below /api/v1, as a self-hosted server serves it: another API.
    other = live.url + "api/v1"
    monkeypatch.setenv("ZENML_PRO_API_URL", other)
    code, out, err = run(["apply", "plan.json", "--allow-delete", "--allow-delete-in-use"], capsys)
    assert code == 1
    assert f"the plan was made for project {live.url.rstrip('/')}, not {other}" in err
    assert "Traceback" not in out + err
    live.untouched()
    assert run(["plan", "--detailed-exitcode"], capsys)[0] == 2  # that URL works


def test_a_plan_changing_too_many_organizations_needs_force(
    sample: Path, live: Zenml, capsys: pytest.CaptureFixture[str]
) -> None:
    # The guard counts from 10 managed organizations by default; the sample has 3.
    with (sample / "policysync.toml").open("a") as settings:
        settings.write("\n[apply]\nguard_min_organizations = 0\n")
    code, out, err = run(
        ["apply", "--auto-approve", "--allow-delete", "--allow-delete-in-use"], capsys
    )
    assert code == 1
    assert "the plan changes 2 of 3 organizations, more than 30%" in err
    assert "nothing was written" in err
    assert "--force" in err
    assert not JOURNAL.exists()
    live.untouched()
    code, out, err = run(
        ["apply", "--auto-approve", "--allow-delete", "--allow-delete-in-use", "--force"], capsys
    )
    assert code == 0, out + err
    assert_applied(live)


# rollback -----------------------------------------------------------------------------


def test_rollback_restores_the_priors_and_gives_the_deleted_role_back(
    sample: Path, live: Zenml, capsys: pytest.CaptureFixture[str]
) -> None:
    held = live.assignments(REVIEWERS)
    assert [(a["user"], a["workspace_id"]) for a in held] == [(ALICE, WORKSPACE)]
    run_id = applied_run(capsys)
    assert_applied(live)
    code, out, err = run(["rollback", run_id, "--auto-approve"], capsys)
    assert code == 0, out + err
    assert "Rollback: 2 applied, 0 unchanged, 0 stale, 0 failed, of 2 organizations." in out
    for org in ("acme", "globex", "initech", "hooli"):
        assert live.roles(org) == seeded(org), org  # descriptions, permissions as sets
    recreated = live.role_id("acme", "workspace", "Pipeline Reviewers")
    assert recreated != REVIEWERS
    assert live.http.get(f"roles/{REVIEWERS}").status_code == 404
    assert live.assignments(recreated) == held  # Alice, in the same workspace
    rollback_id = max(set(list_runs(JOURNAL)) - {run_id})
    summary, entries = load_run(JOURNAL, rollback_id)
    assert summary.kind == "rollback"
    assert summary.rolled_back_run == run_id
    (acme,) = [e for e in entries if e.organization_id == ACME]
    assert ("assign", "workspace:Pipeline Reviewers", f"user {ALICE}") in [
        (o.action, o.role_id, o.detail) for o in acme.operations
    ]
    code, _, _ = run(["plan", "--detailed-exitcode"], capsys)
    assert code == 2  # the sample's changes are to be made again


# drift --------------------------------------------------------------------------------


def test_drift_is_found_after_an_out_of_band_change(
    sample: Path, live: Zenml, capsys: pytest.CaptureFixture[str]
) -> None:
    applied_run(capsys)
    code, out, err = run(["drift"], capsys)
    assert code == 0, out + err
    assert "No drift. 3 organizations match their files." in out
    operators = live.role_id("initech", "workspace", "Run Operators")
    live.patch(operators, {"permissions": [{"resource": "pipeline", "action": "read"}]})
    code, out, _ = run(["drift"], capsys)
    assert code == 2
    assert f"organization initech ({INITECH})\n  ~ role workspace:Run Operators" in out
    assert "(changed live)" in out
    assert "pipeline_run" in out
    assert "acme" not in out
    assert "globex" not in out


def test_drift_all_orgs_names_an_organization_with_roles_and_no_file(
    sample: Path, live: Zenml, capsys: pytest.CaptureFixture[str]
) -> None:
    applied_run(capsys)
    assert run(["drift"], capsys)[0] == 0  # the managed organizations match
    code, out, _ = run(["drift", "--all-orgs"], capsys)
    assert code == 2
    assert (
        f"+ organization hooli ({HOOLI}): workspace:Stack Auditors" in out
    )  # by its name, its roles as `level:name`
    assert "globex (" not in out  # no custom roles: not listed
    code, out, _ = run(["drift", "--all-orgs", "--format", "json"], capsys)
    assert code == 2
    (unmanaged,) = json.loads(out)["unmanaged"]
    assert unmanaged["organization_id"] == HOOLI
    assert unmanaged["organization_name"] == "hooli"
    assert unmanaged["role_ids"] == ["workspace:Stack Auditors"]


# export -------------------------------------------------------------------------------


def test_export_writes_zenml_files_that_validate_and_match_live(
    tmp_path: Path, live: Zenml, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    fresh = tmp_path / "fresh"
    shutil.copytree(SAMPLE, fresh)
    for path in (fresh / ORGS).glob("*.json"):
        path.unlink()
    monkeypatch.chdir(fresh)

    code, out, err = run(["export", "--org", "acme"], capsys)
    assert code == 0, out + err
    assert "+ policies/orgs/acme.json (created)" in out
    assert sorted(p.name for p in (fresh / ORGS).iterdir()) == ["acme.json"]
    assert not (fresh / "policies" / "project.json").exists()
    document = json.loads((fresh / ORGS / "acme.json").read_text())
    assert document["$schema"] == "../../schemas/zenml-org-roles.schema.json"
    assert set(document) == {"$schema", "organization_id", "roles"}  # not Stytch's org_policy
    assert document["organization_id"] == ACME
    assert roles_of(document["roles"]) == seeded("acme")
    code, out, err = run(["validate"], capsys)
    assert code == 0, out + err
    code, out, err = run(["drift"], capsys)
    assert code == 0, out + err
    assert "No drift. 1 organization" in out

    code, out, err = run(["export", "--all-orgs"], capsys)
    assert code == 0, out + err
    assert sorted(p.name for p in (fresh / ORGS).iterdir()) == [
        "acme.json",
        "hooli.json",
        "initech.json",
    ]  # globex has no custom roles
    for org in ("hooli", "initech"):
        written = json.loads((fresh / ORGS / f"{org}.json").read_text())
        assert roles_of(written["roles"]) == seeded(org), org
    assert not (fresh / "policies" / "project.json").exists()
    code, out, err = run(["validate"], capsys)
    assert code == 0, out + err
    code, out, err = run(["drift", "--all-orgs"], capsys)
    assert code == 0, out + err
    live.untouched()  # export reads only


def test_export_leaves_a_file_saying_what_live_says_in_another_form(
    sample: Path, live: Zenml, capsys: pytest.CaptureFixture[str]
) -> None:
    initech = ORGS / "initech.json"  # the sample's initech already matches live
    document = json.loads(initech.read_text())
    for role in document["roles"]:
        role["permissions"].reverse()
    document["roles"].reverse()
    initech.write_text(json.dumps(document))
    as_written = initech.read_bytes()
    code, out, err = run(["export", "--format", "json"], capsys)
    assert code == 0, err
    statuses = {Path(f["file"]).name: f["status"] for f in json.loads(out)["files"]}
    assert statuses == {
        "acme.json": "updated",
        "globex.json": "updated",  # its role is not live yet
        "initech.json": "unchanged",
    }
    assert initech.read_bytes() == as_written
    code, out, err = run(["fmt"], capsys)
    assert (code, out) == (0, f"{initech}\n"), err
    assert initech.read_bytes() == (SAMPLE / ORGS / "initech.json").read_bytes()


def test_export_on_a_branch_commits_zenml_files_named_for_zenml(
    sample: Path, live: Zenml, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in IDENTITY.items():
        monkeypatch.setenv(name, value)
    git(sample, "init", "-q", "-b", "main")
    head = commit_all(sample, "the ZenML sample")
    code, out, err = run(["export", "--all-orgs", "--branch", "exported"], capsys)
    assert code == 0, out + err
    assert git(sample, "rev-parse", "HEAD") == head  # the checkout is as it was
    assert not (sample / ORGS / "hooli.json").exists()
    message = git(sample, "log", "-1", "--format=%B", "exported")
    assert message.startswith("Export the live ZenML Pro roles\n")
    assert "Stytch" not in message
    assert "created orgs/hooli.json" in message
    hooli = json.loads(git(sample, "show", "exported:policies/orgs/hooli.json"))
    assert hooli["$schema"] == "../../schemas/zenml-org-roles.schema.json"
    assert roles_of(hooli["roles"]) == seeded("hooli")
    acme = json.loads(git(sample, "show", "exported:policies/orgs/acme.json"))
    assert acme["$schema"] == "../../../../schemas/zenml-org-roles.schema.json"  # kept
    assert roles_of(acme["roles"]) == seeded("acme")  # live's, not the file's


# plan --against-ref -------------------------------------------------------------------


def test_plan_against_ref_shows_a_commits_change_to_one_role_offline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in IDENTITY.items():
        monkeypatch.setenv(name, value)
    repo = tmp_path / "repo"
    shutil.copytree(SAMPLE, repo)
    monkeypatch.chdir(repo)
    git(repo, "init", "-q", "-b", "main")
    commit_all(repo, "the ZenML sample")

    def widen(document: Any) -> None:
        (operators,) = [r for r in document["roles"] if r["name"] == "Run Operators"]
        operators["permissions"].append({"resource": "pipeline", "action": "update"})

    edit(ORGS / "initech.json", widen)
    commit_all(repo, "Run Operators may update pipelines")

    # No credentials, and no connection anywhere.
    for name in [n for n in os.environ if n.startswith(("ZENML_", "STYTCH_"))]:
        monkeypatch.delenv(name)

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("plan --against-ref tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)

    code, out, err = run(["plan", "--against-ref", "HEAD^1", "--detailed-exitcode"], capsys)
    assert code == 2, out + err
    assert out == (
        f"organization initech ({INITECH})\n"
        "  ~ role workspace:Run Operators        (update)\n"
        "      ~ pipeline: + update\n"
        "\n"
        "Plan: 0 to add, 1 to change, 0 to destroy, in 1 of 3 organizations.\n"
    )
    code, out, _ = run(["plan", "--against-ref", "HEAD^1", "--format", "json"], capsys)
    assert code == 0
    document = json.loads(out)
    jsonschema.Draft202012Validator(PLAN_SCHEMA).validate(document)
    (changed,) = [o for o in document["organizations"] if o["role_changes"]]
    assert [(c["action"], c["role_id"]) for c in changed["role_changes"]] == [
        ("update", "workspace:Run Operators")
    ]
    assert run(["plan", "--against-ref", "HEAD", "--detailed-exitcode"], capsys)[0] == 0
    assert document["escalations"] == []

    # For ZenML Pro, the grants of the `sensitive` setting are the escalations.
    settings = repo / "policysync.toml"
    settings.write_text(settings.read_text() + 'sensitive = ["pipeline:update"]\n')
    code, out, _ = run(["plan", "--against-ref", "HEAD^1", "--format", "json"], capsys)
    assert json.loads(out)["escalations"] == [
        {
            "organization_id": INITECH,
            "role_id": "workspace:Run Operators",
            "resource_id": "pipeline",
            "action": "update",
            "reason": "sensitive",
        }
    ]
    code, out, _ = run(["plan", "--against-ref", "HEAD^1"], capsys)
    assert out.startswith(
        "Escalations: grants that widen access (1)\n"
        f"  ! role workspace:Run Operators in initech ({INITECH}) gains pipeline:update "
        "(sensitive)\n\norganization initech"
    )


# credentials --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["plan"],
        ["drift"],
        ["export"],
        ["apply", "--auto-approve"],
        ["rollback", "20200101T000000Z-abcdef", "--auto-approve"],
    ],
)
def test_a_missing_api_key_is_a_message(
    sample: Path,
    live: Zenml,
    argv: list[str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("ZENML_PRO_API_KEY")
    code, out, err = run(argv, capsys)
    assert code == 1
    assert err.startswith("error: ZENML_PRO_API_KEY is not set:")
    assert "Traceback" not in out + err
    assert "internal error" not in err
    assert not JOURNAL.exists()
    live.untouched()
