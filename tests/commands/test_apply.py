"""`policysync apply` and `rollback` end to end: the CLI against the emulator over real
HTTP on loopback, every final state read back with the official `stytch` SDK."""

from __future__ import annotations

import io
import json
import re
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import stytch
from starlette.responses import JSONResponse
from stytch.b2b.models.rbac import OrgPolicy as SdkOrgPolicy
from stytch.b2b.models.rbac import PolicyRole, PolicyRolePermission
from support.clirun import run
from support.policytree import expanded_policies

from policysync.cli import RUN_FORMATS
from policysync.config import Limits
from policysync.emulator.faults import DroppedConnection
from policysync.emulator.seed import Seed
from policysync.emulator.server import EmulatorThread, build
from policysync.emulator.store import Store
from policysync.journal import RunSummary, entry_name, list_runs, load_run
from policysync.models import OrgPolicy
from policysync.providers.pacing import Backoff
from policysync.views.run import RUN_RENDERERS

ROOT = Path(__file__).parent.parent.parent
SEED = Seed.model_validate_json((ROOT / "policies" / "emulator-seed.json").read_text())
PROJECT_ID = "project-test-11111111-2222-4333-8444-555555555555"
SECRET = "secret-test-apply-cli-cXVpdGVzZWNyZXQ"
JOURNAL = Path(".policysync/journal")
COLOUR = re.compile(r"\x1b\[3[0-9]m")  # a foreground colour (a bar hides the cursor)


def canonical(roles: Any) -> dict[str, tuple[str, dict[str, frozenset[str]]]]:
    """Roles as Stytch treats them: by id, actions per resource as sets."""
    out = {}
    for role in roles or []:
        role = role if isinstance(role, dict) else role.model_dump()
        grants: dict[str, set[str]] = {}
        for p in role.get("permissions") or []:
            grants.setdefault(p["resource_id"], set()).update(p.get("actions") or [])
        out[role["role_id"]] = (
            role.get("description") or "",
            {r: frozenset(a) for r, a in grants.items()},
        )
    return out


def desired() -> dict[str, OrgPolicy]:
    return expanded_policies(ROOT / "policies")


def seeded() -> dict[str, OrgPolicy]:
    """The seeded live policies, by every name a file may give an organization."""
    out = {}
    for org in SEED.organizations:
        for key in (org.organization_id, org.organization_slug, org.organization_external_id):
            if key:
                out[key] = org.org_policy
    return out


def changed() -> dict[str, OrgPolicy]:
    """The managed organizations whose live policy differs from their file."""
    live = seeded()
    return {
        k: v
        for k, v in desired().items()
        if canonical(v.model_dump()["roles"]) != canonical(live[k].model_dump()["roles"])
    }


class Live:
    def __init__(self, emulator: EmulatorThread) -> None:
        self.emulator = emulator
        self.sdk = stytch.B2BClient(project_id=PROJECT_ID, secret=SECRET, environment=emulator.url)

    def roles(self, organization_id: str) -> Any:
        """An organization's live roles, read with the official SDK."""
        response = self.sdk.rbac.organizations.get_org_policy(organization_id=organization_id)
        assert response.org_policy is not None
        return canonical([r.model_dump() for r in response.org_policy.roles or []])

    def set(self, organization_id: str, role_id: str, resource_id: str, action: str) -> None:
        """An out-of-band change, with the SDK."""
        policy = SdkOrgPolicy(
            roles=[
                PolicyRole(
                    role_id=role_id,
                    description="changed outside policysync",
                    permissions=[PolicyRolePermission(resource_id=resource_id, actions=[action])],
                )
            ]
        )
        self.sdk.rbac.organizations.set_org_policy(
            organization_id=organization_id, org_policy=policy
        )


def start(monkeypatch: pytest.MonkeyPatch, limits: Limits | None = None) -> EmulatorThread:
    store = Store()
    store.load(SEED)
    emulator = EmulatorThread(build(store, PROJECT_ID, SECRET, limits or Limits(), None))
    monkeypatch.setenv("STYTCH_PROJECT_ID", PROJECT_ID)
    monkeypatch.setenv("STYTCH_SECRET", SECRET)
    monkeypatch.setenv("STYTCH_BASE_URL", emulator.url)
    return emulator


