"""The HTTP API in-process (httpx.ASGITransport): what the official SDK does not exercise.

The quirks of the wire contract, the exact response shapes, every rule the server
enforces, what it must reject as malformed, and authentication on every endpoint.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from policysync.config import Limits
from policysync.emulator.app import ERROR_TYPES, Api, create_app
from policysync.emulator.seed import Seed, SeedOrganization
from policysync.emulator.server import build, read_seed
from policysync.emulator.store import Store
from policysync.models import OrgPolicy

from .conftest import PROJECT_ID, SECRET, demo_seed

SEED = demo_seed()
ORGS = {o.organization_slug: o for o in SEED.organizations}
ACME, GLOBEX = ORGS["acme"], ORGS["globex"]
ORG_POLICY = "/v1/b2b/rbac/organizations/"
ORGANIZATION = "/v1/b2b/organizations/"
SEARCH = "/v1/b2b/organizations/search"
REQUEST_ID = re.compile(
    r"^request-id-test-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
)
ERROR_KEYS = {"status_code", "request_id", "error_type", "error_message", "error_url"}


def basic(project_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{project_id}:{secret}".encode()).decode()


GOOD_AUTH = basic(PROJECT_ID, SECRET)


class Client:
    """The API in-process, through httpx.ASGITransport; one event loop per request."""

    def __init__(self, store: Store, limits: Limits | None = None, **options: Any) -> None:
        self.store = store
        self.app = build(store, PROJECT_ID, SECRET, limits or Limits(), **options)

    def request(
        self, method: str, path: str, *, authorization: str | None = GOOD_AUTH, **kwargs: Any
    ) -> httpx.Response:
        headers = {"Authorization": authorization} if authorization is not None else {}

        async def send() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://emulator") as c:
                return await c.request(method, path, headers=headers, **kwargs)

        return asyncio.run(send())

    def get_roles(self, key: str) -> list[dict[str, Any]]:
        response = self.request("GET", ORG_POLICY + key)
        assert response.status_code == 200, response.text
        roles: list[dict[str, Any]] = response.json()["org_policy"]["roles"]
        return roles

    def put(self, key: str, body: Any) -> httpx.Response:
        return self.request("PUT", ORG_POLICY + key, json=body)


@pytest.fixture
def client(store: Store) -> Client:
    return Client(store)


def seed_roles(org: SeedOrganization) -> list[dict[str, Any]]:
    roles: list[dict[str, Any]] = json.loads(org.org_policy.model_dump_json())["roles"]
    return roles


def perm(resource_id: str = "documents", actions: Any = ("read",)) -> dict[str, Any]:
    return {"resource_id": resource_id, "actions": list(actions)}


def role(role_id: str = "ops", description: str = "Ops", permissions: Any = None) -> dict[str, Any]:
    return {
        "role_id": role_id,
        "description": description,
        "permissions": [perm()] if permissions is None else permissions,
    }


def assert_error(response: httpx.Response, status: int, error_type: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == ERROR_KEYS
    assert body["status_code"] == status
    assert REQUEST_ID.match(body["request_id"])
    assert body["error_type"] == error_type
    assert isinstance(body["error_message"], str)
    assert body["error_message"].strip()
    assert body["error_url"] == f"https://stytch.com/docs/api/errors/{status}#{error_type}"


def assert_success(response: httpx.Response, *keys: str) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert set(body) == {"request_id", "status_code", *keys}
    assert body["status_code"] == 200
    assert REQUEST_ID.match(body["request_id"])
    return body


# Shapes --------------------------------------------------------------------------------


def test_project_policy_shape(client: Client) -> None:
    policy = assert_success(client.request("GET", "/v1/b2b/rbac/policy"), "policy")["policy"]
    assert set(policy) == {"roles", "resources", "scopes"}
    assert policy == json.loads(SEED.policy.model_dump_json())
    role_ids = {r["role_id"] for r in policy["roles"]}
    assert {"stytch_member", "stytch_admin"} <= role_ids
    resource_ids = {r["resource_id"] for r in policy["resources"]}
    builtins = {"stytch.self", "stytch.organization", "stytch.member", "stytch.sso", "stytch.scim"}
    assert builtins <= resource_ids
    for resource in policy["resources"]:
        assert set(resource) == {"resource_id", "description", "actions"}


def test_request_ids_are_unique_and_live_projects_get_live_ids(store: Store) -> None:
    client = Client(store)
    ids = {client.request("GET", "/v1/b2b/rbac/policy").json()["request_id"] for _ in range(3)}
    assert len(ids) == 3
    live_id = "project-live-00000000-0000-4000-8000-000000000000"
    live = build(store, live_id, SECRET, Limits())

    async def send() -> httpx.Response:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=live), base_url="http://emulator"
        ) as c:
            return await c.get("/v1/b2b/rbac/policy", auth=(live_id, SECRET))

    response = asyncio.run(send())
    assert response.status_code == 200
    assert response.json()["request_id"].startswith("request-id-live-")


def test_org_policy_shape_by_id_slug_and_external_id(client: Client) -> None:
    for key in (ACME.organization_id, ACME.organization_slug, ACME.organization_external_id):
        assert key is not None
        body = assert_success(client.request("GET", ORG_POLICY + key), "org_policy")
        assert set(body["org_policy"]) == {"roles"}
        assert body["org_policy"]["roles"] == seed_roles(ACME)
        for r in body["org_policy"]["roles"]:
            assert set(r) == {"role_id", "description", "permissions"}
            for p in r["permissions"]:
                assert set(p) == {"resource_id", "actions"}


def test_org_without_roles_answers_an_empty_list(client: Client) -> None:
    assert ORGS["hooli"].org_policy.roles == ()
    assert client.get_roles("hooli") == []


def test_put_echoes_and_replaces_every_role(client: Client) -> None:
    new = [role("ops"), role("auditor", "Reads the log", [perm("audit-log", ["read", "export"])])]
    body = assert_success(client.put("acme", {"org_policy": {"roles": new}}), "org_policy")
    assert body["org_policy"] == {"roles": new}
    assert client.get_roles(ACME.organization_id) == new  # invoice-approver is gone
    assert client.get_roles("globex") == seed_roles(GLOBEX)  # others untouched
    assert client.request("GET", "/v1/b2b/rbac/policy").json()["policy"] == json.loads(
        SEED.policy.model_dump_json()
    )
    body = assert_success(client.put("acme", {"org_policy": {"roles": []}}), "org_policy")
    assert body["org_policy"] == {"roles": []}
    assert client.get_roles("acme") == []


def test_organization_shape_and_custom_roles_follow_the_org_policy(client: Client) -> None:
    body = assert_success(client.request("GET", ORGANIZATION + "acme-42"), "organization")
    org = body["organization"]
    assert org["organization_id"] == ACME.organization_id
    assert org["organization_slug"] == "acme"
    assert org["organization_external_id"] == "acme-42"
    assert org["organization_name"] == ACME.organization_name
    assert org["custom_roles"] == seed_roles(ACME)
    client.put("acme", {"org_policy": {"roles": [role("ops")]}})
    org = client.request("GET", ORGANIZATION + ACME.organization_id).json()["organization"]
    assert org["custom_roles"] == [role("ops")]
    assert_error(client.request("GET", ORGANIZATION + "no-such-org"), 404, "organization_not_found")


def test_unknown_organization(client: Client) -> None:
    assert_error(client.request("GET", ORG_POLICY + "no-such-org"), 404, "organization_not_found")
    assert_error(
        client.put("no-such-org", {"org_policy": {"roles": []}}), 404, "organization_not_found"
    )
    assert_error(client.request("GET", ORG_POLICY), 404, "organization_not_found")


def test_unknown_route_is_a_json_404(client: Client) -> None:
    for path in ("/", "/v1/b2b/rbac/nothing", "/v2/b2b/rbac/policy", "/_emulator/other"):
        assert_error(client.request("GET", path), 404, "route_not_found")
    assert_error(client.request("POST", "/v1/b2b/nothing", json={}), 404, "route_not_found")


# Quirks of the SDKs ------------------------------------------------------------------------


def test_query_string_on_get_is_ignored(client: Client) -> None:
    path = f"{ORG_POLICY}acme?organization_id={GLOBEX.organization_id}"
    assert client.get_roles(path.removeprefix(ORG_POLICY)) == seed_roles(ACME)
    org = client.request("GET", f"{ORGANIZATION}acme?organization_id=globex").json()
    assert org["organization"]["organization_id"] == ACME.organization_id


def test_any_user_agent_and_no_accept_header(store: Store) -> None:
    app = build(store, PROJECT_ID, SECRET, Limits())

    async def send() -> httpx.Response:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://emulator"
        ) as c:
            del c.headers["accept"]
            c.headers["user-agent"] = "curl/8.0 (something else entirely)"
            return await c.get(ORG_POLICY + "acme", auth=(PROJECT_ID, SECRET))

    response = asyncio.run(send())
    assert "accept" not in response.request.headers
    assert response.status_code == 200
    assert response.json()["org_policy"]["roles"] == seed_roles(ACME)


def test_organization_id_in_the_put_body_loses_to_the_path(client: Client) -> None:
    body = {"organization_id": GLOBEX.organization_id, "org_policy": {"roles": [role("ops")]}}
    assert client.put("acme", body).status_code == 200
    assert client.get_roles("acme") == [role("ops")]
    assert client.get_roles("globex") == seed_roles(GLOBEX)


@pytest.mark.parametrize(
    "body",
    [{"org_policy": {}}, {}, {"org_policy": None}, {"org_policy": {"roles": None}}],
    ids=["empty-org-policy", "no-org-policy", "null-org-policy", "null-roles"],
)
def test_omitted_roles_mean_no_roles(client: Client, body: dict[str, Any]) -> None:
    response = client.put("acme", body)
    assert assert_success(response, "org_policy")["org_policy"] == {"roles": []}
    assert client.get_roles("acme") == []


def test_role_without_description_reads_as_empty(client: Client) -> None:
    sent = {"role_id": "ops", "permissions": [perm()]}
    body = assert_success(client.put("acme", {"org_policy": {"roles": [sent]}}), "org_policy")
    assert body["org_policy"]["roles"] == [{**sent, "description": ""}]
    assert client.get_roles("acme") == [{**sent, "description": ""}]


def test_missing_lists_read_as_empty_and_break_the_rules(client: Client) -> None:
    no_actions = {"org_policy": {"roles": [role(permissions=[{"resource_id": "documents"}])]}}
    assert_error(client.put("acme", no_actions), 400, "rbac_permission_missing_actions")
    no_permissions = {"org_policy": {"roles": [{"role_id": "ops", "description": ""}]}}
    assert_error(client.put("acme", no_permissions), 400, "rbac_role_missing_permissions")
    assert client.get_roles("acme") == seed_roles(ACME)


def test_percent_encoded_path_parameters(tmp_path: Path) -> None:
    odd = SeedOrganization(
        organization_id="organization-test-with/slash",
        organization_slug="odd",
        organization_external_id="team+one",
    )
    store = Store()
    store.load(Seed(policy=SEED.policy, organizations=(*SEED.organizations, odd)))
    client = Client(store)
    assert client.get_roles("organization-test-with%2Fslash") == []
    response = client.put("organization-test-with%2Fslash", {"org_policy": {"roles": [role()]}})
    assert response.status_code == 200
    assert client.get_roles("odd") == [role()]
    for key in ("team%2Bone", "team+one", "organization-test-with%2fslash"):
        body = client.request("GET", ORGANIZATION + key).json()
        assert body["organization"]["organization_id"] == "organization-test-with/slash"
    assert client.get_roles("%61cme") == seed_roles(ACME)  # any character may be escaped
    assert_error(client.request("GET", ORG_POLICY + "team one"), 404, "organization_not_found")
    store.close()


# The rules ---------------------------------------------------------------------------------

RULE_CASES: dict[str, tuple[Limits, list[dict[str, Any]]]] = {
    "role-duplicate": (Limits(), [role("ops"), role("ops")]),
    "role-project-conflict": (Limits(), [role("viewer")]),
    "resource-unknown": (Limits(), [role(permissions=[perm("spreadsheets")])]),
    "actions-empty": (Limits(), [role(permissions=[perm(actions=[])])]),
    "wildcard-not-alone": (Limits(), [role(permissions=[perm(actions=["*", "read"])])]),
    "action-blank": (Limits(), [role(permissions=[perm(actions=["read", " "])])]),
    "action-unknown": (Limits(), [role(permissions=[perm(actions=["read", "fly"])])]),
    "role-id-too-long": (Limits(max_role_id_length=8), [role("nine-char")]),
    "description-too-long": (Limits(max_description_length=10), [role(description="x" * 11)]),
    "action-too-long": (Limits(max_action_length=4), [role(permissions=[perm(actions=["share"])])]),
    "too-many-roles": (Limits(max_roles_per_org=2), [role("a"), role("b"), role("c")]),
    "role-no-permissions": (Limits(), [role(permissions=[])]),
    "action-duplicate": (Limits(), [role(permissions=[perm(actions=["read", "write", "read"])])]),
    "role-id-invalid": (Limits(), [role("")]),
}


@pytest.mark.parametrize("role_id", ["", "   ", " ops", "ops\u0007"])
def test_an_empty_blank_or_padded_role_id_is_refused(client: Client, role_id: str) -> None:
    response = client.put("acme", {"org_policy": {"roles": [role(role_id)]}})
    assert_error(response, 400, "invalid_argument")
    assert client.get_roles("acme") == seed_roles(ACME)


def test_every_enforced_rule_has_a_case() -> None:
    assert set(RULE_CASES) == set(ERROR_TYPES)


@pytest.mark.parametrize("code", sorted(RULE_CASES))
def test_each_enforced_rule_answers_400_with_its_error_type(store: Store, code: str) -> None:
    limits, roles = RULE_CASES[code]
    client = Client(store, limits)
    assert_error(client.put("acme", {"org_policy": {"roles": roles}}), 400, ERROR_TYPES[code])
    assert client.get_roles("acme") == seed_roles(ACME)
    assert store.dump() == dump_of_seed()


def dump_of_seed() -> Seed:
    fresh = Store()
    fresh.load(SEED)
    try:
        return fresh.dump()
    finally:
        fresh.close()


@pytest.mark.parametrize("role_id", ["stytch_admin", "stytch_member", "editor", "billing-admin"])
def test_every_project_role_id_is_refused(client: Client, role_id: str) -> None:
    response = client.put("acme", {"org_policy": {"roles": [role(role_id)]}})
    assert_error(response, 400, "rbac_org_custom_roles_only")


def test_limits_are_inclusive(store: Store) -> None:
    limits = Limits(
        max_role_id_length=8,
        max_description_length=10,
        max_action_length=5,
        max_roles_per_org=2,
    )
    client = Client(store, limits)
    roles = [
        role("eight-ch", "x" * 10, [perm(actions=["share", "read"])]),
        role("b", "", [perm("invoices", ["*"])]),
    ]
    assert client.put("acme", {"org_policy": {"roles": roles}}).status_code == 200
    assert client.get_roles("acme") == roles


@pytest.mark.parametrize(
    "roles",
    [
        [role("stytch_custom")],  # the reserved prefix: policysync warns, Stytch accepts
        [role(permissions=[perm("documents", ["read"]), perm("documents", ["write"])])],
        [role(permissions=[perm("stytch.member", ["*"]), perm("stytch.self", ["delete"])])],
    ],
    ids=["reserved-prefix", "resource-repeated", "built-in-resources"],
)
def test_rules_the_server_does_not_enforce(client: Client, roles: list[dict[str, Any]]) -> None:
    response = client.put("acme", {"org_policy": {"roles": roles}})
    assert assert_success(response, "org_policy")["org_policy"] == {"roles": roles}
    assert client.get_roles("acme") == roles


# Malformed requests ------------------------------------------------------------------------


def _roles(*roles: Any) -> dict[str, Any]:
    return {"org_policy": {"roles": list(roles)}}


WRONG_TYPES = {
    "body-array": [],
    "body-string": "org_policy",
    "body-null": None,
    "org-policy-array": {"org_policy": []},
    "org-policy-string": {"org_policy": "roles"},
    "roles-object": {"org_policy": {"roles": {}}},
    "roles-string": {"org_policy": {"roles": "ops"}},
    "role-number": _roles(5),
    "role-null": _roles(None),
    "role-id-number": _roles({"role_id": 5, "permissions": [perm()]}),
    "role-id-null": _roles({"role_id": None, "permissions": [perm()]}),
    "role-id-missing": _roles({"description": "", "permissions": [perm()]}),
    "description-number": _roles({"role_id": "ops", "description": 5, "permissions": [perm()]}),
    "description-null": _roles({"role_id": "ops", "description": None, "permissions": [perm()]}),
    "permissions-string": _roles({"role_id": "ops", "permissions": "documents"}),
    "permission-number": _roles(role(permissions=[5])),
    "resource-id-number": _roles(role(permissions=[{"resource_id": 5, "actions": ["read"]}])),
    "resource-id-missing": _roles(role(permissions=[{"actions": ["read"]}])),
    "actions-string": _roles(role(permissions=[{"resource_id": "documents", "actions": "read"}])),
    "actions-empty-string": _roles(role(permissions=[{"resource_id": "documents", "actions": ""}])),
    "actions-zero": _roles(role(permissions=[{"resource_id": "documents", "actions": 0}])),
    "actions-false": _roles(role(permissions=[{"resource_id": "documents", "actions": False}])),
    "action-number": _roles(role(permissions=[{"resource_id": "documents", "actions": [5]}])),
    "action-null": _roles(role(permissions=[{"resource_id": "documents", "actions": [None]}])),
}


@pytest.mark.parametrize("name", sorted(WRONG_TYPES))
def test_wrong_json_types_are_invalid_arguments(client: Client, name: str) -> None:
    response = client.request(
        "PUT", ORG_POLICY + "acme", content=json.dumps(WRONG_TYPES[name]).encode()
    )
    assert_error(response, 400, "invalid_argument")
    assert client.get_roles("acme") == seed_roles(ACME)


MALFORMED = {
    "empty": b"",
    "truncated": b'{"org_policy": {"roles": [',
    "single-quotes": b"{'org_policy': {}}",
    "trailing-comma": b'{"org_policy": {},}',
    "not-utf8": b'{"org_policy": "\xff\xfe"}',
    "two-values": b"{} {}",
    "deeply-nested": b"[" * 100_000,
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_json_is_a_bad_request(client: Client, name: str) -> None:
    assert_error(
        client.request("PUT", ORG_POLICY + "acme", content=MALFORMED[name]), 400, "bad_request"
    )
    body = MALFORMED[name] or b"{"
    assert_error(client.request("POST", SEARCH, content=body), 400, "bad_request")
    assert client.get_roles("acme") == seed_roles(ACME)


# Search ------------------------------------------------------------------------------------


def test_search_pages_in_order_until_the_cursor_is_null(client: Client) -> None:
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        body = {"limit": 2} if cursor is None else {"limit": 2, "cursor": cursor}
        result = assert_success(
            client.request("POST", SEARCH, json=body), "organizations", "results_metadata"
        )
        pages += 1
        assert pages <= 10
        assert set(result["results_metadata"]) == {"total", "next_cursor"}
        assert result["results_metadata"]["total"] == len(SEED.organizations)
        page = result["organizations"]
        assert 1 <= len(page) <= 2
        seen += [o["organization_id"] for o in page]
        cursor = result["results_metadata"]["next_cursor"]
        if cursor is None:
            break
        assert isinstance(cursor, str)
        assert len(page) == 2
    assert pages == 5
    assert seen == sorted(o.organization_id for o in SEED.organizations)


def test_search_is_limited_per_minute_as_stytch_limits_it(store: Store) -> None:
    now = [1000.0]
    api = Api(store, PROJECT_ID, SECRET, Limits(), search_per_minute=2, clock=lambda: now[0])
    client = Client(store)
    client.app = create_app(api)
    assert client.request("POST", SEARCH, json={}).status_code == 200
    now[0] += 20
    assert client.request("POST", SEARCH, json={}).status_code == 200
    now[0] += 10  # the first was 30 s ago: 30 s more to wait
    refused = client.request("POST", SEARCH, json={})
    assert_error(refused, 429, "too_many_requests")
    assert refused.headers["retry-after"] == "30"
    assert client.get_roles("acme") == seed_roles(ACME)  # other endpoints are not counted
    now[0] += 30  # the first search is a minute old: one more may start
    assert client.request("POST", SEARCH, json={}).status_code == 200
    assert client.request("POST", SEARCH, json={}).status_code == 429


def test_search_defaults_and_bounds(client: Client) -> None:
    ids = sorted(o.organization_id for o in SEED.organizations)
    for body in (None, {}, {"limit": 1000}, {"query": {"operator": "AND", "operands": []}}):
        kwargs: dict[str, Any] = {} if body is None else {"json": body}
        result = client.request("POST", SEARCH, **kwargs)
        page = result.json()["organizations"]
        assert [o["organization_id"] for o in page] == ids
        assert result.json()["results_metadata"]["next_cursor"] is None
    one = client.request("POST", SEARCH, json={"limit": 1}).json()
    assert [o["organization_id"] for o in one["organizations"]] == ids[:1]
    rest = client.request(
        "POST", SEARCH, json={"limit": 100, "cursor": one["results_metadata"]["next_cursor"]}
    ).json()
    assert [o["organization_id"] for o in rest["organizations"]] == ids[1:]
    custom = {o["organization_id"]: o["custom_roles"] for o in rest["organizations"]}
    assert custom[GLOBEX.organization_id] == seed_roles(GLOBEX)


@pytest.mark.parametrize(
    "body",
    [
        {"limit": 0},
        {"limit": 1001},
        {"limit": -1},
        {"limit": "5"},
        {"limit": 2.5},
        {"limit": True},
        {"limit": False},
        {"query": {"operator": "AND", "operands": [{"filter_name": "organization_slugs"}]}},
        {"query": "acme"},
        {"query": []},
        [],
        None,
        5,
    ],
    ids=repr,
)
def test_search_rejects_bad_arguments(client: Client, body: Any) -> None:
    response = client.request("POST", SEARCH, content=json.dumps(body).encode())
    assert_error(response, 400, "invalid_argument")


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode()


@pytest.mark.parametrize(
    "cursor",
    [
        "not-a-cursor!",
        "%%%",
        _b64(b"not json"),
        _b64(b"\xff\xfe"),
        _b64(b"[1]"),
        _b64(b'["a", "b"]'),
        _b64(b"[]"),
        _b64(b'"a"'),
        _b64(b'{"a": 1}'),
        5,
        ["x"],
        {"after": "x"},
    ],
    ids=repr,
)
def test_search_rejects_forged_cursors(client: Client, cursor: Any) -> None:
    response = client.request("POST", SEARCH, json={"cursor": cursor})
    assert_error(response, 400, "invalid_argument")


# Authentication ----------------------------------------------------------------------------

ENDPOINTS = [
    ("GET", "/v1/b2b/rbac/policy", None),
    ("GET", ORG_POLICY + "acme", None),
    ("PUT", ORG_POLICY + "acme", {"org_policy": {"roles": []}}),
    ("POST", SEARCH, {}),
    ("GET", ORGANIZATION + "acme", None),
    ("GET", "/_emulator/state", None),
]
BAD_AUTH = {
    "missing": None,
    "empty": "",
    "wrong-secret": basic(PROJECT_ID, SECRET + "x"),
    "wrong-project": basic("project-test-11111111-1111-4111-8111-111111111111", SECRET),
    "secret-only": basic("", SECRET),
    "swapped": basic(SECRET, PROJECT_ID),
    "bearer": f"Bearer {SECRET}",
    "lowercase-scheme": GOOD_AUTH.replace("Basic", "basic"),
    "not-base64": "Basic !!!not-base64!!!",
}


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS, ids=lambda v: str(v))
def test_bad_credentials_are_refused_on_every_endpoint(
    client: Client, method: str, path: str, body: Any
) -> None:
    kwargs = {} if body is None else {"json": body}
    for name, authorization in BAD_AUTH.items():
        response = client.request(method, path, authorization=authorization, **kwargs)
        assert response.status_code == 401, name
        assert_error(response, 401, "unauthorized_credentials")
    assert client.store.dump() == dump_of_seed()
    assert client.request(method, path, **kwargs).status_code == 200


def test_refused_put_changes_nothing_and_auth_comes_before_lookup(client: Client) -> None:
    response = client.request(
        "PUT", ORG_POLICY + "acme", authorization=None, json={"org_policy": {"roles": []}}
    )
    assert_error(response, 401, "unauthorized_credentials")
    assert client.get_roles("acme") == seed_roles(ACME)
    response = client.request("GET", ORG_POLICY + "no-such-org", authorization=None)
    assert_error(response, 401, "unauthorized_credentials")


# The feature switched off ----------------------------------------------------------------


def test_disabled_org_answers_enterprise_endpoint(store: Store) -> None:
    client = Client(store, disabled_orgs=frozenset({"acme-42"}))
    keys = (ACME.organization_id, "acme", "acme-42")
    for key in keys:
        assert_error(client.request("GET", ORG_POLICY + key), 401, "enterprise_endpoint")
        assert_error(client.put(key, {"org_policy": {"roles": []}}), 401, "enterprise_endpoint")
    assert store.dump() == dump_of_seed()
    assert client.get_roles("globex") == seed_roles(GLOBEX)
    org = client.request("GET", ORGANIZATION + "acme").json()["organization"]
    assert org["custom_roles"] == seed_roles(ACME)


def test_disabled_in_the_seed() -> None:
    orgs = tuple(
        o.model_copy(update={"org_policy_disabled": o.organization_slug == "globex"})
        for o in SEED.organizations
    )
    store = Store()
    store.load(Seed(policy=SEED.policy, organizations=orgs))
    client = Client(store)
    assert_error(client.request("GET", ORG_POLICY + "globex"), 401, "enterprise_endpoint")
    assert_error(client.put("globex", {"org_policy": {}}), 401, "enterprise_endpoint")
    assert client.get_roles("acme") == seed_roles(ACME)
    state = Seed.model_validate_json(client.request("GET", "/_emulator/state").content)
    flags = {o.organization_slug: o.org_policy_disabled for o in state.organizations}
    assert flags["globex"] is True
    assert sum(flags.values()) == 1
    store.close()


# The admin endpoint ------------------------------------------------------------------------


def test_state_is_a_seed_document_of_the_current_state(client: Client, tmp_path: Path) -> None:
    response = client.request("GET", "/_emulator/state")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    state = Seed.model_validate_json(response.content)
    assert state == dump_of_seed()
    by_id = {o.organization_id: o for o in state.organizations}
    assert {k: v.model_dump() for k, v in by_id.items()} == {
        o.organization_id: o.model_dump() for o in SEED.organizations
    }
    assert state.policy == SEED.policy

    client.put("acme", {"org_policy": {"roles": [role("ops")]}})
    state = Seed.model_validate_json(client.request("GET", "/_emulator/state").content)
    acme = next(o for o in state.organizations if o.organization_slug == "acme")
    assert acme.org_policy == OrgPolicy.model_validate({"roles": [role("ops")]})

    seed_file = tmp_path / "again.json"
    seed_file.write_text(client.request("GET", "/_emulator/state").text)
    again = Store()
    again.load(read_seed(seed_file, Limits()))
    assert again.dump() == client.store.dump()
    again.close()
