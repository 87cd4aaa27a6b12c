"""The stored state: a property test of PUT sequences, and persistence across SIGKILL.

The oracle is independent of the server's code: the official SDK's
`validate_org_policy` (rules 1 to 6) plus the server-side limits written out here.
"""

from __future__ import annotations

import asyncio
import copy
import json
import signal
from pathlib import Path
from typing import Any

import httpx
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from stytch.b2b.api.rbac_organizations import Organizations as SdkOrgPolicies
from stytch.b2b.models.rbac import OrgPolicy as SdkOrgPolicy
from stytch.b2b.models.rbac import Policy as SdkPolicy
from support.processes import emulator_process, run

from policysync.config import Limits
from policysync.emulator.app import ERROR_TYPES
from policysync.emulator.seed import Seed
from policysync.emulator.server import build
from policysync.emulator.store import Store
from policysync.models import OrgPolicy

from .conftest import PROJECT_ID, SECRET, SEED_FILE, demo_seed

SEED = demo_seed()
ORGS = SEED.organizations
LIMITS = Limits(max_roles_per_org=3, max_role_id_length=14, max_description_length=10)
SDK_PROJECT = SdkPolicy.model_validate(json.loads(SEED.policy.model_dump_json()))
DECLARED = {r.resource_id: list(r.actions) for r in SEED.policy.resources}


def expected_valid(policy: dict[str, Any]) -> bool:
    """Whether Stytch (as the emulator is configured here) accepts `policy`."""
    try:
        SdkOrgPolicies.validate_org_policy(SDK_PROJECT, SdkOrgPolicy.model_validate(policy))
    except Exception:
        return False
    roles = policy["roles"]
    if len(roles) > LIMITS.max_roles_per_org:
        return False
    for role in roles:
        if len(role["role_id"]) > LIMITS.max_role_id_length:
            return False
        if len(role["description"]) > LIMITS.max_description_length:
            return False
        if not role["permissions"]:
            return False
        for permission in role["permissions"]:
            if len(set(permission["actions"])) != len(permission["actions"]):
                return False
    return True


# Policies: some surely valid, most anything drawn from a vocabulary rich in mistakes.

valid_permission = st.sampled_from(["documents", "invoices", "reports", "stytch.member"]).flatmap(
    lambda resource: st.fixed_dictionaries(
        {
            "resource_id": st.just(resource),
            "actions": st.just(["*"])
            | st.lists(st.sampled_from(DECLARED[resource]), min_size=1, max_size=3, unique=True),
        }
    )
)
valid_policy = st.lists(
    st.fixed_dictionaries(
        {
            "role_id": st.sampled_from(["ops", "auditor", "team-lead", "stytch_custom"]),
            "description": st.sampled_from(["", "Short"]),
            "permissions": st.lists(
                valid_permission, min_size=1, max_size=2, unique_by=lambda p: p["resource_id"]
            ),
        }
    ),
    max_size=3,
    unique_by=lambda r: r["role_id"],
).map(lambda roles: {"roles": roles})

any_permission = st.fixed_dictionaries(
    {
        "resource_id": st.sampled_from(["documents", "invoices", "stytch.member", "spreadsheets"]),
        "actions": st.lists(
            st.sampled_from(["read", "create", "approve", "search", "*", "", " ", "fly"]),
            max_size=3,
        ),
    }
)
any_policy = st.lists(
    st.fixed_dictionaries(
        {
            "role_id": st.sampled_from(
                ["ops", "auditor", "viewer", "stytch_member", "stytch_custom", "far-too-long-id"]
            ),
            "description": st.sampled_from(["", "Short", "Far too long a text"]),
            "permissions": st.lists(any_permission, max_size=2),
        }
    ),
    max_size=4,
).map(lambda roles: {"roles": roles})