@pytest.fixture
def live(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Live]:
    with start(monkeypatch) as emulator:
        yield Live(emulator)


def assert_all(live: Live, wanted: dict[str, OrgPolicy]) -> None:
    for org_id, policy in wanted.items():
        assert live.roles(org_id) == canonical(policy.model_dump()["roles"]), org_id


def unmanaged_untouched(live: Live) -> None:
    managed = desired().keys()
    for org in SEED.organizations:
        if org.organization_id not in managed:
            assert live.roles(org.organization_id) == canonical(
                org.org_policy.model_dump()["roles"]
            )


def test_clean_apply_then_plan_is_empty(
    live: Live, capsys: pytest.CaptureFixture[str], workdir: Path
) -> None:
    code, applied, shown = run(
        ["apply", "--auto-approve", "--allow-delete", "--allow-delete-in-use"], capsys
    )
    assert code == 0, shown
    assert "Apply: 4 applied, 3 unchanged, 0 stale, 0 failed, of 7 organizations." in applied
    assert "- role legacy-admin" in shown  # the plan was shown
    assert_all(live, desired())
    unmanaged_untouched(live)
    code, out, err = run(["plan", "--detailed-exitcode"], capsys)
    assert code == 0, out + err
    assert out.startswith("No changes.")
    # the journal: a prior for every organization written, equal to what was live
    (run_id,) = list_runs(workdir / JOURNAL)
    summary, entries = load_run(workdir / JOURNAL, run_id)
    assert summary.counts is not None
    assert summary.counts.applied == 4
    assert summary.counts.pending == 0
    assert {e.organization_id for e in entries} <= desired().keys()
    for entry in entries:
        assert entry.state == "applied"
        assert entry.prior == seeded()[entry.organization_id]
        assert entry.desired == desired()[entry.organization_id]
    assert f"policysync rollback {run_id}" in applied
    text = "".join(p.read_text() for p in (workdir / ".policysync").rglob("*") if p.is_file())
    assert SECRET not in text + applied + shown


def test_a_second_apply_of_the_same_saved_plan_changes_nothing(
    live: Live, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["plan", "--out", "plan.json"], capsys)[0] == 0
    assert run(["apply", "plan.json", "--allow-delete", "--allow-delete-in-use"], capsys)[0] == 0
    code, out, err = run(
        ["apply", "plan.json", "--allow-delete", "--allow-delete-in-use", "--format", "json"],
        capsys,
    )
    assert code == 0, err
    result = json.loads(out)
    assert (result["applied"], result["unchanged"], result["stale"]) == (0, 7, 0)
    assert_all(live, desired())


def test_the_journals_threads_end_with_the_apply(
    live: Live, capsys: pytest.CaptureFixture[str]
) -> None:
    """`policysync` leaves with os._exit once the command returns: by then every entry
    is on disk and the journal's writing threads are gone."""
    assert run(["plan", "--out", "plan.json"], capsys)[0] == 0
    before = set(threading.enumerate())  # other tests' journals, never closed, may linger
    assert run(["apply", "plan.json", "--allow-delete", "--allow-delete-in-use"], capsys)[0] == 0
    assert list_runs(JOURNAL)  # it journaled
    assert not [t for t in set(threading.enumerate()) - before if t.name.startswith("journal")]
    assert_all(live, desired())


def test_a_plan_that_cannot_be_saved_is_a_message(
    live: Live, capsys: pytest.CaptureFixture[str], workdir: Path
) -> None:
    code, out, err = run(["plan", "--out", "no-such-folder/plan.json"], capsys)
    assert code == 1
    assert "no-such-folder/plan.json: cannot save the plan there" in err
    assert "Traceback" not in err + out
    assert not list(workdir.rglob("*.tmp"))


def test_no_terminal_and_no_auto_approve_writes_nothing(
    live: Live, capsys: pytest.CaptureFixture[str], workdir: Path
) -> None:
    code, _out, err = run(["apply", "--allow-delete", "--allow-delete-in-use"], capsys)
    assert code == 1
    assert "no terminal to confirm on, so nothing was written" in err
    assert "--auto-approve" in err
    assert_all(live, seeded())
    assert not (workdir / JOURNAL).exists()


