"""`policysync export` end to end: the CLI against the emulator over loopback."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import stytch
from stytch.b2b.models.rbac import OrgPolicy as SdkOrgPolicy
from support.clirun import run
from support.emulated import PROJECT_ID, SECRET, SEED, emulator
from support.planted import OUTSIDE, plant_links
from support.policytree import expanded_policies

from policysync import durable
from policysync.canonical import same_policy, same_project
from policysync.emulator.server import EmulatorThread
from policysync.models import OrgPolicy, OrgPolicyFile, ProjectPolicyFile

ORGS = Path("policies/orgs")
ACME_ID = "organization-test-07971b06-ac8b-4cdb-9c15-63b17e653931"
CYBERDYNE_ID = "organization-test-6d2a9f40-1b7e-4c85-93f2-0a5e8c1d7b29"


@pytest.fixture
def live(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[EmulatorThread]:
    with emulator(monkeypatch) as thread:
        yield thread


def seeded(name: str) -> OrgPolicy:
    """The seeded live policy of the organization with this id, slug or external id."""
    for org in SEED.organizations:
        if name in (org.organization_id, org.organization_slug, org.organization_external_id):
            return org.org_policy
    raise KeyError(name)


def snapshot() -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in sorted(Path("policies").rglob("*.json"))}


def test_export_refreshes_the_files_keeping_names_and_schema(
    live: EmulatorThread, capsys: pytest.CaptureFixture[str]
) -> None:
    acme = ORGS / "acme.json"
    acme.write_text(acme.read_text().replace("../../schemas/", "https://example.com/schemas/"))
    names = sorted(p.name for p in ORGS.iterdir())
    written_ids = {
        p.name: OrgPolicyFile.model_validate_json(p.read_bytes()) for p in ORGS.iterdir()
    }
    code, out, err = run(["export"], capsys)
    assert code == 0, err
    assert sorted(p.name for p in ORGS.iterdir()) == names  # no file added, none renamed
    for path in ORGS.iterdir():
        document = OrgPolicyFile.model_validate_json(path.read_bytes())
        assert document.organization_id == written_ids[path.name].organization_id
        expanded = expanded_policies(ORGS.parent)[document.organization_id]
        assert same_policy(expanded, seeded(document.organization_id)), path
    assert (
        json.loads(acme.read_text())["$schema"]
        == "https://example.com/schemas/org-policy.schema.json"
    )
    assert json.loads((ORGS / "globex.json").read_text())["$schema"] == (
        "../../schemas/org-policy.schema.json"
    )
    project = ProjectPolicyFile.model_validate_json(Path("policies/project.json").read_bytes())
    assert same_project(project.policy, SEED.policy)
    assert project.schema_ == "../schemas/project-policy.schema.json"
    assert "~ policies/orgs/acme.json (updated)" in out
    assert out.rstrip().endswith("unchanged, 0 problems.")
    # what export writes passes validate, and plans to nothing
    code, out, _ = run(["validate"], capsys)
    assert code == 0, out
    code, out, err = run(["plan", "--detailed-exitcode"], capsys)
    assert code == 0, out + err


@pytest.mark.skipif(sys.platform == "win32", reason="symbolic links need privileges there")
def test_export_writes_through_durable_replace_never_through_a_planted_link(
    live: EmulatorThread, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    before, real_name = snapshot(), durable.temporary_name
    outside = Path("outside.txt").resolve()
    planted = plant_links(monkeypatch, outside)
    code, _, err = run(["export"], capsys)
    assert code == 1
    assert "acme.json: cannot write it" in err  # the first file to change, by name
    assert [link.name for link in planted] == [".acme.json.guessed.tmp"]
    assert outside.read_bytes() == OUTSIDE
    assert snapshot() == before  # nothing written
    monkeypatch.setattr(durable, "temporary_name", real_name)
    for link in planted:
        link.unlink()
    assert run(["export"], capsys)[0] == 0
    assert snapshot() != before
    assert not [p for p in Path("policies").rglob(".*") if p.name.endswith(".tmp")]


def test_re_export_of_unchanged_data_is_byte_identical(
    live: EmulatorThread, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["export", "--all-orgs"], capsys)[0] == 0
    first = snapshot()
    mtimes = {p: p.stat().st_mtime_ns for p in Path("policies").rglob("*.json")}
    code, out, _ = run(["export", "--all-orgs", "--format", "json"], capsys)
    assert code == 0
    assert snapshot() == first
    assert {p: p.stat().st_mtime_ns for p in Path("policies").rglob("*.json")} == mtimes
    result = json.loads(out)
    assert {f["status"] for f in result["files"]} == {"unchanged"}
    assert result["problems"] == []


def test_a_template_live_departs_from_is_dropped_from_the_file_with_a_note(
    live: EmulatorThread, capsys: pytest.CaptureFixture[str]
) -> None:
    # the seed's acme grants invoices:void to invoice-approver; its template does not
    code, out, err = run(["export", "--org", "acme"], capsys)
    assert code == 0, err
    assert (
        "note: acme.json: live departs from template finance (role invoice-approver): the "
        "template is dropped from the file, which lists the organization's live roles instead"
    ) in out
    document = json.loads((ORGS / "acme.json").read_text())
    assert "templates" not in document
    roles = {r["role_id"]: r for r in document["org_policy"]["roles"]}
    assert "void" in roles["invoice-approver"]["permissions"][0]["actions"]
    code, out, _ = run(["export", "--org", "acme", "--format", "json"], capsys)
    assert code == 0
    assert json.loads(out)["notes"] == []  # the file now says what live has: nothing dropped


def test_the_canonical_form_does_not_depend_on_live_order(
    live: EmulatorThread, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["export", "--org", "stark-industries"], capsys)[0] == 0
    before = (ORGS / "stark-industries.json").read_bytes()
    sdk = stytch.B2BClient(project_id=PROJECT_ID, secret=SECRET, environment=live.url)
    policy = seeded("stark-industries").model_dump(mode="json")
    for role in policy["roles"]:
        role["permissions"].reverse()
        for permission in role["permissions"]:
            permission["actions"].reverse()
    policy["roles"].reverse()
    sdk.rbac.organizations.set_org_policy(
        organization_id="stark-industries", org_policy=SdkOrgPolicy.model_validate(policy)
    )
    assert run(["export", "--org", "stark-industries"], capsys)[0] == 0
    assert (ORGS / "stark-industries.json").read_bytes() == before
    document = json.loads(before)
    assert list(document) == ["$schema", "organization_id", "templates", "org_policy"]
    assert document["templates"] == ["finance"]  # live has the template's role exactly
    role_ids = [role["role_id"] for role in document["org_policy"]["roles"]]
    assert role_ids == sorted(role_ids)
    assert "invoice-approver" not in role_ids  # the template gives it


def reversed_json(value: Any) -> Any:
    """`value` with every list and every object's keys in reverse order."""
    if isinstance(value, list):
        return [reversed_json(v) for v in reversed(value)]
    if isinstance(value, dict):
        return {k: reversed_json(value[k]) for k in reversed(list(value))}
    return value