def _break(policy: dict[str, Any], how: str) -> dict[str, Any]:
    """`policy` with one rule broken (in its first role, added when there is none)."""
    out = copy.deepcopy(policy)
    if not out["roles"]:
        out["roles"].append(
            {
                "role_id": "x",
                "description": "",
                "permissions": [{"resource_id": "documents", "actions": ["read"]}],
            }
        )
    first = out["roles"][0]
    permission = first["permissions"][0]
    if how == "duplicate-action":
        permission["actions"] = (
            ["read", "read"]
            if permission["actions"] == ["*"]
            else [*permission["actions"], permission["actions"][0]]
        )
    elif how == "wildcard-and-more":
        permission["actions"] = ["*", DECLARED[permission["resource_id"]][0]]
    elif how == "no-actions":
        permission["actions"] = []
    elif how == "blank-action":
        permission["actions"] = [*permission["actions"], ""]
    elif how == "unknown-action":
        permission["actions"] = ["fly"]
    elif how == "unknown-resource":
        permission["resource_id"] = "spreadsheets"
    elif how == "no-permissions":
        first["permissions"] = []
    elif how == "project-role":
        first["role_id"] = "billing-admin"
    elif how == "duplicate-role":
        out["roles"].append(copy.deepcopy(first))
    elif how == "long-role-id":
        first["role_id"] = "r" * (LIMITS.max_role_id_length + 1)
    elif how == "long-description":
        first["description"] = "d" * (LIMITS.max_description_length + 1)
    elif how == "too-many-roles":
        for i in range(LIMITS.max_roles_per_org):
            out["roles"].append({**copy.deepcopy(first), "role_id": f"extra-{i}"})
    else:
        raise AssertionError(f"no such break: {how}")
    return out


BREAKS = [
    "duplicate-action",
    "wildcard-and-more",
    "no-actions",
    "blank-action",
    "unknown-action",
    "unknown-resource",
    "no-permissions",
    "project-role",
    "duplicate-role",
    "long-role-id",
    "long-description",
    "too-many-roles",
]
broken_policy = st.tuples(valid_policy, st.sampled_from(BREAKS)).map(lambda pb: _break(*pb))

steps = st.lists(
    st.tuples(
        st.integers(0, len(ORGS) - 1),  # which organization
        st.sampled_from(["id", "slug", "external_id"]),  # named how
        valid_policy | broken_policy | any_policy,
        st.sampled_from(["full", "sdk-style", "other-org-in-body"]),  # written how
    ),
    min_size=1,
    max_size=8,
)


def key_of(org_index: int, kind: str) -> str:
    org = ORGS[org_index]
    if kind == "slug":
        return org.organization_slug
    if kind == "external_id" and org.organization_external_id is not None:
        return org.organization_external_id
    return org.organization_id


def body_of(policy: dict[str, Any], style: str, org_index: int) -> dict[str, Any]:
    if style == "full":
        return {"org_policy": policy}
    if style == "other-org-in-body":  # the path wins
        other = ORGS[(org_index + 1) % len(ORGS)].organization_id
        return {"organization_id": other, "org_policy": policy}
    # As SDKs that omit empty fields write it.
    roles = [{k: v for k, v in r.items() if v != ""} for r in policy["roles"]]
    return {"org_policy": {"roles": roles}} if roles else {"org_policy": {}}


def stored_policies(store: Store) -> dict[str, OrgPolicy]:
    return {o.organization_id: o.org_policy for o in store.dump().organizations}


@settings(
    max_examples=75,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(steps=steps)
def test_state_is_the_last_valid_put_of_each_organization(
    steps: list[tuple[int, str, dict[str, Any], str]],
) -> None:
    store = Store()
    store.load(SEED)
    app = build(store, PROJECT_ID, SECRET, LIMITS)
    model = {o.organization_id: o.org_policy for o in ORGS}

    async def scenario() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://emulator", auth=(PROJECT_ID, SECRET)
        ) as client:
            for org_index, kind, policy, style in steps:
                org_id = ORGS[org_index].organization_id
                path = "/v1/b2b/rbac/organizations/" + key_of(org_index, kind)
                before = (await client.get(f"/v1/b2b/organizations/{org_id}")).json()
                response = await client.put(path, json=body_of(policy, style, org_index))
                valid = expected_valid(policy)
                event("a valid PUT" if valid else "an invalid PUT")
                if valid:
                    assert response.status_code == 200, response.text
                    assert response.json()["org_policy"] == policy
                    model[org_id] = OrgPolicy.model_validate(policy)
                else:
                    assert response.status_code == 400, (policy, response.text)
                    assert response.json()["error_type"] in set(ERROR_TYPES.values())
                    after = (await client.get(f"/v1/b2b/organizations/{org_id}")).json()
                    assert after["organization"] == before["organization"]
                assert stored_policies(store) == model
                read = await client.get(path)
                assert OrgPolicy.model_validate(read.json()["org_policy"]) == model[org_id]

    try:
        asyncio.run(scenario())
        assert store.dump().policy == SEED.policy
        assert [o.org_policy_disabled for o in store.dump().organizations] == [False] * len(ORGS)
    finally:
        store.close()


