"""Environments (`[environments.NAME]`, `--env NAME`): one policy tree, two Stytch
projects. Each environment is an emulator of its own, over real HTTP on loopback, whose
organizations have other ids but the same slugs and external ids: the same files apply
to both. `hooli` exists in test only: live skips it."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from support.clirun import run
from support.gitkit import IDENTITY, commit_all, git

from policysync.config import Limits
from policysync.emulator.seed import Seed, SeedOrganization
from policysync.emulator.server import EmulatorThread, build
from policysync.emulator.store import Store
from policysync.emulator.zenml_app import DEFAULT_API_KEY as ZENML_KEY
from policysync.emulator.zenml_app import build as zenml_build
from policysync.emulator.zenml_store import ZenmlSeed, ZenmlStore
from policysync.journal import list_runs, load_run
from policysync.models import OrgPolicy, ProjectPolicy, Role

ROOT = Path(__file__).parent.parent.parent
PROJECT = ProjectPolicy.model_validate(
    json.loads((ROOT / "policies" / "project.json").read_text())["policy"]
)
TEST_ID = "project-test-aaaaaaaa-1111-4222-8333-444444444444"
TEST_SECRET = "secret-test-environment-test-dGVzdHNlY3JldA"
LIVE_ID = "project-live-bbbbbbbb-1111-4222-8333-444444444444"
LIVE_SECRET = "secret-live-environment-live-bGl2ZXNlY3JldA"
SETTINGS = """\
[environments.test]
project_id_env = "STYTCH_TEST_PROJECT_ID"
secret_env = "STYTCH_TEST_SECRET"
base_url_env = "STYTCH_TEST_BASE_URL"

