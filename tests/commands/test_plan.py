"""`policysync plan` end to end: the CLI against the emulator over real HTTP on loopback."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from support.clientkit import Counting
from support.clirun import run
from support.planted import OUTSIDE, plant_links

from policysync import planfile
from policysync.canonical import fingerprint
from policysync.config import Limits
from policysync.emulator.faults import Faults
from policysync.emulator.seed import Seed
from policysync.emulator.server import EmulatorThread, build
from policysync.emulator.store import Store
from policysync.errors import UsageError
from policysync.models import OrgPolicy

ROOT = Path(__file__).parent.parent.parent
SEED = Seed.model_validate_json((ROOT / "policies" / "emulator-seed.json").read_text())
PROJECT_ID = "project-test-11111111-2222-4333-8444-555555555555"
SECRET = "secret-test-plan-cli-Zm9vYmFyYmF6"


def serve(monkeypatch: pytest.MonkeyPatch, faults: Faults | None = None) -> tuple[Any, Counting]:
    store = Store()
    store.load(SEED)
    app = Counting(build(store, PROJECT_ID, SECRET, Limits(), faults))
    emulator = EmulatorThread(app)
    monkeypatch.setenv("STYTCH_PROJECT_ID", PROJECT_ID)
    monkeypatch.setenv("STYTCH_SECRET", SECRET)
    monkeypatch.setenv("STYTCH_BASE_URL", emulator.url)
    return emulator, app


@pytest.fixture
def live(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Counting]:
    emulator, app = serve(monkeypatch)
    with emulator:
        yield app


def test_text_plan_of_the_demo(live: Counting, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["plan"], capsys)
    assert code == 0, err
    assert "organization acme (organization-test-07971b06" in out
    assert "  - role legacy-admin" in out
    assert out.strip().splitlines()[-1] == (
        "Plan: 2 to add, 2 to change, 1 to destroy, in 4 of 7 organizations."
    )
    assert err == ""
    assert run(["plan", "--detailed-exitcode"], capsys)[0] == 2
    code, out, _ = run(["plan", "--detailed-exitcode", "--org", "globex"], capsys)
    assert (code, out.strip()) == (0, "No changes. 1 organization matches its file.")
    # unmanaged organizations (cyberdyne, soylent) are never read
    assert not [p for p in live.paths if p.endswith(("cyberdyne", "soylent"))]


def test_json_plan_matches_its_schema_and_live_fingerprints(
    live: Counting, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(["plan", "--format", "json"], capsys)
    assert code == 0
    document = json.loads(out)
    jsonschema.validate(document, json.loads((ROOT / "schemas" / "plan.schema.json").read_text()))
    assert document["project_id"] == PROJECT_ID
    by_id = {o.organization_id: o for o in SEED.organizations}
    for org in document["organizations"]:
        seeded = next(
            s
            for s in by_id.values()
            if org["organization_id"]
            in (s.organization_id, s.organization_slug, s.organization_external_id)
        )
        assert org["prior_fingerprint"] == fingerprint(seeded.org_policy)
        assert OrgPolicy.model_validate(org["prior"]) == seeded.org_policy


def test_saved_plan_has_a_checksum_and_is_refused_when_edited(
    live: Counting, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_file = workdir / "plan.json"
    code, _, err = run(["plan", "--out", str(out_file)], capsys)
    assert code == 0
    assert f"Saved the plan to {out_file}." in err
    plan = planfile.load(out_file, PROJECT_ID)
    assert plan.summary.changed == 4
    with pytest.raises(UsageError, match="made for project"):
        planfile.load(out_file, "project-test-other")
    out_file.write_text(out_file.read_text().replace('"delete"', '"create"', 1))
    with pytest.raises(UsageError, match="checksum mismatch"):
        planfile.load(out_file, PROJECT_ID)


@pytest.mark.skipif(sys.platform == "win32", reason="symbolic links need privileges there")
def test_plan_out_writes_through_durable_replace_never_through_a_planted_link(
    live: Counting,
    workdir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    planted = plant_links(monkeypatch, workdir / "outside.txt")
    code, _, err = run(["plan", "--out", "plan.json"], capsys)
    assert code == 1
    assert "plan.json: cannot save the plan there" in err
    assert [link.name for link in planted] == [".plan.json.guessed.tmp"]
    assert (workdir / "outside.txt").read_bytes() == OUTSIDE
    assert not (workdir / "plan.json").exists()


def test_an_invalid_tree_stops_the_plan_before_any_organization_is_read(
    live: Counting, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    finance = workdir / "policies" / "templates" / "finance.json"  # acme's template
    finance.write_text(finance.read_text().replace('"approve"', '"aprove"'))
    code, out, err = run(["plan"], capsys)
    assert code == 1
    assert out == ""
    assert "error[action-unknown]" in err
    assert live.paths == ["/v1/b2b/rbac/policy"]


def test_an_unknown_organization_does_not_hide_the_rest(
    live: Counting, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ghost = {"organization_id": "ghost-org", "org_policy": {"roles": []}}
    (workdir / "policies" / "orgs" / "ghost.json").write_text(json.dumps(ghost))
    code, out, _ = run(["plan"], capsys)
    assert code == 1
    assert "! organization ghost (ghost-org): organization_not_found" in out
    assert "organization acme (" in out
    assert "1 could not be planned" in out


def test_shards_partition_the_organizations(
    live: Counting, capsys: pytest.CaptureFixture[str]
) -> None:
    seen: list[str] = []
    for i in (1, 2, 3):
        code, out, _ = run(["plan", "--format", "json", "--shard", f"{i}/3"], capsys)
        assert code == 0
        seen += [o["organization_id"] for o in json.loads(out)["organizations"]]
    code, out, _ = run(["plan", "--format", "json"], capsys)
    assert sorted(seen) == sorted(o["organization_id"] for o in json.loads(out)["organizations"])
    code, _, err = run(["plan", "--shard", "4/3"], capsys)
    assert code == 1
    assert "write I/N" in err


def test_the_secret_appears_nowhere(
    live: Counting, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outputs = []
    for fmt in ("text", "markdown", "json"):
        outputs += run(["plan", "--format", fmt, "--out", str(workdir / f"{fmt}.json")], capsys)[1:]
        outputs.append((workdir / f"{fmt}.json").read_text())
    outputs += run(["plan", "--org", "nobody"], capsys)[1:]
    assert all(SECRET not in text for text in outputs)
    assert any(PROJECT_ID in text for text in outputs)


def test_a_stale_project_snapshot_is_a_warning(
    live: Counting, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = workdir / "policies" / "project.json"
    project.write_text(project.read_text().replace('"schedule"', '"schedule", "archive"'))
    code, out, err = run(["plan"], capsys)
    assert code == 0
    assert "warning[project-stale]" in err
    assert out.strip().endswith("in 4 of 7 organizations.")


def test_missing_credentials_are_a_clear_error(
    workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("STYTCH_PROJECT_ID", raising=False)
    monkeypatch.delenv("STYTCH_SECRET", raising=False)
    code, out, err = run(["plan"], capsys)
    assert code == 1
    assert "STYTCH_PROJECT_ID" in err
    assert "Traceback" not in out + err


def test_faults_do_not_change_the_plan(
    workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    requests: list[int] = []

    def plan_json(faults: Faults | None) -> dict[str, Any]:
        emulator, app = serve(monkeypatch, faults)
        with emulator:
            code, out, err = run(["plan", "--format", "json", "--parallelism", "4"], capsys)
        assert code == 0, err
        requests.append(len(app.paths))
        document: dict[str, Any] = json.loads(out)
        del document["created_at"]
        return document

    faulty = Faults(latency_ms=(0, 5), rate_limit=40, error_rate=0.3, drop_rate=0.1, seed=7)
    assert plan_json(faulty) == plan_json(None)
    # the project policy, then each managed organization once; for initech, whose plan
    # deletes a role, who depends on it: the organization, member search, SSO, SCIM
    assert requests[1] == 1 + 7 + 4
    assert requests[0] > requests[1]  # the faulty run needed retries


def test_a_progress_bar_only_on_a_terminal(
    live: Counting, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run(["plan"], capsys)[2] == ""  # not a terminal: nothing on stderr
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    code, out, err = run(["plan"], capsys)
    assert code == 0
    assert "reading live org policies" in err
    assert "100%" in err
    assert "reading live" not in out


def test_a_file_changed_during_the_plan_stops_it_with_a_message(
    live: Counting,
    workdir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Files are read again as each organization is planned (memory stays flat): one
    rewritten after validation is reported, not planned from a stale reading. The error
    comes from a callback of the event loop, and must still reach the user."""
    import policysync.commands.plan as planning

    acme = workdir / "policies" / "orgs" / "acme.json"
    files_of = planning.file_format("stytch")

    def then_rewrite(*args: Any, **kwargs: Any) -> Any:
        checked = files_of.validate_tree(*args, **kwargs)
        document = json.loads(acme.read_text())
        document["organization_id"] = "someone-else"
        acme.write_text(json.dumps(document))
        return checked

    rewriting = files_of._replace(validate_tree=then_rewrite)
    monkeypatch.setattr(planning, "file_format", lambda provider: rewriting)
    code, out, err = run(["plan"], capsys)
    assert code == 1
    assert out == ""
    assert f"{acme.relative_to(workdir)} changed during the plan: run it again" in err
    assert "Traceback" not in err


