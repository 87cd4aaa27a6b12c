"""The official Stytch Python SDK against the emulator, over real HTTP on loopback.

Every call must parse: the SDK's pydantic models are the strictest reader of Stytch's
response shapes that we have.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import stytch
from stytch.b2b.api.rbac_organizations import Organizations as SdkOrgPolicies
from stytch.b2b.models.organizations import SearchQuery, SearchQueryOperator
from stytch.b2b.models.rbac import OrgPolicy, PolicyRole, PolicyRolePermission
from stytch.core.response_base import StytchError

from policysync.config import Limits
from policysync.emulator.seed import Seed, SeedOrganization
from policysync.emulator.server import EmulatorThread, build
from policysync.emulator.store import Store

from .conftest import PROJECT_ID, SECRET, demo_seed

# The SDK's own deprecations (pydantic `.dict()`, aiohttp `auth=`) are not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

DEMO = demo_seed()
ODD = SeedOrganization(
    organization_id="organization-test-with/slash",
    organization_name="Odd Names",
    organization_slug="odd-names",
    organization_external_id="team+one/two",
)
OFF = SeedOrganization(
    organization_id="organization-test-feature-off",
    organization_name="No Org Policies",
    organization_slug="feature-off",
    org_policy_disabled=True,
)
SEED = Seed(policy=DEMO.policy, organizations=(*DEMO.organizations, ODD, OFF))
BY_SLUG = {o.organization_slug: o for o in SEED.organizations}
ACME, GLOBEX = BY_SLUG["acme"], BY_SLUG["globex"]


@pytest.fixture(scope="module")
def shared() -> Iterator[tuple[Store, EmulatorThread]]:
    store = Store()
    store.load(SEED)
    try:
        with EmulatorThread(build(store, PROJECT_ID, SECRET, Limits())) as emulator:
            yield store, emulator
    finally:
        store.close()


@pytest.fixture
def running(shared: tuple[Store, EmulatorThread]) -> EmulatorThread:
    """One server for the module; every test starts from the seed."""
    store, emulator = shared
    store.load(SEED)
    return emulator


@pytest.fixture
def client(running: EmulatorThread) -> stytch.B2BClient:
    assert running.url.startswith("http://127.0.0.1:")
    return stytch.B2BClient(project_id=PROJECT_ID, secret=SECRET, environment=running.url)


def plain(roles: Any) -> list[dict[str, Any]]:
    """SDK or policysync roles as plain JSON values, for comparison."""
    out: list[dict[str, Any]] = []
    for r in roles:
        data = r.model_dump(mode="json") if hasattr(r, "model_dump") else r
        out.append(
            {
                "role_id": data["role_id"],
                "description": data["description"],
                "permissions": [
                    {"resource_id": p["resource_id"], "actions": list(p["actions"])}
                    for p in data["permissions"]
                ],
            }
        )
    return out


def sdk_role(role_id: str, resource_id: str, actions: list[str], description: str = "") -> Any:
    return PolicyRole(
        role_id=role_id,
        description=description,
        permissions=[PolicyRolePermission(resource_id=resource_id, actions=actions)],
    )


def expect_error(error: pytest.ExceptionInfo[StytchError], status: int, error_type: str) -> None:
    details = error.value.details
    assert details.status_code == status
    assert details.error_type == error_type
    assert details.request_id.startswith("request-id-test-")
    assert details.error_message
    assert details.error_url == f"https://stytch.com/docs/api/errors/{status}#{error_type}"


def test_project_policy(client: stytch.B2BClient) -> None:
    response = client.rbac.policy()
    assert response.status_code == 200
    assert response.request_id.startswith("request-id-test-")
    policy = response.policy
    assert policy is not None
    assert [r.role_id for r in policy.roles] == [r.role_id for r in SEED.policy.roles]
    assert [(r.resource_id, r.actions) for r in policy.resources] == [
        (r.resource_id, list(r.actions)) for r in SEED.policy.resources
    ]
    assert [s.scope for s in policy.scopes] == [s.scope for s in SEED.policy.scopes]
    assert {"stytch_admin", "stytch_member"} <= {r.role_id for r in policy.roles}


def test_get_org_policy_by_id_slug_and_external_id(client: stytch.B2BClient) -> None:
    assert ACME.organization_external_id is not None
    for key in (ACME.organization_id, ACME.organization_slug, ACME.organization_external_id):
        response = client.rbac.organizations.get_org_policy(key)
        assert response.status_code == 200
        assert plain(response.org_policy.roles) == plain(ACME.org_policy.roles)


def test_every_seeded_org_policy_parses_and_passes_the_sdk_checks(
    client: stytch.B2BClient,
) -> None:
    project = client.rbac.policy().policy
    assert project is not None
    for org in SEED.organizations:
        if org.org_policy_disabled:
            continue
        got = client.rbac.organizations.get_org_policy(org.organization_id).org_policy
        assert plain(got.roles) == plain(org.org_policy.roles)
        SdkOrgPolicies.validate_org_policy(project, got)  # raises on a broken policy


def test_set_org_policy_then_read_back(client: stytch.B2BClient) -> None:
    wanted = OrgPolicy(
        roles=[
            sdk_role("ops", "documents", ["read", "share"], "Operations"),
            sdk_role("clerk", "invoices", ["*"]),
        ]
    )
    response = client.rbac.organizations.set_org_policy("acme-42", wanted)
    assert response.status_code == 200
    assert plain(response.org_policy.roles) == plain(wanted.roles)
    by_slug = client.rbac.organizations.get_org_policy("acme").org_policy
    assert plain(by_slug.roles) == plain(wanted.roles)
    organization = client.organizations.get(ACME.organization_id).organization
    assert plain(organization.custom_roles) == plain(wanted.roles)
    # A dict works as well; an empty list deletes every role.
    cleared = client.rbac.organizations.set_org_policy(ACME.organization_id, {"roles": []})
    assert cleared.org_policy.roles == []
    assert client.organizations.get("acme").organization.custom_roles == []
    untouched = client.rbac.organizations.get_org_policy("globex").org_policy
    assert plain(untouched.roles) == plain(GLOBEX.org_policy.roles)


def test_search_pages_through_every_organization_once(client: stytch.B2BClient) -> None:
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        response = client.organizations.search(cursor=cursor, limit=3)
        pages += 1
        assert pages <= 10
        assert response.results_metadata.total == len(SEED.organizations)
        assert 1 <= len(response.organizations) <= 3
        for organization in response.organizations:
            seen.append(organization.organization_id)
            expected = BY_SLUG[organization.organization_slug]
            assert organization.organization_id == expected.organization_id
            assert plain(organization.custom_roles) == plain(expected.org_policy.roles)
        cursor = response.results_metadata.next_cursor
        if cursor is None:
            break
    assert pages == 4  # 11 organizations, 3 a page
    assert len(seen) == len(set(seen))
    assert set(seen) == {o.organization_id for o in SEED.organizations}


def test_search_with_an_operator_and_no_operands(client: stytch.B2BClient) -> None:
    query = SearchQuery(operator=SearchQueryOperator.AND, operands=[])
    response = client.organizations.search(query=query)
    assert response.results_metadata.total == len(SEED.organizations)
    assert response.results_metadata.next_cursor is None
    assert len(response.organizations) == len(SEED.organizations)


def test_organizations_get(client: stytch.B2BClient) -> None:
    for org in SEED.organizations:
        keys = [org.organization_id, org.organization_slug, org.organization_external_id]
        for key in filter(None, keys):
            response = client.organizations.get(key)
            assert response.status_code == 200
            got = response.organization
            assert got.organization_id == org.organization_id
            assert got.organization_slug == org.organization_slug
            assert got.organization_name == org.organization_name
            assert got.organization_external_id == org.organization_external_id
            assert got.created_at is not None
            assert got.updated_at is not None


def test_ids_with_a_slash_and_a_plus_are_percent_encoded(client: stytch.B2BClient) -> None:
    rbac = client.rbac.organizations
    assert rbac.get_org_policy(ODD.organization_id).org_policy.roles == []
    wanted = OrgPolicy(roles=[sdk_role("ops", "reports", ["read"])])
    assert rbac.set_org_policy(ODD.organization_id, wanted).status_code == 200
    assert ODD.organization_external_id is not None
    got = rbac.get_org_policy(ODD.organization_external_id).org_policy
    assert plain(got.roles) == plain(wanted.roles)
    organization = client.organizations.get(ODD.organization_external_id).organization
    assert organization.organization_id == ODD.organization_id


def test_bad_secret_is_unauthorized_credentials(running: EmulatorThread) -> None:
    bad = stytch.B2BClient(project_id=PROJECT_ID, secret=SECRET + "x", environment=running.url)
    calls = [
        bad.rbac.policy,
        lambda: bad.rbac.organizations.get_org_policy("acme"),
        lambda: bad.rbac.organizations.set_org_policy("acme", {"roles": []}),
        lambda: bad.organizations.search(limit=2),
        lambda: bad.organizations.get("acme"),
    ]
    for call in calls:
        with pytest.raises(StytchError) as error:
            call()
        expect_error(error, 401, "unauthorized_credentials")
    good = stytch.B2BClient(project_id=PROJECT_ID, secret=SECRET, environment=running.url)
    assert plain(good.rbac.organizations.get_org_policy("acme").org_policy.roles) == plain(
        ACME.org_policy.roles
    )


def test_unknown_organization(client: stytch.B2BClient) -> None:
    calls = [
        lambda: client.rbac.organizations.get_org_policy("no-such-org"),
        lambda: client.rbac.organizations.set_org_policy("no-such-org", {"roles": []}),
        lambda: client.organizations.get("no-such-org"),
    ]
    for call in calls:
        with pytest.raises(StytchError) as error:
            call()
        expect_error(error, 404, "organization_not_found")


INVALID = {
    "project-role": ([sdk_role("editor", "documents", ["read"])], "rbac_org_custom_roles_only"),
    "default-role": ([sdk_role("stytch_admin", "documents", ["*"])], "rbac_org_custom_roles_only"),
    "duplicate-role": (
        [sdk_role("ops", "documents", ["read"]), sdk_role("ops", "reports", ["read"])],
        "rbac_role_duplicate",
    ),
    "unknown-resource": (
        [sdk_role("ops", "spreadsheets", ["read"])],
        "invalid_permission_resource",
    ),
    "no-actions": ([sdk_role("ops", "documents", [])], "rbac_permission_missing_actions"),
    "wildcard-and-more": (
        [sdk_role("ops", "documents", ["*", "read"])],
        "cannot_specify_wildcard_with_other_actions",
    ),
    "unknown-action": ([sdk_role("ops", "documents", ["fly"])], "invalid_permission_action"),
    "blank-action": ([sdk_role("ops", "documents", [" "])], "invalid_permission_action"),
}


@pytest.mark.parametrize("case", sorted(INVALID))
def test_invalid_org_policy_is_refused_with_its_error_type(
    client: stytch.B2BClient, case: str
) -> None:
    roles, error_type = INVALID[case]
    policy = OrgPolicy(roles=roles)
    project = client.rbac.policy().policy
    assert project is not None
    with pytest.raises(Exception, match=r"."):  # the SDK's own check agrees
        SdkOrgPolicies.validate_org_policy(project, policy)
    with pytest.raises(StytchError) as error:
        client.rbac.organizations.set_org_policy("acme", policy)
    expect_error(error, 400, error_type)
    after = client.rbac.organizations.get_org_policy("acme").org_policy
    assert plain(after.roles) == plain(ACME.org_policy.roles)


def test_org_with_the_feature_disabled_is_enterprise_endpoint(client: stytch.B2BClient) -> None:
    for call in (
        lambda: client.rbac.organizations.get_org_policy("feature-off"),
        lambda: client.rbac.organizations.set_org_policy(OFF.organization_id, {"roles": []}),
    ):
        with pytest.raises(StytchError) as error:
            call()
        expect_error(error, 401, "enterprise_endpoint")
    organization = client.organizations.get("feature-off").organization
    assert organization.organization_id == OFF.organization_id


def test_async_client(running: EmulatorThread) -> None:
    async def scenario() -> dict[str, Any]:
        async with stytch.B2BClient(
            project_id=PROJECT_ID, secret=SECRET, environment=running.url
        ) as client:
            out: dict[str, Any] = {}
            policy = await client.rbac.policy_async()
            out["roles"] = [r.role_id for r in policy.policy.roles] if policy.policy else []
            wanted = OrgPolicy(roles=[sdk_role("ops", "documents", ["read"])])
            put = await client.rbac.organizations.set_org_policy_async("globex", wanted)
            out["put"] = plain(put.org_policy.roles)
            got = await client.rbac.organizations.get_org_policy_async(GLOBEX.organization_id)
            out["get"] = plain(got.org_policy.roles)
            organization = await client.organizations.get_async("globex")
            out["custom_roles"] = plain(organization.organization.custom_roles)
            ids: list[str] = []
            cursor: str | None = None
            for _ in range(10):
                page = await client.organizations.search_async(cursor=cursor, limit=4)
                ids += [o.organization_id for o in page.organizations]
                cursor = page.results_metadata.next_cursor
                if cursor is None:
                    break
            out["ids"] = ids
            try:
                await client.rbac.organizations.get_org_policy_async("no-such-org")
            except StytchError as exc:
                out["error"] = exc.details.error_type
            return out

    out = asyncio.run(scenario())
    assert out["roles"] == [r.role_id for r in SEED.policy.roles]
    expected = json.loads(json.dumps([{**sdk_role("ops", "documents", ["read"]).model_dump()}]))
    assert out["put"] == out["get"] == out["custom_roles"] == plain(expected)
    assert sorted(out["ids"]) == sorted(o.organization_id for o in SEED.organizations)
    assert len(out["ids"]) == len(set(out["ids"]))
    assert out["error"] == "organization_not_found"


def test_loopback_round_trips_do_not_wait_for_delayed_acks(running: EmulatorThread) -> None:
    """Without TCP_NODELAY on the server's sockets, every response waited ~40 ms."""
    with httpx.Client(auth=(PROJECT_ID, SECRET), timeout=10) as http:
        http.get(running.url + "v1/b2b/rbac/policy")  # connect once
        times = []
        for _ in range(10):
            start = time.perf_counter()
            response = http.get(running.url + "v1/b2b/rbac/organizations/acme")
            times.append(time.perf_counter() - start)
            assert response.status_code == 200
    assert min(times) < 0.02, times