[environments.live]
project_id_env = "STYTCH_LIVE_PROJECT_ID"
secret_env = "STYTCH_LIVE_SECRET"
base_url_env = "STYTCH_LIVE_BASE_URL"
"""
AUDITOR = {
    "role_id": "auditor",
    "description": "Reads the audit log",
    "permissions": [{"resource_id": "audit-log", "actions": ["read"]}],
}
LEGACY = Role.model_validate(
    {
        "role_id": "legacy",
        "description": "Left over",
        "permissions": [{"resource_id": "documents", "actions": ["read"]}],
    }
)


def organizations(prefix: str, names: list[str]) -> tuple[SeedOrganization, ...]:
    """Organizations whose ids depend on the project (`prefix`), their slugs not; acme
    has an external id, and a role the files do not have (a deletion)."""
    return tuple(
        SeedOrganization(
            organization_id=f"organization-{prefix}-{i:08d}-0000-4000-8000-000000000000",
            organization_name=name.title(),
            organization_slug=name,
            organization_external_id="acme-42" if name == "acme" else None,
            org_policy=OrgPolicy(roles=(LEGACY,) if name == "acme" else ()),
        )
        for i, name in enumerate(names)
    )


class Emulator(NamedTuple):
    thread: EmulatorThread
    store: Store

    def roles(self, slug: str) -> list[str]:
        found = self.store.find(slug)
        assert found is not None
        stored: Any = found.org_policy  # the row's JSON
        return sorted(role.role_id for role in OrgPolicy.model_validate_json(stored).roles)

    def set(self, slug: str, policy: OrgPolicy) -> None:
        found = self.store.find(slug)
        assert found is not None
        self.store.set_org_policy(found.organization_id, policy)


class Environments(NamedTuple):
    test: Emulator
    live: Emulator


def start(project_id: str, secret: str, names: list[str], prefix: str) -> Emulator:
    store = Store()
    store.load(Seed(policy=PROJECT, organizations=organizations(prefix, names)))
    return Emulator(EmulatorThread(build(store, project_id, secret, Limits(), None)), store)


def write_tree(root: Path) -> None:
    """One file per organization, each named by slug or external id."""
    orgs = root / "policies" / "orgs"
    orgs.mkdir(parents=True)
    shutil.copy(ROOT / "policies" / "project.json", root / "policies" / "project.json")
    for name, org_id in (("acme", "acme-42"), ("globex", "globex"), ("hooli", "hooli")):
        document = {"organization_id": org_id, "org_policy": {"roles": [AUDITOR]}}
        (orgs / f"{name}.json").write_text(json.dumps(document, indent=2) + "\n")
    (root / "policysync.toml").write_text(SETTINGS)


@pytest.fixture
def envs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Environments]:
    write_tree(tmp_path)
    monkeypatch.chdir(tmp_path)
    test = start(TEST_ID, TEST_SECRET, ["acme", "globex", "hooli"], "test")
    live = start(LIVE_ID, LIVE_SECRET, ["globex", "acme"], "live")  # no hooli; other ids
    with test.thread, live.thread:
        for name, value in (
            ("STYTCH_TEST_PROJECT_ID", TEST_ID),
            ("STYTCH_TEST_SECRET", TEST_SECRET),
            ("STYTCH_TEST_BASE_URL", test.thread.url),
            ("STYTCH_LIVE_PROJECT_ID", LIVE_ID),
            ("STYTCH_LIVE_SECRET", LIVE_SECRET),
            ("STYTCH_LIVE_BASE_URL", live.thread.url),
        ):
            monkeypatch.setenv(name, value)
        for name in ("STYTCH_PROJECT_ID", "STYTCH_SECRET", "STYTCH_BASE_URL"):
            monkeypatch.delenv(name, raising=False)
        yield Environments(test, live)


def plan_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    code, out, err = run(["plan", "--format", "json", *args], capsys)
    assert code == 0, err
    document: dict[str, Any] = json.loads(out)
    return document


def test_the_same_files_plan_against_each_environment(
    envs: Environments, capsys: pytest.CaptureFixture[str]
) -> None:
    test = plan_json(capsys, "--env", "test")
    assert (test["environment"], test["project_id"]) == ("test", TEST_ID)
    assert test["format_version"] == "4"
    assert [o["action"] for o in test["organizations"]] == ["update"] * 3
    live = plan_json(capsys, "--env", "live")
    assert (live["environment"], live["project_id"]) == ("live", LIVE_ID)
    actions = {o["organization_id"]: o["action"] for o in live["organizations"]}
    assert actions == {"acme-42": "update", "globex": "update", "hooli": "absent"}
    assert live["summary"]["absent"] == 1
    assert live["summary"]["failed"] == 0
    # The text plan says where hooli is missing, and that is not an error.
    code, out, err = run(["plan", "--env", "live", "--detailed-exitcode"], capsys)
    assert code == 2, err  # changes, no error
    assert "! organization hooli: not in environment live, skipped" in out
    assert out.rstrip().endswith("in 2 of 3 organizations; 1 not in environment live, skipped.")


def test_without_env_a_missing_organization_is_an_error_as_before(
    envs: Environments, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STYTCH_PROJECT_ID", LIVE_ID)
    monkeypatch.setenv("STYTCH_SECRET", LIVE_SECRET)
    monkeypatch.setenv("STYTCH_BASE_URL", envs.live.thread.url)
    code, out, _err = run(["plan", "--format", "json"], capsys)
    assert code == 1
    document = json.loads(out)
    assert document["environment"] is None
    hooli = [o for o in document["organizations"] if o["organization_id"] == "hooli"]
    assert hooli[0]["action"] == "error"


def test_a_plan_is_applied_in_its_own_environment_only(
    envs: Environments, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run(["plan", "--env", "test", "--out", "test-plan.json"], capsys)[0] == 0
    # Without --env, even with the test project's credentials in the standard variables.
    monkeypatch.setenv("STYTCH_PROJECT_ID", TEST_ID)
    monkeypatch.setenv("STYTCH_SECRET", TEST_SECRET)
    monkeypatch.setenv("STYTCH_BASE_URL", envs.test.thread.url)
    for other, named in (["--env", "live"], "environment live"), ([], "no environment"):
        code, out, err = run(["apply", "test-plan.json", "--allow-delete", *other], capsys)
        assert code == 1
        assert f"the plan was made for environment test, not {named}" in err
        assert "apply it --env test" in err
    assert not Path(".policysync").exists()  # refused before anything was written
    assert envs.test.roles("acme") == ["legacy"]
    code, out, err = run(["apply", "test-plan.json", "--allow-delete", "--env", "test"], capsys)
    assert code == 0, err
    assert "3 applied" in out
    assert [envs.test.roles(n) for n in ("acme", "globex", "hooli")] == [["auditor"]] * 3
    assert envs.live.roles("acme") == ["legacy"]  # live untouched


def test_one_commit_is_promoted_from_test_to_live(
    envs: Environments, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """What policysync-promote.yml runs: at one commit, plan --env test --out and apply
    that plan; then the same for live. Each plan and journal names its commit and
    environment; afterwards neither environment differs from the files."""
    for name, value in IDENTITY.items():
        monkeypatch.setenv(name, value)
    git(Path.cwd(), "init", "-q", "-b", "main")
    commit = commit_all(Path.cwd(), "policies for both environments")
    journal = Path(".policysync/journal")
    for environment, emulator, applied in (("test", envs.test, 3), ("live", envs.live, 2)):
        saved = f"{environment}.plan.json"
        code, _, err = run(["plan", "--env", environment, "--out", saved], capsys)
        assert code == 0, err
        plan = json.loads(Path(saved).read_text())
        assert (plan["environment"], plan["git_commit"], plan["git_dirty"]) == (
            environment, commit, False,
        )  # fmt: skip
        args = ["apply", saved, "--allow-delete", "--env", environment, "--format", "json"]
        code, out, err = run(args, capsys)
        assert code == 0, err
        assert json.loads(out)["applied"] == applied
        assert emulator.roles("acme") == emulator.roles("globex") == ["auditor"]
    assert envs.test.roles("hooli") == ["auditor"]
    runs = [load_run(journal, run_id)[0] for run_id in list_runs(journal)]
    assert sorted((r.environment, r.git_commit) for r in runs) == [
        ("live", commit), ("test", commit),
    ]  # fmt: skip
    for environment in ("test", "live"):
        code, _, err = run(["plan", "--env", environment, "--detailed-exitcode"], capsys)
        assert code == 0, f"{environment} still differs: {err}"


def test_apply_skips_what_live_lacks_and_rollback_keeps_to_the_environment(
    envs: Environments, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, err = run(
        ["apply", "--env", "live", "--auto-approve", "--allow-delete", "--format", "json"], capsys
    )
    assert code == 0, err
    result = json.loads(out)
    assert (result["applied"], result["absent"], result["failed"]) == (2, 1, 0)
    (hooli,) = [o for o in result["organizations"] if o["result"] == "absent"]
    assert hooli["organization_id"] == "hooli"
    assert envs.live.roles("acme") == envs.live.roles("globex") == ["auditor"]
    assert envs.test.roles("acme") == ["legacy"]  # test untouched
    (run_id,) = list_runs(Path(".policysync/journal"))
    summary, _ = load_run(Path(".policysync/journal"), run_id)
    assert summary.environment == "live"
    # Not in another environment; nor without --env, the live credentials standard.
    monkeypatch.setenv("STYTCH_PROJECT_ID", LIVE_ID)
    monkeypatch.setenv("STYTCH_SECRET", LIVE_SECRET)
    monkeypatch.setenv("STYTCH_BASE_URL", envs.live.thread.url)
    for other, named in (["--env", "test"], "environment test"), ([], "no environment"):
        code, _, err = run(["rollback", run_id, "--auto-approve", *other], capsys)
        assert code == 1
        assert f"run {run_id} wrote to environment live, not {named}" in err
        assert "roll it back --env live" in err
    assert envs.live.roles("acme") == ["auditor"]
    code, out, err = run(["rollback", run_id, "--auto-approve", "--env", "live"], capsys)
    assert code == 0, err
    assert envs.live.roles("acme") == ["legacy"]
    assert envs.live.roles("globex") == []
    rollbacks = [r for r in list_runs(Path(".policysync/journal")) if r != run_id]
    summary, _ = load_run(Path(".policysync/journal"), rollbacks[0])
    assert summary.environment == "live"


def test_drift_per_environment(envs: Environments, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["apply", "--env", "test", "--auto-approve", "--allow-delete"], capsys)[0] == 0
    assert run(["apply", "--env", "live", "--auto-approve", "--allow-delete"], capsys)[0] == 0
    code, out, err = run(["drift", "--env", "test"], capsys)
    assert code == 0, out + err
    assert out.startswith("No drift. 3 organizations match their files.")
    code, out, err = run(["drift", "--env", "live", "--report", "live.json"], capsys)
    assert code == 0, out + err  # hooli lacking in live is no drift
    assert "No drift. 2 organizations match their files." in out
    assert "1 not in environment live, skipped." in out
    assert "! organization hooli: not in environment live, skipped" in out
    report = json.loads(Path("live.json").read_text())
    assert report["environment"] == "live"
    assert (report["summary"]["absent"], report["summary"]["missing"]) == (1, 0)
    assert report["drift_found"] is False
    # A change in live only is live's drift, not test's.
    envs.live.set("globex", OrgPolicy(roles=(LEGACY,)))
    assert run(["drift", "--env", "live"], capsys)[0] == 2
    assert run(["drift", "--env", "test"], capsys)[0] == 0


def test_export_from_an_environment_skips_what_it_lacks(
    envs: Environments, capsys: pytest.CaptureFixture[str]
) -> None:
    hooli = Path("policies/orgs/hooli.json").read_bytes()
    code, out, err = run(["export", "--env", "live"], capsys)
    assert code == 0, out + err
    assert "organization hooli is not in environment live: skipped" in out
    assert Path("policies/orgs/hooli.json").read_bytes() == hooli
    acme = json.loads(Path("policies/orgs/acme.json").read_text())
    assert acme["organization_id"] == "acme-42"  # the file keeps its name for acme
    assert [r["role_id"] for r in acme["org_policy"]["roles"]] == ["legacy"]


def test_an_unknown_environment_is_a_usage_error_naming_them(
    envs: Environments, capsys: pytest.CaptureFixture[str]
) -> None:
    for argv in (["plan"], ["apply", "--auto-approve"], ["drift"], ["export"]):
        code, _out, err = run([*argv, "--env", "livee"], capsys)
        assert code == 1
        assert "--env livee: no such environment in the settings; did you mean live?" in err
        assert "(the environments: live, test)" in err
    code, _, err = run(["rollback", "20250101T000000Z-abcdef", "--env", "prod"], capsys)
    assert code == 1
    assert "--env prod: no such environment in the settings (the environments: live, test)" in err
    Path("policysync.toml").write_text("")
    code, _, err = run(["plan", "--env", "live"], capsys)
    assert code == 1
    assert "--env live: the settings define no environment: add [environments.live]" in err


def test_an_environment_reads_only_its_own_variables(
    envs: Environments, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("STYTCH_LIVE_SECRET")
    monkeypatch.setenv("STYTCH_SECRET", LIVE_SECRET)  # the standard one is not read
    code, _, err = run(["plan", "--env", "live"], capsys)
    assert code == 1
    assert "STYTCH_LIVE_SECRET is not set: set STYTCH_LIVE_PROJECT_ID and STYTCH_LIVE_SECRET" in err
    assert "of environment live" in err
    assert LIVE_SECRET not in err
    monkeypatch.setenv("STYTCH_LIVE_SECRET", "short")
    code, _, err = run(["plan", "--env", "live"], capsys)
    assert code == 1
    assert "STYTCH_LIVE_SECRET is shorter than" in err


def test_an_environment_without_variables_reads_the_standard_ones(
    envs: Environments, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """As in CI, where each GitHub environment holds its project's STYTCH_* secrets."""
    Path("policysync.toml").write_text("[environments.live]\n")
    monkeypatch.setenv("STYTCH_PROJECT_ID", LIVE_ID)
    monkeypatch.setenv("STYTCH_SECRET", LIVE_SECRET)
    monkeypatch.setenv("STYTCH_BASE_URL", envs.live.thread.url)
    document = plan_json(capsys, "--env", "live")
    assert (document["environment"], document["project_id"]) == ("live", LIVE_ID)
    # A base_url in the settings wins over STYTCH_BASE_URL.
    Path("policysync.toml").write_text('[environments.live]\nbase_url = "http://127.0.0.1:9/"\n')
    code, _, err = run(["plan", "--env", "live"], capsys)
    assert code == 1
    assert "127.0.0.1:9" in err