SEARCH = "/v1/b2b/organizations/search"
GLOBEX_ID = "organization-test-3c1d8e55-94a2-4f0b-b6d7-8e2f1a9c0d44"  # globex.json: "globex"
ACME_ID = "organization-test-07971b06-ac8b-4cdb-9c15-63b17e653931"  # acme.json: this id


def planned(capsys: pytest.CaptureFixture[str], *orgs: str) -> list[str]:
    """The organization ids (as written in their files) a plan limited by `orgs` covers."""
    code, out, err = run(["plan", "--format", "json", *(f"--org={o}" for o in orgs)], capsys)
    assert code == 0, err
    return sorted(o["organization_id"] for o in json.loads(out)["organizations"])


def test_org_takes_the_file_name_without_searching(
    live: Counting, capsys: pytest.CaptureFixture[str]
) -> None:
    assert planned(capsys, "acme") == [ACME_ID]
    assert planned(capsys, "acme.json", "globex") == ["globex", ACME_ID]
    # umbrella.json names its organization by external id: the file name finds it too
    assert planned(capsys, "umbrella") == ["umbrella-corp-8841"]
    assert planned(capsys, "umbrella-corp-8841", "umbrella.json") == ["umbrella-corp-8841"]
    assert SEARCH not in live.paths  # the files were enough


def test_org_takes_a_live_id_slug_or_external_id_the_file_does_not_use(
    live: Counting, capsys: pytest.CaptureFixture[str]
) -> None:
    # globex.json names its organization by slug, acme.json by id: each given the other way
    assert planned(capsys, GLOBEX_ID) == ["globex"]
    assert live.paths.count(SEARCH) == 1
    assert planned(capsys, "acme-42", "hooli") == [
        ACME_ID,
        "organization-test-9a3e6f21-7c84-4b0d-a5e2-61f8d3c7b940",  # hooli.json's id
    ]


def test_an_org_that_names_nothing_is_refused_with_the_closest_names(
    live: Counting, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(["plan", "--org", "globx", "--org", "acme"], capsys)
    assert (code, out) == (1, "")
    assert (
        "--org globx: no file in policies/orgs names this organization; did you mean globex?"
    ) in err
    assert "--org acme" not in err
    # cyberdyne exists live, but no file manages it
    code, _, err = run(["plan", "--org", "cyberdyne"], capsys)
    assert code == 1
    assert "--org cyberdyne: no file in policies/orgs names this organization\n" in err
    assert "the file's name, or a name it has live" in err
    assert not [p for p in live.paths if p.endswith(("cyberdyne", "globex", ACME_ID))]