def test_deleting_roles_needs_allow_delete(
    live: Live, capsys: pytest.CaptureFixture[str], workdir: Path
) -> None:
    code, _out, err = run(["apply", "--auto-approve"], capsys)
    assert code == 1
    assert "deletes" in err
    assert "role legacy-admin in" in err
    assert "--allow-delete" in err
    assert_all(live, seeded())
    assert not (workdir / JOURNAL).exists()


def test_too_much_change_needs_force(
    live: Live, capsys: pytest.CaptureFixture[str], workdir: Path
) -> None:
    (workdir / "policysync.toml").write_text(
        "[apply]\nmax_change_share = 0.25\nguard_min_organizations = 5\n"
    )
    code, _, err = run(
        ["apply", "--auto-approve", "--allow-delete", "--allow-delete-in-use"], capsys
    )
    assert code == 1
    assert "changes 4 of 7 organizations, more than 25%" in err
    assert "--force" in err
    assert_all(live, seeded())
    code, _out, err = run(
        ["apply", "--auto-approve", "--allow-delete", "--allow-delete-in-use", "--force"], capsys
    )
    assert code == 0, err
    assert_all(live, desired())


def test_stale_plan_skips_the_changed_organization_only(
    live: Live, capsys: pytest.CaptureFixture[str], workdir: Path
) -> None:
    assert run(["plan", "--out", "plan.json"], capsys)[0] == 0
    acme = "organization-test-07971b06-ac8b-4cdb-9c15-63b17e653931"
    assert acme in desired()
    live.set(acme, "intruder", "documents", "read")
    code, out, _err = run(["apply", "plan.json", "--allow-delete", "--allow-delete-in-use"], capsys)
    assert code == 1
    assert f"stale    {acme}: stale: live changed since the plan was made" in out
    assert "Apply: 3 applied, 3 unchanged, 1 stale, 0 failed" in out
    assert "intruder" in live.roles(acme)  # left as the SDK set it
    assert_all(live, {k: v for k, v in desired().items() if k != acme})
    (run_id,) = list_runs(workdir / JOURNAL)
    _, entries = load_run(workdir / JOURNAL, run_id)
    (stale,) = [e for e in entries if e.organization_id == acme]
    assert stale.state == "skipped"


