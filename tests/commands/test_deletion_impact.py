"""Deletion impact end to end: the CLI against the emulator over real HTTP, seeded with
the sample, whose initech still has `legacy-admin` held by two members (one directly,
both through the email domain initech.example). The plan says who depends on it, apply
refuses the deletion without --allow-delete-in-use, deletes it with the flag, and a
rollback brings the role back: to the member that held it directly (by the rollback),
and through the email domain's rule (which stayed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import stytch
from support.clirun import run
from support.emulated import PROJECT_ID, SECRET, SEED

from policysync.config import Limits
from policysync.emulator.seed import (
    ConnectionRule,
    EmailRule,
    GroupRule,
    MemberRole,
    RoleSource,
    SamlConnection,
    ScimConnection,
    ScimGroupRule,
    Seed,
    SeedMember,
    SeedOrganization,
)
from policysync.emulator.server import EmulatorThread, build
from policysync.emulator.store import Store
from policysync.journal import list_runs, load_run

INITECH = "organization-test-5b1f3c9e-2d4a-4e8b-9f61-0c7d2a8e4b13"
PETER = "member-test-2c8e4f1a-7b3d-4e96-a05c-1d9f6b2e8a47"  # holds legacy-admin directly
BILL = "member-test-9e1b3d5f-4a6c-4b8e-9d2f-7c3a5e1b9d60"  # through the email domain only
JOURNAL = Path(".policysync/journal")


def start(monkeypatch: pytest.MonkeyPatch, store: Store) -> EmulatorThread:
    monkeypatch.setenv("STYTCH_PROJECT_ID", PROJECT_ID)
    monkeypatch.setenv("STYTCH_SECRET", SECRET)
    thread = EmulatorThread(build(store, PROJECT_ID, SECRET, Limits(), None))
    return thread


def seeded(seed: Seed = SEED) -> Store:
    store = Store()
    store.load(seed)
    return store


def roles_of(url: str, member_id: str) -> dict[str, list[str]]:
    """A member's roles and how it holds each, read with the official SDK."""
    sdk = stytch.B2BClient(project_id=PROJECT_ID, secret=SECRET, environment=url)
    found = sdk.organizations.members.search(
        organization_ids=[INITECH],
        query={
            "operator": "AND",
            "operands": [{"filter_name": "member_ids", "filter_value": [member_id]}],
        },
    )
    (member,) = found.members
    return {r.role_id: sorted(s.type for s in r.sources) for r in member.roles}


def live_roles(url: str) -> set[str]:
    sdk = stytch.B2BClient(project_id=PROJECT_ID, secret=SECRET, environment=url)
    policy = sdk.rbac.organizations.get_org_policy(organization_id=INITECH).org_policy
    assert policy is not None
    return {r.role_id for r in policy.roles or []}


