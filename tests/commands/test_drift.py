"""`policysync drift` end to end: the CLI against the emulator over real HTTP on loopback,
every out-of-band change made with the official `stytch` SDK."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import stytch
from support.clientkit import Counting
from support.clirun import run
from support.planted import OUTSIDE, plant_links

from policysync import schemas
from policysync.config import Limits
from policysync.emulator.seed import Seed, SeedOrganization
from policysync.emulator.server import EmulatorThread, build
from policysync.emulator.store import Store
from policysync.models import OrgPolicy

ROOT = Path(__file__).parent.parent.parent
SEED = Seed.model_validate_json((ROOT / "policies" / "emulator-seed.json").read_text())
PROJECT_ID = "project-test-11111111-2222-4333-8444-555555555555"
SECRET = "secret-test-drift-cli-ZHJpZnRzZWNyZXQ"
SEARCH = "/v1/b2b/organizations/search"
CYBERDYNE = "organization-test-6d2a9f40-1b7e-4c85-93f2-0a5e8c1d7b29"
ACME = "organization-test-07971b06-ac8b-4cdb-9c15-63b17e653931"
GHOST = "organization-test-00000000-dead-4000-8000-000000000000"


class Live:
    def __init__(self, emulator: EmulatorThread, app: Counting) -> None:
        self.app = app
        self.sdk = stytch.B2BClient(project_id=PROJECT_ID, secret=SECRET, environment=emulator.url)

    def set_roles(self, organization_id: str, roles: list[dict[str, Any]]) -> None:
        """An out-of-band change, with the official SDK."""
        self.sdk.rbac.organizations.set_org_policy(
            organization_id=organization_id, org_policy={"roles": roles}
        )


Serve = Callable[..., Live]  # (seed, disabled organizations) -> a started emulator


@pytest.fixture
def serve(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Serve]:
    started: list[EmulatorThread] = []

    def start(seed: Seed = SEED, disabled: frozenset[str] = frozenset()) -> Live:
        store = Store()
        store.load(seed)
        app = Counting(build(store, PROJECT_ID, SECRET, Limits(), None, disabled))
        emulator = EmulatorThread(app).__enter__()
        started.append(emulator)
        monkeypatch.setenv("STYTCH_PROJECT_ID", PROJECT_ID)
        monkeypatch.setenv("STYTCH_SECRET", SECRET)
        monkeypatch.setenv("STYTCH_BASE_URL", emulator.url)
        return Live(emulator, app)

    yield start
    for emulator in started:
        emulator.__exit__(None, None, None)


@pytest.fixture
def live(serve: Serve) -> Live:
    return serve()


def drift(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code, out, err = run(["drift", *args], capsys)
    assert "Traceback" not in out + err
    assert "internal error" not in err
    assert SECRET not in out + err
    return code, out, err


def drift_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    code, out, err = drift(capsys, "--format", "json", *args)
    assert out.strip(), err
    document: dict[str, Any] = json.loads(out)
    jsonschema.validate(document, committed_schema())
    return code, document


def committed_schema() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((ROOT / "schemas" / "drift.schema.json").read_text())
    return loaded


def file_roles(workdir: Path, name: str) -> list[dict[str, Any]]:
    """The organization's own roles, then its templates'."""
    document = json.loads((workdir / "policies" / "orgs" / f"{name}.json").read_text())
    roles: list[dict[str, Any]] = document["org_policy"]["roles"]
    for template in document.get("templates", []):
        path = workdir / "policies" / "templates" / f"{template}.json"
        roles += json.loads(path.read_text())["roles"]
    return roles


def by_org(document: dict[str, Any]) -> dict[str, dict[str, str]]:
    """{organization_id: {role_id: drift}} of the drifted organizations."""
    return {
        org["organization_id"]: {role["role_id"]: role["drift"] for role in org["roles"]}
        for org in document["organizations"]
        if org["status"] == "drifted"
    }


def apply(capsys: pytest.CaptureFixture[str]) -> None:
    code, _out, err = run(
        ["apply", "--auto-approve", "--allow-delete", "--allow-delete-in-use"], capsys
    )
    assert code == 0, err


def test_the_demo_seed_drifts_in_every_role_kind(
    live: Live, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = drift(capsys)
    assert code == 2, err
    assert "organization acme (organization-test-07971b06" in out
    assert "  - role auditor                        (removed live)" in out
    assert "  ~ role invoice-approver               (changed live)" in out
    assert "      ~ invoices: + void" in out  # what live grants that the file does not
    assert "  + role legacy-admin                   (added live)" in out
    assert '~ description: "Sees everything, changes nothing" -> "Read-only access"' in out
    assert out.strip().splitlines()[-1] == (
        "Drift: 4 of 7 organizations drifted (1 role added, 2 removed, 2 changed outside git)."
    )
    assert "cyberdyne" not in out  # unmanaged organizations are searched with --all-orgs only
    assert SEARCH not in live.app.paths
    code, document = drift_json(capsys)
    assert code == 2
    assert document["drift_found"] is True
    assert by_org(document) == {
        ACME: {"auditor": "removed", "invoice-approver": "changed"},
        "organization-test-5b1f3c9e-2d4a-4e8b-9f61-0c7d2a8e4b13": {"legacy-admin": "added"},
        "organization-test-9a3e6f21-7c84-4b0d-a5e2-61f8d3c7b940": {"contractor": "removed"},
        "organization-test-e41b7a0c-3f52-4d96-8b1a-2c9e5f7d0a68": {"readonly-all": "changed"},
    }
    added = document["organizations"][1]["roles"][0]
    assert added["file"] is None
    assert added["live"]["role_id"] == "legacy-admin"
    assert document["project"] == {"file": "policies/project.json", "drifted": False, "items": []}
    assert document["unmanaged"] is None
    assert document["project_id"] == PROJECT_ID
    summary = document["summary"]
    assert (summary["roles_added"], summary["roles_removed"], summary["roles_changed"]) == (1, 2, 2)


def test_no_drift_after_apply_then_each_out_of_band_change_is_found(
    live: Live, capsys: pytest.CaptureFixture[str], workdir: Path
) -> None:
    apply(capsys)
    code, out, err = drift(capsys)
    assert (code, out.strip()) == (0, "No drift. 7 organizations match their files."), err
    code, document = drift_json(capsys)
    assert code == 0
    assert document["drift_found"] is False
    assert document["organizations"] == []

    globex = file_roles(workdir, "globex")  # managed by its slug
    _curator, manager = globex
    manager_changed = {
        **manager,
        "permissions": [{"resource_id": "stytch.member", "actions": ["create", "search"]}],
    }
    shadow = {
        "role_id": "shadow-admin",
        "description": "added outside git",
        "permissions": [{"resource_id": "documents", "actions": ["*"]}],
    }
    live.set_roles("globex", [manager_changed, shadow])  # curator removed
    stark = file_roles(workdir, "stark-industries")
    stark[0] = {**stark[0], "description": "renamed in the dashboard"}
    live.set_roles("stark-industries", list(reversed(stark)))  # order carries no meaning

    code, document = drift_json(capsys)
    assert code == 2
    assert by_org(document) == {
        "globex": {
            "document-curator": "removed",
            "member-manager": "changed",
            "shadow-admin": "added",
        },
        "stark-industries": {stark[0]["role_id"]: "changed"},
    }
    code, out, _ = drift(capsys)
    assert code == 2
    assert "  - role document-curator" in out
    assert "  + role shadow-admin" in out
    assert "      ~ stytch.member: - update.settings.roles" in out
    assert '-> "renamed in the dashboard"' in out

    apply(capsys)  # back to the files
    assert drift(capsys)[0] == 0


def test_a_managed_organization_that_no_longer_exists(
    live: Live, capsys: pytest.CaptureFixture[str], workdir: Path
) -> None:
    ghost = {"organization_id": GHOST, "org_policy": {"roles": []}}
    (workdir / "policies" / "orgs" / "ghost.json").write_text(json.dumps(ghost))
    code, out, err = drift(capsys, "--org", GHOST)
    assert code == 2, err
    assert f"! organization ghost ({GHOST}): no longer exists live: organization_not_found" in out
    assert out.strip().splitlines()[-1] == "Drift: 1 managed organization no longer exists."
    code, document = drift_json(capsys, "--org", GHOST)
    (org,) = document["organizations"]
    assert (org["status"], org["error"]["error_type"]) == ("missing", "organization_not_found")
    assert org["error"]["request_id"]
    assert document["summary"]["missing"] == 1


def test_project_json_out_of_date_is_drift(
    live: Live, capsys: pytest.CaptureFixture[str], workdir: Path
) -> None:
    apply(capsys)
    path = workdir / "policies" / "project.json"
    project = json.loads(path.read_text())
    policy = project["policy"]
    policy["resources"].reverse()  # order carries no meaning
    for resource in policy["resources"]:
        if resource["resource_id"] == "documents":
            resource["description"] = "an older description"
    policy["scopes"] = [s for s in policy["scopes"] if s["scope"] != "read:invoices"]
    policy["roles"].append(
        {
            "role_id": "retired-role",
            "description": "",
            "permissions": [{"resource_id": "reports", "actions": ["read"]}],
        }
    )
    path.write_text(json.dumps(project, indent=2))
    code, out, err = drift(capsys)
    assert code == 2, err
    assert "project policy policies/project.json (refresh it with `policysync export`" in out
    assert "  ~ resource documents" in out
    assert "(changed live)" in out
    assert "  - role retired-role" in out
    assert "  + scope read:invoices" in out
    assert out.strip().splitlines()[-1] == (
        "Drift: policies/project.json is out of date with the live project policy."
    )
    assert "project-stale" in err  # validation's warning says the same
    code, document = drift_json(capsys)
    assert code == 2
    assert document["project"]["drifted"] is True
    assert [(i["kind"], i["id"], i["drift"]) for i in document["project"]["items"]] == [
        ("resource", "documents", "changed"),
        ("role", "retired-role", "removed"),
        ("scope", "read:invoices", "added"),
    ]
    assert document["organizations"] == []


def extra_organizations(count: int) -> list[SeedOrganization]:
    """`count` unmanaged organizations; every other one has a role."""
    role = {
        "role_id": "tenant-reader",
        "description": "",
        "permissions": [{"resource_id": "documents", "actions": ["read"]}],
    }
    return [
        SeedOrganization(
            organization_id=f"organization-test-00000000-0000-4000-8000-{i:012d}",
            organization_name=f"Tenant {i}",
            organization_slug=f"tenant-{i}",
            org_policy=OrgPolicy.model_validate({"roles": [role] if i % 2 else []}),
        )
        for i in range(count)
    ]


def test_all_orgs_finds_unmanaged_organizations_with_roles_across_search_pages(
    serve: Serve, capsys: pytest.CaptureFixture[str]
) -> None:
    extras = extra_organizations(11)
    seed = Seed(policy=SEED.policy, organizations=(*SEED.organizations, *extras))
    live = serve(seed)
    apply(capsys)
    code, document = drift_json(capsys, "--all-orgs", "--search-page-size", "2")
    assert code == 2
    wanted = sorted(
        [CYBERDYNE] + [o.organization_id for o in extras if o.org_policy.roles]
    )  # soylent and the tenants without roles are not reported; managed ones neither
    assert [o["organization_id"] for o in document["unmanaged"]] == wanted
    assert document["summary"]["unmanaged"] == len(wanted) == 6
    assert document["organizations"] == []
    pages = -(-len(seed.organizations) // 2)
    assert live.app.paths.count(SEARCH) == pages == 10
    (cyberdyne,) = [o for o in document["unmanaged"] if o["organization_id"] == CYBERDYNE]
    assert cyberdyne["organization_slug"] == "cyberdyne"
    assert cyberdyne["role_ids"] == ["skynet-operator"]

    code, out, _ = drift(capsys, "--all-orgs", "--search-page-size", "3")
    assert code == 2
    assert f"+ organization cyberdyne ({CYBERDYNE}): skynet-operator" in out
    assert out.strip().splitlines()[-1] == (
        "Drift: 6 unmanaged organizations with roles and no file."
    )

    # The shards of a CI matrix split the unmanaged organizations too.
    shards = [
        {
            o["organization_id"]
            for o in drift_json(capsys, "--all-orgs", "--shard", f"{i}/2")[1]["unmanaged"]
        }
        for i in (1, 2)
    ]
    assert not shards[0] & shards[1]
    assert sorted(shards[0] | shards[1]) == wanted

    # Once their roles are gone (or adopted into files), nothing is left to report.
    for organization_id in wanted:
        live.set_roles(organization_id, [])
    code, out, _ = drift(capsys, "--all-orgs")
    assert (code, out.strip()) == (
        0,
        "No drift. 7 organizations match their files; no unmanaged organization has roles.",
    )


def test_report_file_markdown_and_schema(
    live: Live, capsys: pytest.CaptureFixture[str], workdir: Path
) -> None:
    code, out, err = drift(capsys, "--all-orgs", "--format", "markdown", "--report", "drift.json")
    assert code == 2
    assert "Wrote the drift report to drift.json." in err
    first, *_ = out.splitlines()
    assert first == (
        "**Drift: 4 of 7 organizations drifted (1 role added, 2 removed, 2 changed outside git); "
        "1 unmanaged organization with roles and no file.**"
    )
    assert "<details><summary>acme (organization-test-07971b06" in out
    assert "```diff\n- role auditor" in out
    assert "1 unmanaged organization with roles</summary>" in out
    report = json.loads((workdir / "drift.json").read_text())
    jsonschema.validate(report, committed_schema())
    assert report["drift_found"] is True
    assert [o["organization_id"] for o in report["unmanaged"]] == [CYBERDYNE]
    # the committed schema is the one the model generates
    assert (ROOT / "schemas" / "drift.schema.json").read_text() == schemas.render("drift")


@pytest.mark.skipif(sys.platform == "win32", reason="symbolic links need privileges there")
def test_the_report_goes_through_durable_replace_never_through_a_planted_link(
    live: Live, capsys: pytest.CaptureFixture[str], workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    planted = plant_links(monkeypatch, workdir / "outside.txt")
    code, _, err = drift(capsys, "--report", "drift.json")
    assert code == 1
    assert "--report drift.json: cannot write it" in err
    assert [link.name for link in planted] == [".drift.json.guessed.tmp"]
    assert (workdir / "outside.txt").read_bytes() == OUTSIDE
    assert not (workdir / "drift.json").exists()


def test_an_unreadable_organization_is_an_error_and_the_rest_is_still_reported(
    serve: Serve, capsys: pytest.CaptureFixture[str]
) -> None:
    serve(SEED, frozenset({ACME}))
    code, out, err = drift(capsys, "--report", "drift.json")
    assert code == 1, err
    assert f"! organization acme ({ACME}): enterprise_endpoint" in out
    assert "  + role legacy-admin" in out
    assert out.strip().endswith("1 could not be read.")
    report = json.loads(Path("drift.json").read_text())
    assert report["summary"]["failed"] == 1
    assert report["organizations"][0]["status"] == "error"


def test_bad_input_ends_in_a_message(
    live: Live, capsys: pytest.CaptureFixture[str], workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, _, err = drift(capsys, "--all-orgs", "--org", "globex")
    assert code == 1
    assert "--all-orgs" in err
    assert "give one or the other" in err
    code, _, err = drift(capsys, "--org", "nobody")
    assert code == 1
    assert "no file in" in err
    code, _, err = drift(capsys, "--report", "missing-folder/drift.json")
    assert code == 1
    assert "--report missing-folder/drift.json: cannot write it" in err
    code, _, err = drift(capsys, "--search-page-size", "0")
    assert code == 1
    code, _, err = drift(capsys, "--shard", "3/2")
    assert code == 1
    assert "--shard 3/2" in err

    (workdir / "policies" / "orgs" / "acme.json").write_text('{"organization_id": ')
    code, out, err = drift(capsys)
    assert (code, out) == (1, "")
    assert "policies/orgs/acme.json:1:" in err
    assert "json-syntax" in err

    monkeypatch.setenv("STYTCH_SECRET", "not-" + SECRET)
    code, _, err = drift(capsys)
    assert code == 1
    assert "unauthorized_credentials" in err
    assert "not-" + SECRET not in err
    monkeypatch.delenv("STYTCH_SECRET")
    code, _, err = drift(capsys)
    assert code == 1
    assert "STYTCH_SECRET" in err
