"""The ZenML Pro emulator over real HTTP on loopback, checked against the wire contract
(zenml-pro-api.md) with raw httpx requests written from it, the way ZenML's own Pro
client (`zenml.login.pro`) sends them: the login form with the key also as bearer,
`GET /organizations?offset=&limit=`, `GET /organizations/{id or name}`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from policysync.emulator.faults import FaultInjector, Faults
from policysync.emulator.server import EmulatorThread, read_model
from policysync.emulator.zenml_app import DEFAULT_API_KEY, build
from policysync.emulator.zenml_store import SYSTEM_ROLES, ZenmlSeed, ZenmlStore, seed_problem

ROOT = Path(__file__).parent.parent.parent
SEED_FILE = ROOT / "examples" / "zenml" / "emulator-seed.json"
ACME = "9a1b2c3d-0000-4000-8000-000000000001"
GLOBEX = "9a1b2c3d-0000-4000-8000-000000000002"
REVIEWERS = "3f2c0000-0000-4000-8000-000000000101"
ALICE = "00000000-0000-4000-8000-0000000000a1"
WORKSPACE = "00000000-0000-4000-8000-0000000000f1"
UNKNOWN = "00000000-0000-4000-8000-000000000999"
ROLE_KEYS = {"id", "name", "description", "organization_id", "level", "system_managed", "type"}


def seeded() -> ZenmlStore:
    store = ZenmlStore()
    store.load(read_model(SEED_FILE, ZenmlSeed))
    return store


@pytest.fixture
def zenml() -> Iterator[EmulatorThread]:
    with EmulatorThread(build(seeded(), DEFAULT_API_KEY)) as running:
        yield running


def login(url: str, key: str = DEFAULT_API_KEY) -> httpx.Response:
    # As ZenMLProClient.fetch_api_token sends it: the form, and the key as bearer too.
    headers = {"Authorization": f"Bearer {key}"}
    return httpx.post(url + "auth/login", data={"password": key}, headers=headers, timeout=10)


@pytest.fixture
def http(zenml: EmulatorThread) -> Iterator[httpx.Client]:
    token = login(zenml.url).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=zenml.url, headers=headers, timeout=10) as client:
        yield client


def names(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [r["name"] for r in response.json()]


def custom(**fields: Any) -> dict[str, Any]:
    role = {"name": "Stack Readers", "description": "Read stacks", "organization_id": ACME}
    return (
        {"level": "workspace", "permissions": [{"resource": "stack", "action": "read"}]}
        | role
        | fields
    )


# Authentication ---------------------------------------------------------------------


def test_login_answers_a_bearer_token_with_its_lifetime(zenml: EmulatorThread) -> None:
    answer = login(zenml.url)
    assert answer.status_code == 200
    body = answer.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 3600
    assert body["device_id"] is None
    assert body["device_metadata"] is None
    assert body["access_token"] != DEFAULT_API_KEY


def test_a_wrong_key_or_no_password_is_refused(zenml: EmulatorThread) -> None:
    wrong = login(zenml.url, "ZENPROKEY_wrong")
    assert wrong.status_code == 401
    assert wrong.json()["detail"][0] == "AuthorizationException"
    missing = httpx.post(zenml.url + "auth/login", data={}, timeout=10)
    assert missing.status_code == 422
    assert missing.json()["detail"][0]["loc"] == ["body", "password"]


@pytest.mark.parametrize(
    "authorization", [None, "Bearer not-a-token", "Basic abc", f"Bearer {DEFAULT_API_KEY}x"]
)
def test_no_or_a_bad_token_is_401(zenml: EmulatorThread, authorization: str | None) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    answer = httpx.get(zenml.url + "organizations", headers=headers, timeout=10)
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"] == "Bearer"
    assert "detail" in answer.json()


def test_the_raw_key_is_accepted_as_the_bearer(zenml: EmulatorThread) -> None:
    headers = {"Authorization": f"Bearer {DEFAULT_API_KEY}"}
    assert httpx.get(zenml.url + "organizations", headers=headers, timeout=10).status_code == 200


# Organizations ----------------------------------------------------------------------


def test_organizations_are_a_bare_array_paged_by_offset_and_limit(http: httpx.Client) -> None:
    answer = http.get("organizations", params={"offset": 0, "limit": 20})
    assert names(answer) == ["acme", "globex", "initech"]
    assert set(answer.json()[0]) == {"id", "name", "description", "created", "updated"}
    assert names(http.get("organizations", params={"offset": 1, "limit": 1})) == ["globex"]
    assert http.get("organizations", params={"limit": 101}).status_code == 422


def test_an_organization_by_id_or_by_name_and_404_for_neither(http: httpx.Client) -> None:
    assert http.get(f"organizations/{ACME}").json()["name"] == "acme"
    assert http.get("organizations/globex").json()["id"] == GLOBEX
    missing = http.get(f"organizations/{UNKNOWN}")
    assert missing.status_code == 404
    assert isinstance(missing.json()["detail"], list)


# Roles: the list --------------------------------------------------------------------


def test_every_organization_has_the_14_predefined_roles_system_managed(
    http: httpx.Client,
) -> None:
    for org in (ACME, GLOBEX):
        roles = http.get(f"organizations/{org}/roles", params={"system_managed": True}).json()
        assert {(r["level"], r["name"]) for r in roles} == set(SYSTEM_ROLES)
        assert all(r["system_managed"] and r["type"] == "normal" for r in roles)
        assert all(set(r) >= ROLE_KEYS for r in roles)
    assert (
        names(http.get(f"organizations/{GLOBEX}/roles", params={"system_managed": "false"})) == []
    )


def test_roles_are_paged_by_offset_and_limit_until_a_short_page(http: httpx.Client) -> None:
    path = f"organizations/{ACME}/roles"
    everything = names(http.get(path))
    assert len(everything) == 16
    pages: list[str] = []
    offset = 0
    while True:
        page = names(http.get(path, params={"offset": offset, "limit": 5}))
        pages += page
        if len(page) < 5:
            break
        offset += 5
    assert pages == everything
    assert names(http.get(path, params={"limit": 0})) == []


@pytest.mark.parametrize(
    ("params", "loc", "kind"),
    [
        ({"limit": 101}, ["query", "limit"], "less_than_equal"),
        ({"limit": -1}, ["query", "limit"], "greater_than_equal"),
        ({"offset": -1}, ["query", "offset"], "greater_than_equal"),
        ({"limit": "ten"}, ["query", "limit"], "int_parsing"),
        ({"user_id": "not-a-uuid"}, ["query", "user_id"], "uuid_parsing"),
        ({"system_managed": "maybe"}, ["query", "system_managed"], "bool_parsing"),
        ({"level": "galaxy"}, ["query", "level"], "enum"),
    ],
)
def test_a_bad_query_is_422_with_fastapis_error_list(
    http: httpx.Client, params: dict[str, Any], loc: list[str], kind: str
) -> None:
    answer = http.get(f"organizations/{ACME}/roles", params=params)
    assert answer.status_code == 422
    (error,) = answer.json()["detail"]
    assert error["loc"] == loc
    assert error["type"] == kind
    assert {"loc", "msg", "type"} <= set(error)


def test_a_bad_uuid_in_the_path_is_422(http: httpx.Client) -> None:
    for path in ("organizations/nope/roles", "roles/nope", "roles/nope/assignments"):
        answer = http.get(path)
        assert answer.status_code == 422, path
        assert answer.json()["detail"][0]["type"] == "uuid_parsing"
    assert http.get(f"organizations/{UNKNOWN}/roles").status_code == 404


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"name": "Pipeline Reviewers"}, ["Pipeline Reviewers"]),
        ({"name": "Pipeline"}, []),
        ({"level": "project", "system_managed": False}, ["Model Promoters"]),
        ({"resource": "pipeline_run"}, ["Pipeline Reviewers"]),
        ({"action": "promote"}, ["Model Promoters"]),
        ({"resource": "model_version", "action": "read"}, []),
        ({"user_id": ALICE}, ["Pipeline Reviewers"]),
        ({"team_id": ALICE}, []),
        ({"workspace_scope": WORKSPACE}, ["Pipeline Reviewers"]),
        ({"project_scope": WORKSPACE}, []),
        ({"assigned_to_current_user": True}, []),
        (
            {"type": "normal", "level": "organization", "system_managed": True, "limit": 2},
            ["Organization Admin", "Organization Manager"],
        ),
    ],
)
def test_each_documented_filter(
    http: httpx.Client, params: dict[str, Any], expected: list[str]
) -> None:
    assert names(http.get(f"organizations/{ACME}/roles", params=params)) == expected


def test_user_id_with_assigned_to_current_user_is_refused(http: httpx.Client) -> None:
    params = {"user_id": ALICE, "assigned_to_current_user": True}
    assert http.get(f"organizations/{ACME}/roles", params=params).status_code == 422


# Roles: one at a time ---------------------------------------------------------------


def test_create_get_update_delete_a_custom_role(http: httpx.Client) -> None:
    created = http.post("roles", json=custom())
    assert created.status_code == 200, created.text
    role = created.json()
    assert role["system_managed"] is False
    assert role["level"] == "workspace"
    assert role["permissions"] == [{"resource": "stack", "action": "read"}]
    assert http.get(f"roles/{role['id']}").json() == role
    listed = http.get(f"organizations/{ACME}/roles", params={"name": "Stack Readers"}).json()
    assert [r["id"] for r in listed] == [role["id"]]

    changed = http.patch(f"roles/{role['id']}", json={"description": "Reads stacks"}).json()
    assert changed["description"] == "Reads stacks"
    assert changed["permissions"] == role["permissions"]  # untouched: not in the body
    perms = [{"resource": "stack", "action": "update"}]
    assert (
        http.patch(f"roles/{role['id']}", json={"permissions": perms}).json()["permissions"]
        == perms
    )

    deleted = http.delete(f"roles/{role['id']}")
    assert deleted.status_code == 200
    assert deleted.json() is None
    assert http.get(f"roles/{role['id']}").status_code == 404
    assert http.delete(f"roles/{role['id']}").status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        custom(level="galaxy"),
        custom(name=""),
        custom(organization_id="acme"),
        custom(permissions=[{"resource": "stack"}]),
        {"name": "no organization", "level": "workspace"},
    ],
)
def test_a_bad_role_body_is_422_located_in_the_body(http: httpx.Client, body: Any) -> None:
    answer = http.post("roles", json=body)
    assert answer.status_code == 422, answer.text
    assert all(e["loc"][0] == "body" for e in answer.json()["detail"])


def test_a_body_that_is_not_json_is_422(http: httpx.Client) -> None:
    answer = http.post("roles", content=b"{", headers={"content-type": "application/json"})
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["type"] == "json_invalid"


def test_a_duplicate_level_and_name_is_409_the_same_name_at_another_level_is_not(
    http: httpx.Client,
) -> None:
    answer = http.post("roles", json=custom(name="Pipeline Reviewers"))
    assert answer.status_code == 409
    assert answer.json()["detail"][0] == "EntityExistsError"
    assert http.post("roles", json=custom(name="Workspace Admin")).status_code == 409
    assert (
        http.post("roles", json=custom(name="Pipeline Reviewers", level="project")).status_code
        == 200
    )
    assert (
        http.post(
            "roles", json=custom(name="Pipeline Reviewers", organization_id=GLOBEX)
        ).status_code
        == 200
    )
    other = http.post("roles", json=custom()).json()
    renamed = http.patch(f"roles/{other['id']}", json={"name": "Pipeline Reviewers"})
    assert renamed.status_code == 409
    assert http.get(f"roles/{other['id']}").json()["name"] == "Stack Readers"


def test_creating_in_an_unknown_organization_is_404(http: httpx.Client) -> None:
    assert http.post("roles", json=custom(organization_id=UNKNOWN)).status_code == 404


def test_a_system_managed_role_is_never_changed_or_deleted(http: httpx.Client) -> None:
    (admin,) = http.get(f"organizations/{ACME}/roles", params={"name": "Workspace Admin"}).json()
    for answer in (
        http.patch(f"roles/{admin['id']}", json={"description": "mine now"}),
        http.delete(f"roles/{admin['id']}"),
    ):
        assert answer.status_code == 403
        assert answer.json()["detail"][0] == "IllegalOperationError"
    assert http.get(f"roles/{admin['id']}").json() == admin | {"permissions": []}


# Assignments ------------------------------------------------------------------------


def test_assignments_are_listed_given_and_revoked(http: httpx.Client) -> None:
    held = http.get(f"roles/{REVIEWERS}/assignments").json()
    assert held == [
        {
            "user": ALICE,
            "team": None,
            "invitation": None,
            "organization_id": ACME,
            "workspace_id": WORKSPACE,
            "project_id": None,
        }
    ]
    assert http.get(f"roles/{REVIEWERS}/assignments", params={"workspace_id": GLOBEX}).json() == []
    team = "00000000-0000-4000-8000-0000000000b2"
    assert http.post(f"roles/{REVIEWERS}/assignments", params={"team_id": team}).status_code == 200
    assert [a["team"] for a in http.get(f"roles/{REVIEWERS}/assignments").json()] == [None, team]
    assert http.post(f"roles/{REVIEWERS}/assignments", params={}).status_code == 422
    assert (
        http.delete(f"roles/{REVIEWERS}/assignments", params={"team_id": team}).status_code == 200
    )
    assert len(http.get(f"roles/{REVIEWERS}/assignments").json()) == 1
    assert http.get(f"roles/{UNKNOWN}/assignments").status_code == 404


# The /api/v1 prefix, routes, bodies, faults -----------------------------------------


def test_every_path_is_served_below_api_v1_too(zenml: EmulatorThread) -> None:
    base = zenml.url + "api/v1/"
    token = login(base).json()["access_token"]
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}) as http:
        assert names(http.get("organizations")) == ["acme", "globex", "initech"]
        assert http.get(f"organizations/{ACME}/roles").status_code == 200
        role = http.post("roles", json=custom()).json()
        assert http.get(f"roles/{role['id']}").status_code == 200
        assert http.delete(f"roles/{role['id']}").status_code == 200
        assert http.get("nowhere").json() == {"detail": "Not Found"}


def test_an_unknown_route_is_fastapis_404(http: httpx.Client) -> None:
    answer = http.get("v1/b2b/rbac/policy")
    assert answer.status_code == 404
    assert answer.json() == {"detail": "Not Found"}


def test_a_body_past_the_limit_is_413() -> None:
    with EmulatorThread(build(seeded(), DEFAULT_API_KEY, max_body_bytes=64)) as running:
        headers = {"Authorization": f"Bearer {DEFAULT_API_KEY}"}
        answer = httpx.post(
            running.url + "roles", json=custom(description="x" * 100), headers=headers
        )
        assert answer.status_code == 413
        assert "detail" in answer.json()


def test_faults_apply_with_fastapi_bodies() -> None:
    faults = Faults(rate_limit=2, error_rate=0.5, seed=7)
    app = build(seeded(), DEFAULT_API_KEY, faults=faults)
    assert isinstance(app, FaultInjector)
    headers = {"Authorization": f"Bearer {DEFAULT_API_KEY}"}
    with (
        EmulatorThread(app) as running,
        httpx.Client(base_url=running.url, headers=headers) as http,
    ):
        statuses = [http.get("organizations") for _ in range(12)]
    seen = {a.status_code for a in statuses}
    assert 429 in seen, seen
    assert seen & {500, 503}, seen
    for answer in statuses:
        if answer.status_code != 200:
            assert set(answer.json()) == {"detail"}
            assert "request_id" not in answer.text
    assert all(a.headers.get("retry-after") for a in statuses if a.status_code == 429)


# The seed ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("organizations", "problem"),
    [
        ([{"id": ACME, "name": "a"}, {"id": ACME, "name": "b"}], "both named"),
        ([{"id": ACME, "name": "a"}, {"id": GLOBEX, "name": "a"}], "both named"),
        (
            [
                {
                    "id": ACME,
                    "name": "a",
                    "roles": [{"name": "Workspace Admin", "level": "workspace"}],
                }
            ],
            "predefined role",
        ),
        (
            [{"id": ACME, "name": "a", "roles": [{"name": "R", "level": "project"}] * 2}],
            "a second project role",
        ),
        (
            [
                {
                    "id": ACME,
                    "name": "a",
                    "roles": [{"name": "R", "level": "project", "assignments": [{}]}],
                }
            ],
            "exactly one",
        ),
    ],
)
def test_a_seed_zenml_would_never_hold_is_named(organizations: Any, problem: str) -> None:
    found = seed_problem(ZenmlSeed.model_validate({"organizations": organizations}))
    assert found is not None
    assert problem in found


def test_the_state_dumps_as_a_seed_that_seeds_the_same_state() -> None:
    first = seeded()
    again = ZenmlStore()
    again.load(first.dump())
    assert again.dump() == first.dump()
    assert [r.id for r in again.roles(ACME)] == [r.id for r in first.roles(ACME)]