def test_an_in_use_deletion_is_refused_then_applied_with_the_flag_then_rolled_back(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with start(monkeypatch, seeded()) as live:
        monkeypatch.setenv("STYTCH_BASE_URL", live.url)
        code, out, err = run(["plan", "--format", "json", "--out", "plan.json"], capsys)
        assert code == 0, err
        (initech,) = [
            o for o in json.loads(out)["organizations"] if o["organization_id"] == INITECH
        ]
        (deletion,) = initech["role_changes"]
        assert deletion["role_id"] == "legacy-admin"
        assert deletion["in_use"] == {
            "members": 2,
            "rules": [{"kind": "email_domain", "detail": "initech.example"}],
        }
        creations = [
            c
            for o in json.loads(out)["organizations"]
            for c in o["role_changes"]
            if c["action"] != "delete"
        ]
        assert creations
        assert all(c["in_use"] is None for c in creations)

        code, _, err = run(["apply", "plan.json", "--allow-delete"], capsys)
        assert code == 1
        assert "the plan deletes 1 role in use; nothing was written" in err
        assert (
            f"role legacy-admin in {INITECH}: held by 2 members; assigned by email domain "
            "initech.example" in err
        )
        assert "--allow-delete-in-use" in err
        assert "legacy-admin" in live_roles(live.url)  # nothing was written
        assert not (workdir / JOURNAL).exists()

        code, out, err = run(
            ["apply", "plan.json", "--allow-delete", "--allow-delete-in-use"], capsys
        )
        assert code == 0, out + err
        assert "legacy-admin" not in live_roles(live.url)
        assert "legacy-admin" not in roles_of(live.url, PETER)  # Stytch takes it from them
        assert "legacy-admin" not in roles_of(live.url, BILL)
        (run_id,) = list_runs(workdir / JOURNAL)
        _, entries = load_run(workdir / JOURNAL, run_id)
        (entry,) = [e for e in entries if e.organization_id == INITECH]
        (held,) = entry.holders
        assert held.role_id == "legacy-admin"
        assert {(h.kind, h.id, h.detail) for h in held.holders} == {
            ("member", PETER, "direct_assignment, email_assignment"),
            ("member", BILL, "email_assignment"),
            ("email_domain", "initech.example", None),
        }

        code, out, err = run(["rollback", run_id, "--auto-approve"], capsys)
        assert code == 0, out + err
        assert "legacy-admin" in live_roles(live.url)
        # back as before: directly (the rollback), and through the email domain (a rule)
        assert roles_of(live.url, PETER)["legacy-admin"] == [
            "direct_assignment",
            "email_assignment",
        ]
        assert roles_of(live.url, BILL)["legacy-admin"] == ["email_assignment"]
        rollback_id = next(r for r in list_runs(workdir / JOURNAL) if r != run_id)
        _, entries = load_run(workdir / JOURNAL, rollback_id)
        (entry,) = [e for e in entries if e.organization_id == INITECH]
        assert [(o.action, o.role_id, o.detail) for o in entry.operations] == [
            ("assign", "legacy-admin", f"member {PETER}")
        ]


def test_a_role_come_into_use_since_the_plan_is_not_deleted_without_the_flag(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    nobody = SEED.model_copy(
        update={
            "members": (),
            "organizations": tuple(
                o.model_copy(update={"rbac_email_implicit_role_assignments": ()})
                for o in SEED.organizations
            ),
        }
    )
    store = seeded(nobody)
    with start(monkeypatch, store) as live:
        monkeypatch.setenv("STYTCH_BASE_URL", live.url)
        code, out, err = run(["plan", "--format", "json", "--out", "plan.json"], capsys)
        assert code == 0, err
        (initech,) = [
            o for o in json.loads(out)["organizations"] if o["organization_id"] == INITECH
        ]
        assert initech["role_changes"][0]["in_use"] == {"members": 0, "rules": []}
        # meanwhile someone is given the role
        store.load(
            nobody.model_copy(
                update={
                    "members": (
                        SeedMember(
                            organization_id=INITECH,
                            member_id="member-test-new",
                            email_address="new@initech.example",
                            roles=(
                                MemberRole(
                                    role_id="legacy-admin",
                                    sources=(RoleSource(type="direct_assignment"),),
                                ),
                            ),
                        ),
                    )
                }
            )
        )
        code, out, err = run(["apply", "plan.json", "--allow-delete"], capsys)
        assert code == 1
        assert "in use since the plan was made" in out
        assert "legacy-admin" in live_roles(live.url)
        assert roles_of(live.url, "member-test-new") == {"legacy-admin": ["direct_assignment"]}


def test_rules_of_every_kind_are_reported(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def rules(org: SeedOrganization) -> SeedOrganization:
        if org.organization_id != INITECH:
            return org
        return org.model_copy(
            update={
                "rbac_email_implicit_role_assignments": (
                    EmailRule(domain="initech.example", role_id="legacy-admin"),
                    EmailRule(domain="initrode.example", role_id="legacy-admin"),
                ),
                "saml_connections": (
                    SamlConnection(
                        connection_id="saml-connection-test-1",
                        saml_connection_implicit_role_assignments=(
                            ConnectionRule(role_id="legacy-admin"),
                        ),
                        saml_group_implicit_role_assignments=(
                            GroupRule(role_id="legacy-admin", group="admins"),
                            GroupRule(role_id="stytch_admin", group="it"),
                        ),
                    ),
                ),
                "scim_connection": ScimConnection(
                    connection_id="scim-connection-test-1",
                    scim_group_implicit_role_assignments=(
                        ScimGroupRule(role_id="legacy-admin", group_id="g-7", group_name="Ops"),
                    ),
                ),
            }
        )

    seed = SEED.model_copy(
        update={"members": (), "organizations": tuple(map(rules, SEED.organizations))}
    )
    with start(monkeypatch, seeded(seed)) as live:
        monkeypatch.setenv("STYTCH_BASE_URL", live.url)
        code, out, err = run(["plan", "--format", "json", "--org", "initech"], capsys)
        assert code == 0, err
        (initech,) = json.loads(out)["organizations"]
        assert initech["role_changes"][0]["in_use"] == {
            "members": 0,
            "rules": [
                {"kind": "email_domain", "detail": "initech.example"},
                {"kind": "email_domain", "detail": "initrode.example"},
                {"kind": "scim_group", "detail": "scim-connection-test-1 Ops"},
                {"kind": "sso_connection", "detail": "saml-connection-test-1"},
                {"kind": "sso_group", "detail": "saml-connection-test-1 admins"},
            ],
        }
        code, out, err = run(["plan", "--org", "initech"], capsys)
        assert code == 0, err
        assert (
            "(delete) assigned by email domain initech.example; assigned by email domain "
            "initrode.example; assigned by SCIM group scim-connection-test-1 Ops; assigned by "
            "SSO connection saml-connection-test-1; assigned by SSO group "
            "saml-connection-test-1 admins" in out
        )