def test_a_file_saying_what_live_says_in_another_form_is_left_unchanged(
    live: EmulatorThread, capsys: pytest.CaptureFixture[str]
) -> None:
    """Formatting is `policysync fmt`'s job: export reports only what live changed."""
    assert run(["export", "--all-orgs"], capsys)[0] == 0
    exported = snapshot()
    for path in (ORGS / "acme.json", ORGS / "hooli.json", Path("policies/project.json")):
        path.write_text(json.dumps(reversed_json(json.loads(path.read_text()))))
    as_written = snapshot()
    assert as_written != exported
    code, out, _ = run(["export", "--all-orgs", "--format", "json"], capsys)
    assert code == 0
    assert {f["status"] for f in json.loads(out)["files"]} == {"unchanged"}
    assert snapshot() == as_written  # left as written
    code, out, _ = run(["fmt", "--check"], capsys)
    assert (code, len(out.splitlines())) == (1, 3)
    assert run(["fmt"], capsys)[0] == 0
    assert snapshot() == exported  # fmt writes the bytes export writes

    # a real change in a file not in the canonical form: rewritten, canonical
    acme = ORGS / "acme.json"
    acme.write_text(json.dumps(reversed_json(json.loads(acme.read_text()))).replace("read", "rea"))
    code, out, _ = run(["export", "--org", "acme"], capsys)
    assert code == 0
    assert "~ policies/orgs/acme.json (updated)" in out
    assert snapshot() == exported