def test_zenml_environments_read_their_own_variables_and_skip_what_they_lack(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """ZenML Pro: api_key_env and api_url_env; globex named by name exists in live
    under another id, acme and initech (named by their test ids) do not."""
    shutil.copytree(ROOT / "examples" / "zenml", tmp_path / "zenml")
    monkeypatch.chdir(tmp_path / "zenml")
    with Path("policysync.toml").open("a") as settings:
        settings.write('\n[environments.live]\napi_key_env = "ZENML_LIVE_KEY"\n')
        settings.write('api_url_env = "ZENML_LIVE_URL"\n')
    seed = json.loads((ROOT / "examples" / "zenml" / "emulator-seed.json").read_text())
    (globex,) = [o for o in seed["organizations"] if o["name"] == "globex"]
    live_seed = {"organizations": [{**globex, "id": "7e000000-0000-4000-8000-000000000002"}]}
    store = ZenmlStore()
    store.load(ZenmlSeed.model_validate(live_seed))
    with EmulatorThread(zenml_build(store, ZENML_KEY)) as emulator:
        monkeypatch.setenv("ZENML_LIVE_KEY", ZENML_KEY)
        monkeypatch.setenv("ZENML_LIVE_URL", emulator.url)
        monkeypatch.delenv("ZENML_PRO_API_KEY", raising=False)
        monkeypatch.setenv("ZENML_PRO_API_URL", "http://127.0.0.1:9")  # not read
        code, out, err = run(["plan", "--env", "live", "--format", "json"], capsys)
        assert code == 0, err
        plan = json.loads(out)
        assert (plan["environment"], plan["project_id"]) == ("live", emulator.url.rstrip("/"))
        actions = {o["file"].rsplit("/", 1)[1]: o["action"] for o in plan["organizations"]}
        assert actions == {"acme.json": "absent", "globex.json": "update", "initech.json": "absent"}
        code, out, err = run(["apply", "--env", "live", "--auto-approve"], capsys)
        assert code == 0, err
        assert "1 applied, 0 unchanged, 0 stale, 0 failed, 2 not in the environment" in out
        monkeypatch.delenv("ZENML_LIVE_KEY")
        code, _, err = run(["plan", "--env", "live"], capsys)
        assert code == 1
        assert "ZENML_LIVE_KEY is not set" in err
        assert "(environment live)" in err


def test_an_offline_plan_takes_no_environment(
    envs: Environments, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(["plan", "--against-ref", "HEAD", "--env", "live"], capsys)
    assert code == 1
    assert "--env names the live system to plan against; an --against-ref plan reads none" in err
