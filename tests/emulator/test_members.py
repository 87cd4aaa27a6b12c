"""Members and the rules that assign roles implicitly, as the emulator serves them: read
with the official Stytch SDK (whose models are the strictest reader of Stytch's shapes),
and what the SDK does not exercise in-process."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import stytch

from policysync.config import Limits
from policysync.emulator.app import Api, create_app
from policysync.emulator.seed import (
    ConnectionRule,
    GroupRule,
    MemberRole,
    RoleSource,
    SamlConnection,
    ScimConnection,
    ScimGroupRule,
    Seed,
    SeedMember,
)
from policysync.emulator.server import EmulatorThread, build
from policysync.emulator.store import Store
from policysync.models import OrgPolicy

from .conftest import PROJECT_ID, SECRET, demo_seed

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

DEMO = demo_seed()
INITECH = next(o for o in DEMO.organizations if o.organization_slug == "initech")
ACME = next(o for o in DEMO.organizations if o.organization_slug == "acme")
SEARCH = "/v1/b2b/organizations/members/search"


def with_connections(seed: Seed) -> Seed:
    def connect(org: Any) -> Any:
        if org.organization_id != INITECH.organization_id:
            return org
        return org.model_copy(
            update={
                "saml_connections": (
                    SamlConnection(
                        connection_id="saml-connection-test-1",
                        display_name="Okta",
                        saml_connection_implicit_role_assignments=(
                            ConnectionRule(role_id="legacy-admin"),
                        ),
                        saml_group_implicit_role_assignments=(
                            GroupRule(role_id="legacy-admin", group="admins"),
                        ),
                    ),
                ),
                "scim_connection": ScimConnection(
                    connection_id="scim-connection-test-1",
                    scim_group_implicit_role_assignments=(
                        ScimGroupRule(role_id="legacy-admin", group_id="g-1", group_name="Ops"),
                    ),
                ),
            }
        )

    return seed.model_copy(update={"organizations": tuple(map(connect, seed.organizations))})


@pytest.fixture
def store() -> Iterator[Store]:
    s = Store()
    s.load(with_connections(DEMO))
    yield s
    s.close()


@pytest.fixture
def sdk(store: Store) -> Iterator[stytch.B2BClient]:
    with EmulatorThread(build(store, PROJECT_ID, SECRET, Limits())) as running:
        yield stytch.B2BClient(project_id=PROJECT_ID, secret=SECRET, environment=running.url)


def by_role(role_id: str) -> dict[str, Any]:
    return {
        "operator": "AND",
        "operands": [{"filter_name": "member_roles", "filter_value": [role_id]}],
    }


def test_member_search_by_role_parses_with_the_sdk(sdk: stytch.B2BClient) -> None:
    found = sdk.organizations.members.search(
        organization_ids=[INITECH.organization_id], query=by_role("legacy-admin")
    )
    assert found.results_metadata.total == 2
    assert sorted(m.name for m in found.members) == ["Bill Lumbergh", "Peter Gibbons"]
    assert set(found.organizations) == {INITECH.organization_id}
    peter = next(m for m in found.members if m.name == "Peter Gibbons")
    (held,) = peter.roles
    assert [s.type for s in held.sources] == ["direct_assignment", "email_assignment"]
    nobody = sdk.organizations.members.search(
        organization_ids=[ACME.organization_id], query=by_role("legacy-admin")
    )
    assert nobody.members == []
    assert nobody.results_metadata.total == 0


def test_member_search_pages_by_cursor(sdk: stytch.B2BClient) -> None:
    first = sdk.organizations.members.search(organization_ids=[INITECH.organization_id], limit=1)
    assert len(first.members) == 1
    assert first.results_metadata.next_cursor
    second = sdk.organizations.members.search(
        organization_ids=[INITECH.organization_id],
        limit=1,
        cursor=first.results_metadata.next_cursor,
    )
    assert len(second.members) == 1
    assert second.results_metadata.next_cursor is None
    assert first.members[0].member_id < second.members[0].member_id


def test_the_organization_and_its_connections_carry_their_rules(sdk: stytch.B2BClient) -> None:
    org = sdk.organizations.get(organization_id="initech").organization
    assert [(r.domain, r.role_id) for r in org.rbac_email_implicit_role_assignments] == [
        ("initech.example", "legacy-admin")
    ]
    (saml,) = sdk.sso.get_connections(organization_id=INITECH.organization_id).saml_connections
    assert saml.connection_id == "saml-connection-test-1"
    assert [r.role_id for r in saml.saml_connection_implicit_role_assignments] == ["legacy-admin"]
    assert [(r.role_id, r.group) for r in saml.saml_group_implicit_role_assignments] == [
        ("legacy-admin", "admins")
    ]
    scim = sdk.scim.connection.get(organization_id=INITECH.organization_id).connection
    assert scim is not None
    assert [(r.role_id, r.group_id) for r in scim.scim_group_implicit_role_assignments] == [
        ("legacy-admin", "g-1")
    ]
    assert sdk.scim.connection.get(organization_id=ACME.organization_id).connection is None
    assert sdk.sso.get_connections(organization_id=ACME.organization_id).saml_connections == []


def test_update_member_roles_replaces_the_direct_ones_only(
    sdk: stytch.B2BClient, store: Store
) -> None:
    bill = "member-test-9e1b3d5f-4a6c-4b8e-9d2f-7c3a5e1b9d60"
    updated = sdk.organizations.members.update(
        organization_id="initech", member_id=bill, roles=["legacy-admin"]
    )
    roles = {r.role_id: [s.type for s in r.sources] for r in updated.member.roles}
    # stytch_admin was direct only: gone; legacy-admin, implicit, is now direct too
    assert roles == {"legacy-admin": ["direct_assignment", "email_assignment"]}


def test_deleting_a_role_takes_it_from_its_members_and_its_rules_bring_it_back(
    store: Store,
) -> None:
    legacy = INITECH.org_policy
    store.set_org_policy(INITECH.organization_id, OrgPolicy(roles=()))
    page, total, _ = store.search_members(
        [INITECH.organization_id], {"legacy-admin"}, None, 100, None
    )
    assert (page, total) == ([], 0)
    rules = store.rules(INITECH.organization_id)  # the rules are settings: they stay
    assert [r.role_id for r in rules.rbac_email_implicit_role_assignments] == ["legacy-admin"]
    store.set_org_policy(INITECH.organization_id, legacy)  # re-created
    page, _, _ = store.search_members([INITECH.organization_id], {"legacy-admin"}, None, 100, None)
    held = {
        m.name: [s.type for r in m.roles for s in r.sources if r.role_id == "legacy-admin"]
        for m in page
    }
    # the direct assignment is gone for good; the implicit one follows the rule
    assert held == {"Bill Lumbergh": ["email_assignment"], "Peter Gibbons": ["email_assignment"]}


def test_the_dump_seeds_the_same_state_again(store: Store) -> None:
    dumped = store.dump()
    again = Store()
    again.load(dumped)
    assert again.dump() == dumped
    assert len(dumped.members) == 2
    (initech,) = [o for o in dumped.organizations if o.organization_slug == "initech"]
    assert initech.scim_connection is not None
    assert initech.saml_connections[0].connection_id == "saml-connection-test-1"


def call(store: Store, method: str, path: str, body: Any = None) -> httpx.Response:
    app = create_app(Api(store, PROJECT_ID, SECRET, Limits()))

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://emulator") as client:
            return await client.request(
                method, path, auth=(PROJECT_ID, SECRET), content=json.dumps(body)
            )

    return asyncio.run(go())


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "organization_ids must list at least one."),
        ({"organization_ids": "initech"}, "organization_ids must list at least one."),
        (
            {
                "organization_ids": ["initech"],
                "query": {"operator": "AND", "operands": [{"filter_name": "member_email_fuzzy"}]},
            },
            "The emulator serves the member search filters member_roles, member_ids.",
        ),
        (
            {
                "organization_ids": ["initech"],
                "query": {
                    "operator": "AND",
                    "operands": [{"filter_name": "member_roles", "filter_value": "auditor"}],
                },
            },
            "member_roles: filter_value must be a list of strings.",
        ),
        ({"organization_ids": ["initech"], "limit": 0}, "limit must be between 1 and 1000."),
        ({"organization_ids": ["initech"], "cursor": "bogus"}, "cursor is not one"),
    ],
)
def test_a_bad_member_search_is_a_400(store: Store, body: Any, message: str) -> None:
    response = call(store, "POST", SEARCH, body)
    assert response.status_code == 400
    assert response.json()["error_type"] == "invalid_argument"
    assert message in response.json()["error_message"]


def test_members_are_updated_with_existing_roles_only(store: Store) -> None:
    path = "/v1/b2b/organizations/initech/members/member-test-2c8e4f1a-7b3d-4e96-a05c-1d9f6b2e8a47"
    response = call(store, "PUT", path, {"roles": ["ghost"]})
    assert response.status_code == 400
    assert "'ghost' does not exist" in response.json()["error_message"]
    response = call(store, "PUT", "/v1/b2b/organizations/initech/members/nobody", {"roles": []})
    assert response.status_code == 404
    assert response.json()["error_type"] == "member_not_found"
    store.load(
        DEMO.model_copy(
            update={
                "members": (
                    SeedMember(
                        organization_id="initech",
                        member_id="member-test-x",
                        email_address="x@initech.example",
                        roles=(
                            MemberRole(
                                role_id="legacy-admin", sources=(RoleSource(type="sso_connection"),)
                            ),
                        ),
                    ),
                )
            }
        )
    )
    page, _, _ = store.search_members([INITECH.organization_id], None, None, 10, None)
    assert [m.organization_id for m in page] == [INITECH.organization_id]  # named by its id