@given(valid_policy, st.sampled_from(BREAKS))
@settings(max_examples=50, deadline=None)
def test_the_oracle_tells_valid_from_broken(policy: dict[str, Any], how: str) -> None:
    assert expected_valid(policy)
    assert not expected_valid(_break(policy, how))


def test_the_oracle_tells_valid_from_invalid() -> None:
    ok = {"roles": [{"role_id": "ops", "description": "", "permissions": []}]}
    assert not expected_valid(ok)  # a role without permissions
    ok["roles"][0]["permissions"] = [{"resource_id": "documents", "actions": ["read"]}]
    assert expected_valid(ok)
    assert not expected_valid({"roles": [{**ok["roles"][0], "role_id": "viewer"}]})
    assert not expected_valid({"roles": [{**ok["roles"][0], "description": "x" * 11}]})


# Persistence ---------------------------------------------------------------------------


def put(url: str, key: str, roles: list[dict[str, Any]]) -> httpx.Response:
    return httpx.put(
        f"{url}v1/b2b/rbac/organizations/{key}",
        json={"org_policy": {"roles": roles}},
        auth=(PROJECT_ID, SECRET),
        timeout=10,
    )


def state(url: str) -> Seed:
    response = httpx.get(url + "_emulator/state", auth=(PROJECT_ID, SECRET), timeout=10)
    assert response.status_code == 200
    return Seed.model_validate_json(response.content)


def by_slug(seed: Seed) -> dict[str, OrgPolicy]:
    return {o.organization_slug: o.org_policy for o in seed.organizations}


def role(role_id: str, resource_id: str = "documents", actions: list[str] | None = None) -> Any:
    permissions = [{"resource_id": resource_id, "actions": actions or ["read"]}]
    return {"role_id": role_id, "description": "", "permissions": permissions}


def test_state_survives_sigkill_and_a_dump_seeds_again(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    expected = {o.organization_slug: o.org_policy for o in ORGS}
    with emulator_process("--db", str(db), "--seed", str(SEED_FILE), cwd=tmp_path) as first:
        assert put(first.url, "acme", [role("first")]).status_code == 200
        assert (
            put(first.url, "acme-42", [role("second"), role("third", "reports")]).status_code == 200
        )
        assert put(first.url, "globex", []).status_code == 200
        assert put(first.url, "hooli", [role("ops", "invoices", ["*"])]).status_code == 200
        assert put(first.url, "initech", [role("viewer")]).status_code == 400  # not applied
        expected["acme"] = OrgPolicy.model_validate(
            {"roles": [role("second"), role("third", "reports")]}
        )
        expected["globex"] = OrgPolicy(roles=())
        expected["hooli"] = OrgPolicy.model_validate({"roles": [role("ops", "invoices", ["*"])]})
        assert by_slug(state(first.url)) == expected
        assert first.kill() == -signal.SIGKILL
    assert f"state: {db}" in first.stdout

    with emulator_process("--db", str(db), cwd=tmp_path) as second:
        assert by_slug(state(second.url)) == expected
        roles = httpx.get(
            second.url + "v1/b2b/rbac/organizations/acme", auth=(PROJECT_ID, SECRET), timeout=10
        ).json()["org_policy"]["roles"]
        assert [r["role_id"] for r in roles] == ["second", "third"]
        assert put(second.url, "soylent", [role("late")]).status_code == 200
        expected["soylent"] = OrgPolicy.model_validate({"roles": [role("late")]})
        second.kill()

    # --seed on a database that holds a state is not applied, and says so.
    with emulator_process("--db", str(db), "--seed", str(SEED_FILE), cwd=tmp_path) as third:
        assert by_slug(state(third.url)) == expected
        third.stop()
    assert "already holds a state" in third.stderr
    assert "was not applied" in third.stderr
    assert str(SEED_FILE) in third.stderr

    dumped = run("--dump", "--db", str(db), cwd=tmp_path)
    assert dumped.returncode == 0, dumped.stderr
    dump = Seed.model_validate_json(dumped.stdout)
    assert by_slug(dump) == expected
    assert dump.policy == SEED.policy
    dump_file = tmp_path / "dump.json"
    dump_file.write_text(dumped.stdout)
    fresh = tmp_path / "fresh.db"
    with emulator_process("--db", str(fresh), "--seed", str(dump_file), cwd=tmp_path) as fourth:
        assert state(fourth.url) == dump
        fourth.stop()
    assert "note:" not in fourth.stderr