def test_one_organization_rejected_by_the_server_does_not_stop_the_others(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    wanted = changed()
    biggest = max(wanted, key=lambda k: len(wanted[k].roles))
    most = len(wanted[biggest].roles)
    assert sorted(len(p.roles) for p in wanted.values())[-2] < most  # exactly one too big
    with start(monkeypatch, Limits(max_roles_per_org=most - 1)) as emulator:
        live = Live(emulator)
        code, out, _err = run(
            ["apply", "--auto-approve", "--allow-delete", "--allow-delete-in-use"], capsys
        )
        assert code == 1
        (line,) = [x for x in out.splitlines() if x.startswith("failed")]
        assert biggest in line
        assert "(request request-id-test-" in line
        assert live.roles(biggest) == canonical(seeded()[biggest].model_dump()["roles"])
        assert_all(live, {k: v for k, v in desired().items() if k != biggest})
        (run_id,) = list_runs(workdir / JOURNAL)
        _, entries = load_run(workdir / JOURNAL, run_id)
        (failed,) = [e for e in entries if e.organization_id == biggest]
        assert failed.state == "failed"
        assert failed.error is not None
        assert failed.error.request_id is not None
        assert failed.prior == seeded()[biggest]


class WrongEcho:
    """In front of the emulator: a PUT to one organization is carried out, but answered
    with an empty policy, as if Stytch had stored something other than what was sent
    (or, with `reorder`, with the policy sent, its roles and actions in reverse order)."""

    def __init__(self, app: Any, organization_id: str, reorder: bool = False) -> None:
        self.app, self.organization_id, self.reorder = app, organization_id, reorder

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "PUT":
            await self.app(scope, receive, send)
            return
        if not scope["path"].endswith("/" + self.organization_id):
            await self.app(scope, receive, send)
            return

        async def rewrite(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message["headers"] if k != b"content-length"]
                message = {**message, "headers": headers}
            elif message["type"] == "http.response.body" and message.get("body"):
                body = json.loads(message["body"])
                roles = body["org_policy"]["roles"] if self.reorder else []
                for role in roles:
                    for permission in role["permissions"]:
                        permission["actions"].reverse()
                body["org_policy"] = {"roles": roles[::-1]}
                message = {**message, "body": json.dumps(body).encode()}
            await send(message)

        await self.app(scope, receive, rewrite)


def test_an_echo_other_than_the_policy_sent_leaves_that_organization_unknown(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    wanted = changed()
    odd = next(k for k, v in sorted(wanted.items()) if v.roles)
    store = Store()
    store.load(SEED)
    app = WrongEcho(build(store, PROJECT_ID, SECRET, Limits(), None), odd)
    monkeypatch.setenv("STYTCH_PROJECT_ID", PROJECT_ID)
    monkeypatch.setenv("STYTCH_SECRET", SECRET)
    with EmulatorThread(app) as emulator:
        monkeypatch.setenv("STYTCH_BASE_URL", emulator.url)
        code, out, _err = run(
            ["apply", "--auto-approve", "--allow-delete", "--allow-delete-in-use"], capsys
        )
        assert code == 1
        (line,) = [x for x in out.splitlines() if x.startswith("unknown")]
        assert odd in line
        assert "the system stored a policy other than the one sent" in line
        assert_all(Live(emulator), {k: v for k, v in desired().items() if k != odd})
    (run_id,) = list_runs(workdir / JOURNAL)
    _, entries = load_run(workdir / JOURNAL, run_id)
    (entry,) = [e for e in entries if e.organization_id == odd]
    assert entry.state == "unknown"  # something landed, not the policy sent
    assert entry.error is not None
    assert entry.error.error_type == "echo_mismatch"
    assert entry.prior == seeded()[odd]


def test_an_echo_in_another_order_is_the_policy_sent(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Roles and actions are sets to Stytch: an echo listing them in another order is
    the policy sent."""
    wanted = changed()
    odd = next(k for k, v in sorted(wanted.items()) if len(v.roles) > 1)
    store = Store()
    store.load(SEED)
    app = WrongEcho(build(store, PROJECT_ID, SECRET, Limits(), None), odd, reorder=True)
    monkeypatch.setenv("STYTCH_PROJECT_ID", PROJECT_ID)
    monkeypatch.setenv("STYTCH_SECRET", SECRET)
    with EmulatorThread(app) as emulator:
        monkeypatch.setenv("STYTCH_BASE_URL", emulator.url)
        code, out, _err = run(
            ["apply", "--auto-approve", "--allow-delete", "--allow-delete-in-use"], capsys
        )
        assert code == 0, out
        assert_all(Live(emulator), desired())


class LostAnswers:
    """In front of the emulator: every PUT to one organization is carried out (when
    `landed`) or not, and its connection dropped before the answer; every read of it
    after the first PUT is answered 503, so that the client cannot settle the outcome."""

    def __init__(self, app: Any, organization_id: str, landed: bool) -> None:
        self.app, self.organization_id, self.landed = app, organization_id, landed
        self.put = False

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope["path"].endswith("/" + self.organization_id):
            await self.app(scope, receive, send)
            return
        if scope["method"] == "PUT":
            self.put = True
            if self.landed:
                await self.app(scope, receive, _discard)
            await send({"type": "http.response.start", "status": 200, "headers": []})
            raise DroppedConnection
        if self.put:
            body = {"status_code": 503, "error_type": "service_unavailable", "error_message": "x"}
            await JSONResponse(body, 503)(scope, receive, send)
            return
        await self.app(scope, receive, send)


async def _discard(message: Any) -> None:
    return None


@pytest.fixture
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Backoff waits a thousandth of what it would: the retries happen, quickly."""
    delay = Backoff.delay

    def quick(self: Backoff, *args: Any, **kwargs: Any) -> float | None:
        wait = delay(self, *args, **kwargs)
        return None if wait is None else wait / 1000

    monkeypatch.setattr(Backoff, "delay", quick)


@pytest.mark.parametrize("landed", [True, False])
@pytest.mark.usefixtures("quick_retries")
def test_a_put_whose_answer_is_lost_is_unknown_and_rollback_undoes_it_where_it_landed(
    landed: bool, workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    lost = sorted(changed())[0]
    store = Store()
    store.load(SEED)
    monkeypatch.setenv("STYTCH_PROJECT_ID", PROJECT_ID)
    monkeypatch.setenv("STYTCH_SECRET", SECRET)
    with EmulatorThread(
        LostAnswers(build(store, PROJECT_ID, SECRET, Limits(), None), lost, landed)
    ) as emulator:
        monkeypatch.setenv("STYTCH_BASE_URL", emulator.url)
        code, out, _err = run(
            ["apply", "--auto-approve", "--allow-delete", "--allow-delete-in-use"], capsys
        )
    (run_id,) = list_runs(workdir / JOURNAL)
    assert code == 1, out  # not every change is known to be made
    (line,) = [x for x in out.splitlines() if lost in x]
    assert line.startswith(f"unknown  {lost}: connection_error: no answer from ")
    assert "Apply: 3 applied, 3 unchanged, 0 stale, 0 failed, 1 unknown, of 7 organizations." in out
    assert "The outcome of 1 write is unknown (not applied, not failed: it may have landed)" in out
    assert "`policysync plan`" in out
    assert f"`policysync rollback {run_id}`" in out
    _, entries = load_run(workdir / JOURNAL, run_id)
    (entry,) = [e for e in entries if e.organization_id == lost]
    assert entry.state == "unknown"
    assert entry.prior == seeded()[lost]

    # the same organizations, answering as they should
    with EmulatorThread(build(store, PROJECT_ID, SECRET, Limits(), None)) as emulator:
        monkeypatch.setenv("STYTCH_BASE_URL", emulator.url)
        live = Live(emulator)
        landed_as = desired()[lost] if landed else seeded()[lost]
        assert live.roles(lost) == canonical(landed_as.model_dump()["roles"])
        code, out, err = run(["rollback", run_id, "--auto-approve"], capsys)
        assert code == 0, out + err
        restored = "4 applied, 0 unchanged" if landed else "3 applied, 1 unchanged"
        assert f"Rollback: {restored}, 0 stale, 0 failed, of 4 organizations." in out
        assert_all(live, {k: seeded()[k] for k in desired()})


def test_rollback_restores_the_exact_priors(
    live: Live, capsys: pytest.CaptureFixture[str], workdir: Path
) -> None:
    assert (
        run(["apply", "--auto-approve", "--allow-delete", "--allow-delete-in-use"], capsys)[0] == 0
    )
    (run_id,) = list_runs(workdir / JOURNAL)
    code, out, err = run(["rollback", run_id, "--auto-approve"], capsys)
    assert code == 0, err
    assert "Rollback: 4 applied" in out
    assert_all(live, {k: seeded()[k] for k in desired()})
    unmanaged_untouched(live)
    runs = list_runs(workdir / JOURNAL)
    assert len(runs) == 2
    summary, _ = load_run(workdir / JOURNAL, runs[0] if runs[0] != run_id else runs[1])
    assert summary.kind == "rollback"
    assert summary.rolled_back_run == run_id


def test_rollback_leaves_an_organization_changed_since(
    live: Live, capsys: pytest.CaptureFixture[str], workdir: Path
) -> None:
    assert (
        run(["apply", "--auto-approve", "--allow-delete", "--allow-delete-in-use"], capsys)[0] == 0
    )
    (run_id,) = list_runs(workdir / JOURNAL)
    acme = "organization-test-07971b06-ac8b-4cdb-9c15-63b17e653931"
    live.set(acme, "newer", "documents", "read")
    code, out, _err = run(["rollback", run_id, "--auto-approve"], capsys)
    assert code == 1
    assert f"stale    {acme}: stale: live changed since run {run_id}" in out
    assert set(live.roles(acme)) == {"newer"}
    others = {k: seeded()[k] for k in desired() if k != acme}
    assert_all(live, others)


def test_rollback_of_one_organization(
    live: Live, capsys: pytest.CaptureFixture[str], workdir: Path
) -> None:
    assert (
        run(["apply", "--auto-approve", "--allow-delete", "--allow-delete-in-use"], capsys)[0] == 0
    )
    (run_id,) = list_runs(workdir / JOURNAL)
    acme = "organization-test-07971b06-ac8b-4cdb-9c15-63b17e653931"
    code, _out, err = run(["rollback", run_id, "--org", acme, "--auto-approve"], capsys)
    assert code == 0, err
    assert live.roles(acme) == canonical(seeded()[acme].model_dump()["roles"])
    assert_all(live, {k: v for k, v in desired().items() if k != acme})


def test_rollback_takes_an_organization_by_file_name_or_live_name(
    live: Live, capsys: pytest.CaptureFixture[str], workdir: Path
) -> None:
    assert (
        run(["apply", "--auto-approve", "--allow-delete", "--allow-delete-in-use"], capsys)[0] == 0
    )
    (run_id,) = list_runs(workdir / JOURNAL)
    acme = "organization-test-07971b06-ac8b-4cdb-9c15-63b17e653931"
    hooli = "organization-test-9a3e6f21-7c84-4b0d-a5e2-61f8d3c7b940"
    code, out, err = run(["rollback", run_id, "--org", "hoolie", "--auto-approve"], capsys)
    assert (code, out) == (1, "")
    assert f"--org hoolie: run {run_id} did not write this organization; did you mean hooli?" in err
    # globex is managed, but the run did not change it
    code, out, err = run(["rollback", run_id, "--org", "globex", "--auto-approve"], capsys)
    assert (code, out) == (1, "")
    assert f"--org globex: run {run_id} did not write this organization" in err
    assert list_runs(workdir / JOURNAL) == [run_id]
    # hooli by its file's name, acme by its external id (its entry names it by its id)
    args = ["rollback", run_id, "--org", "hooli", "--org", "acme-42", "--auto-approve"]
    code, out, err = run(args, capsys)
    assert code == 0, err
    assert "Rollback: 2 applied" in out
    for org in (acme, hooli):
        assert live.roles(org) == canonical(seeded()[org].model_dump()["roles"])
    assert_all(live, {k: v for k, v in desired().items() if k not in (acme, hooli)})


def test_rollback_refuses_a_journal_that_does_not_add_up(
    live: Live, capsys: pytest.CaptureFixture[str], workdir: Path
) -> None:
    assert (
        run(["apply", "--auto-approve", "--allow-delete", "--allow-delete-in-use"], capsys)[0] == 0
    )
    (run_id,) = list_runs(JOURNAL)
    folder = JOURNAL / run_id
    edited, deleted, copied, intact = sorted(changed())
    # by hand: a role granting every member action added to a prior, an entry deleted,
    # and another organization's entry copied over one
    path = folder / entry_name(edited)
    entry = json.loads(path.read_text())
    everything = {"resource_id": "stytch.member", "actions": ["*"]}
    entry["prior"]["roles"].append({"role_id": "x", "description": "", "permissions": [everything]})
    path.write_text(json.dumps(entry))
    (folder / entry_name(deleted)).unlink()
    (folder / entry_name(copied)).write_bytes((folder / entry_name(intact)).read_bytes())

    code, out, err = run(["rollback", run_id, "--auto-approve"], capsys)
    assert code == 1
    assert out == ""
    assert f"run {run_id}: its journal does not add up, so it is not rolled back" in err
    assert f"{path}: its prior does not match its prior_fingerprint" in err
    assert (
        f"{folder / entry_name(deleted)}: missing: run.json lists it as the entry of {deleted}"
        in err
    )
    assert (
        f"{folder / entry_name(copied)}: holds the entry of organization {intact}, whose file "
        f"is {entry_name(intact)}: copied or renamed"
    ) in err
    assert "--org" in err
    assert "Traceback" not in err
    assert list_runs(JOURNAL) == [run_id]  # nothing written, not even a rollback's journal
    assert_all(live, desired())

    # --org restores the intact entries; a damaged one stays refused
    code, out, err = run(["rollback", run_id, "--org", intact, "--auto-approve"], capsys)
    assert code == 0, err
    assert "Rollback: 1 applied" in out
    assert live.roles(intact) == canonical(seeded()[intact].model_dump()["roles"])
    for damaged in (edited, deleted, copied):
        code, _out, err = run(["rollback", run_id, "--org", damaged, "--auto-approve"], capsys)
        assert code == 1
        assert "does not add up" in err
        assert live.roles(damaged) == canonical(desired()[damaged].model_dump()["roles"])


def test_a_killed_run_without_a_manifest_is_rolled_back(
    live: Live, capsys: pytest.CaptureFixture[str], workdir: Path
) -> None:
    assert (
        run(["apply", "--auto-approve", "--allow-delete", "--allow-delete-in-use"], capsys)[0] == 0
    )
    (run_id,) = list_runs(JOURNAL)
    run_json = JOURNAL / run_id / "run.json"
    finished = RunSummary.model_validate_json(run_json.read_text())
    assert finished.entries is not None
    assert len(finished.entries) == 4
    # run.json as a run killed before it finished left it
    killed = finished.model_copy(update={"finished_at": None, "counts": None, "entries": None})
    run_json.write_text(killed.model_dump_json(indent=2))
    code, out, err = run(["rollback", run_id, "--auto-approve"], capsys)
    assert code == 0, err
    assert f"note: run {run_id} has no manifest (it did not finish)" in err
    assert "Rollback: 4 applied" in out
    assert_all(live, {k: seeded()[k] for k in desired()})


def test_rollback_of_an_unknown_run_lists_the_runs(
    live: Live, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        run(["apply", "--auto-approve", "--allow-delete", "--allow-delete-in-use"], capsys)[0] == 0
    )
    code, _, err = run(["rollback", "20200101T000000Z-abcdef", "--auto-approve"], capsys)
    assert code == 1
    assert "no run 20200101T000000Z-abcdef" in err
    assert "newest first" in err
    code, _out, err = run(["rollback", "../etc", "--auto-approve"], capsys)
    assert code == 1
    assert "is not a run id" in err


def test_a_saved_plan_for_another_project_is_refused(
    live: Live, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run(["plan", "--out", "plan.json"], capsys)[0] == 0
    monkeypatch.setenv("STYTCH_PROJECT_ID", "project-test-00000000-0000-4000-8000-000000000009")
    code, _out, err = run(["apply", "plan.json", "--allow-delete", "--allow-delete-in-use"], capsys)
    assert code == 1
    assert "made for project" in err
    monkeypatch.setenv("STYTCH_PROJECT_ID", PROJECT_ID)
    assert_all(live, seeded())


def test_an_edited_saved_plan_is_refused(live: Live, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["plan", "--out", "plan.json"], capsys)[0] == 0
    text = Path("plan.json").read_text()
    Path("plan.json").write_text(text.replace('"read"', '"delete"', 1))
    code, _out, err = run(["apply", "plan.json", "--allow-delete", "--allow-delete-in-use"], capsys)
    assert code == 1
    assert "checksum mismatch" in err
    assert_all(live, seeded())


def test_json_result_is_described_by_its_schema(
    live: Live, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(
        ["apply", "--auto-approve", "--allow-delete", "--allow-delete-in-use", "--format", "json"],
        capsys,
    )
    assert code == 0, err
    document = json.loads(out)
    schema = json.loads((ROOT / "schemas" / "run-result.schema.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(document)
    assert document["kind"] == "apply"
    assert [o["result"] for o in document["organizations"]].count("applied") == 4
    code, out, err = run(["apply", "--auto-approve", "--format", "markdown"], capsys)
    assert code == 0, err  # nothing left to change: nothing to delete either
    assert out == ""
    assert "No changes. 7 organizations match their files." in err


class Terminal(io.StringIO):
    """Standard input that is a terminal, with the user's answer typed in."""

    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("answer", ["no", "y", ""])
def test_on_a_terminal_anything_but_yes_writes_nothing(
    answer: str,
    live: Live,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    workdir: Path,
) -> None:
    monkeypatch.setattr(sys, "stdin", Terminal(answer + "\n"))
    code, out, err = run(["apply", "--allow-delete", "--allow-delete-in-use"], capsys)
    assert code == 1
    assert "Apply these changes to project" in err
    assert "not confirmed: nothing was written" in err
    assert out == ""
    assert_all(live, seeded())
    assert not (workdir / JOURNAL).exists()


def test_on_a_terminal_yes_applies(
    live: Live, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", Terminal("yes\n"))
    code, out, err = run(
        ["apply", "--allow-delete", "--allow-delete-in-use", "--format", "markdown"], capsys
    )
    assert code == 0, err
    assert out.startswith("**Apply: 4 applied, 3 unchanged, 0 stale, 0 failed, of 7 organ")
    assert "```\napplied  organization-test-07971b06" in out
    assert_all(live, desired())


def test_run_formats_are_the_renderers() -> None:
    assert set(RUN_FORMATS) == set(RUN_RENDERERS)


def test_journal_setting_is_relative_to_the_settings_file(
    live: Live, capsys: pytest.CaptureFixture[str], workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (workdir / "ci").mkdir()
    (workdir / "ci" / "policysync.toml").write_text(
        'policies = "../policies"\njournal = "../state/journal"\n'
    )
    monkeypatch.chdir(workdir / "ci")
    code, out, err = run(
        ["apply", "--auto-approve", "--allow-delete", "--allow-delete-in-use"], capsys
    )
    assert code == 0, err
    (run_id,) = list_runs(workdir / "state" / "journal")
    assert f"Journal: ../state/journal/{run_id}." in out
    assert f"policysync rollback {run_id} --journal ../state/journal" in out


def test_without_a_terminal_apply_and_rollback_show_no_progress_and_no_colour(
    live: Live, capsys: pytest.CaptureFixture[str], workdir: Path
) -> None:
    code, out, err = run(
        ["apply", "--auto-approve", "--allow-delete", "--allow-delete-in-use"], capsys
    )
    assert code == 0, err
    assert "- role legacy-admin" in err  # the plan, on stderr
    assert "writing org policies" not in err
    assert "\x1b[" not in out + err  # no colour, no bar
    (run_id,) = list_runs(workdir / JOURNAL)
    code, out, err = run(["rollback", run_id, "--auto-approve"], capsys)
    assert code == 0, err
    assert err == ""
    assert "\x1b[" not in out


def test_on_a_terminal_apply_and_rollback_show_progress_on_stderr(
    live: Live, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, workdir: Path
) -> None:
    """stderr a terminal, stdout a pipe: the plan is coloured, a bar counts the writes
    to 100%, and stdout holds the JSON result alone."""
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    code, out, err = run(
        ["apply", "--auto-approve", "--allow-delete", "--allow-delete-in-use", "--format", "json"],
        capsys,
    )
    assert code == 0, err
    assert "reading live org policies" in err  # apply's own plan
    assert re.search(r"writing org policies +\[#+\] +100%", err)  # 4 written, 4 ticks
    assert COLOUR.search(err)  # the plan's symbols
    assert json.loads(out)["applied"] == 4
    (run_id,) = list_runs(workdir / JOURNAL)
    code, out, err = run(["rollback", run_id, "--auto-approve", "--format", "json"], capsys)
    assert code == 0, err
    assert re.search(r"putting back org policies +\[#+\] +100%", err)
    assert json.loads(out)["applied"] == 4
    assert_all(live, {k: seeded()[k] for k in desired()})


def test_forced_colour_without_a_terminal_and_a_terminal_on_stdout_only(
    live: Live, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FORCE_COLOR", "1")
    code, out, err = run(["plan"], capsys)
    assert code == 0, err
    assert COLOUR.search(out)
    assert err == ""  # FORCE_COLOR makes no terminal: no progress bar
    monkeypatch.delenv("FORCE_COLOR")
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    code, _out, err = run(
        ["apply", "--auto-approve", "--allow-delete", "--allow-delete-in-use"], capsys
    )
    assert code == 0, err
    assert "- role legacy-admin" in err
    assert "\x1b[" not in err  # stderr is no terminal: no colour, no bar