def test_all_orgs_adds_the_organizations_with_roles(
    live: EmulatorThread, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(["export", "--all-orgs", "--search-page-size", "2"], capsys)
    assert code == 0, err
    new = json.loads((ORGS / "cyberdyne.json").read_text())
    assert new["organization_id"] == CYBERDYNE_ID
    assert new["$schema"] == "../../schemas/org-policy.schema.json"
    assert same_policy(OrgPolicy.model_validate(new["org_policy"]), seeded("cyberdyne"))
    assert not (ORGS / "soylent.json").exists()  # no org-specific roles: stays unmanaged
    assert "+ policies/orgs/cyberdyne.json (created)" in out
    assert run(["validate"], capsys)[0] == 0


def test_org_exports_only_that_organization(
    live: EmulatorThread, capsys: pytest.CaptureFixture[str]
) -> None:
    (ORGS / "initech.json").unlink()
    before = snapshot()
    code, out, err = run(["export", "--org", "initech", "--org", "acme-42"], capsys)
    assert code == 0, err
    after = snapshot()
    initech = OrgPolicyFile.model_validate_json(after.pop(str(ORGS / "initech.json")))
    assert initech.organization_id == "organization-test-5b1f3c9e-2d4a-4e8b-9f61-0c7d2a8e4b13"
    assert same_policy(initech.org_policy, seeded("initech"))
    # acme-42 is acme's external id: its file (which names acme by id) is the one refreshed
    acme = OrgPolicyFile.model_validate_json(after[str(ORGS / "acme.json")])
    assert (acme.organization_id, same_policy(acme.org_policy, seeded(ACME_ID))) == (ACME_ID, True)
    changed = {name for name in after if after[name] != before.get(name)}
    assert changed <= {str(ORGS / "acme.json"), "policies/project.json"}
    assert "+ policies/orgs/initech.json (created)" in out


def test_org_takes_a_file_name(live: EmulatorThread, capsys: pytest.CaptureFixture[str]) -> None:
    (ORGS / "acme.json").rename(ORGS / "acme-corp.json")  # a name no live organization has
    before = snapshot()
    for name in ("acme-corp", "acme-corp.json"):
        code, out, err = run(["export", "--org", name, "--format", "json"], capsys)
        assert code == 0, err
        files = {f["file"]: f["organization_id"] for f in json.loads(out)["files"]}
        assert files == {"policies/orgs/acme-corp.json": ACME_ID, "policies/project.json": None}
    after = snapshot()
    acme = OrgPolicyFile.model_validate_json(after[str(ORGS / "acme-corp.json")])
    assert same_policy(acme.org_policy, seeded(ACME_ID))
    changed = {name for name in after if after[name] != before.get(name)}
    assert changed <= {str(ORGS / "acme-corp.json"), "policies/project.json"}


def test_unknown_and_unreadable_organizations_are_reported(
    live: EmulatorThread, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(["export", "--org", "no-such-org", "--org", "globex"], capsys)
    assert code == 1
    assert "! organization no-such-org: no organization of the project has" in out
    assert "did you mean" not in out
    assert "1 problem." in out
    gone = ORGS / "gone.json"
    gone.write_text(json.dumps({"organization_id": "deleted-org", "org_policy": {"roles": []}}))
    code, out, _ = run(["export"], capsys)
    assert code == 1
    assert "! organization deleted-org (policies/orgs/gone.json): not exported: " in out
    assert "organization_not_found" in out
    assert json.loads(gone.read_text())["organization_id"] == "deleted-org"  # left as it was
    code, out, _ = run(["export", "--org", "initec"], capsys)
    assert code == 1
    assert "has the id, slug or external id initec, and no file in orgs/ has that name; " in out
    assert "did you mean initech?" in out


def test_export_needs_credentials(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("STYTCH_PROJECT_ID", raising=False)
    monkeypatch.delenv("STYTCH_SECRET", raising=False)
    code, _, err = run(["export"], capsys)
    assert code == 1
    assert "STYTCH_PROJECT_ID" in err


def test_a_progress_bar_only_on_a_terminal(
    live: EmulatorThread, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, err = run(["export", "--format", "json"], capsys)
    assert code == 0, err
    assert err == ""  # not a terminal: no bar
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    code, out, err = run(["export", "--all-orgs", "--format", "json"], capsys)
    assert code == 0, err
    # every organization read (the 7 with files, and those --all-orgs adds) is counted
    assert re.search(r"reading live org policies +\[#+\] +100%", err)
    assert "reading live" not in out
    assert json.loads(out)["problems"] == []
