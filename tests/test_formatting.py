"""The canonical bytes `policysync fmt` writes never change what a file means: a file,
however it is written, and its formatted bytes plan alike against any live policy, name
the same organization with the same `$schema`, lose no role or permission, and format
to themselves. For both providers' files."""

from __future__ import annotations

import json
import random
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from test_plan import permissions, policies, rewritten

from policysync.canonical import same_role
from policysync.export import existing
from policysync.formats import file_format
from policysync.formatting import org_bytes, project_bytes
from policysync.models import OrgPolicy, OrgPolicyFile, ProjectPolicy, Resource, Scope
from policysync.plan import plan_org
from policysync.zenml_models import ZenmlOrgFile

STYTCH, ZENML = file_format("stytch"), file_format("zenml")
SCHEMAS = st.sampled_from([None, "", "../../schemas/org-policy.schema.json", "https://x/s.json"])
ORG_IDS = st.sampled_from(["acme", "organization-test-1", "Ünïcode org", 'quote " and \\'])


def written(document: dict[str, Any], rnd: random.Random) -> bytes:
    """`document` as a person or a tool may write it: any spacing, keys in any order,
    an empty description left out, maybe a byte order mark."""

    def shuffle(value: Any) -> Any:
        if isinstance(value, list):
            return [shuffle(v) for v in value]
        if isinstance(value, dict):
            keys = rnd.sample(list(value), len(value))
            return {
                k: shuffle(value[k])
                for k in keys
                if not (k == "description" and value[k] == "" and rnd.random() < 0.5)
            }
        return value

    text = json.dumps(
        shuffle(document),
        indent=rnd.choice([None, 0, 1, 2, 4, "\t"]),
        ensure_ascii=rnd.random() < 0.5,
    )
    return (b"\xef\xbb\xbf" if rnd.random() < 0.2 else b"") + text.encode()


def same_plan(a: OrgPolicy, b: OrgPolicy, live: OrgPolicy) -> bool:
    """Whether `a` and `b`, as desired, plan the same role changes against `live`."""
    first = plan_org("acme", "orgs/acme.json", a, live)
    second = plan_org("acme", "orgs/acme.json", b, live)
    if first.action != second.action or len(first.role_changes) != len(second.role_changes):
        return False
    return all(
        (x.role_id, x.action, x.before) == (y.role_id, y.action, y.before)
        and (x.after is y.after is None or (x.after and y.after and same_role(x.after, y.after)))
        for x, y in zip(first.role_changes, second.role_changes, strict=True)
    )


def stytch_entries(policy: OrgPolicy) -> list[tuple[str, str, str, tuple[str, ...]]]:
    """Every role's every permission, as written, in no order."""
    return sorted(
        (role.role_id, role.description, p.resource_id, tuple(sorted(p.actions)))
        for role in policy.roles
        for p in role.permissions
    )


@settings(max_examples=200, deadline=None)
@given(policies, policies, ORG_IDS, SCHEMAS, st.randoms(use_true_random=True))
def test_a_formatted_stytch_file_means_what_it_meant(
    policy: OrgPolicy,
    live: OrgPolicy,
    org_id: str,
    schema: str | None,
    rnd: random.Random,
) -> None:
    as_written = rewritten(policy, rnd)  # permissions split, reordered, actions repeated
    head = {"$schema": schema} if schema is not None else {}
    document = head | {"organization_id": org_id, "org_policy": as_written.model_dump()}
    data = written(document, rnd)
    read = STYTCH.parse_policy(data.removeprefix(b"\xef\xbb\xbf"))
    formatted = org_bytes(STYTCH, "acme.json", data, read)

    again = OrgPolicyFile.model_validate_json(formatted)
    assert again.organization_id == org_id
    assert existing("acme.json", formatted).schema == schema
    assert same_plan(read.org_policy, again.org_policy, live)
    assert same_plan(read.org_policy, again.org_policy, as_written)
    assert stytch_entries(again.org_policy) == stytch_entries(read.org_policy)  # nothing lost
    assert org_bytes(STYTCH, "acme.json", formatted, again) == formatted


zenml_roles = st.lists(
    st.fixed_dictionaries(
        {
            "name": st.sampled_from(["Reviewers", "Operators", "Team: Leads"]),
            "level": st.sampled_from(["organization", "workspace", "project"]),
            "description": st.sampled_from(["", "Reviews runs"]),
            "permissions": st.lists(
                st.fixed_dictionaries(
                    {
                        "resource": st.sampled_from(["pipeline", "pipeline_run", "stack"]),
                        "action": st.sampled_from(["read", "update", "delete"]),
                    }
                ),
                max_size=5,
            ),
        }
    ),
    max_size=4,
    unique_by=lambda role: (role["level"], role["name"]),
)


def zenml_grants(document: ZenmlOrgFile) -> frozenset[tuple[str, str, str, str, str]]:
    return frozenset(
        (r.level, r.name, r.description, p.resource, p.action)
        for r in document.roles
        for p in r.permissions
    )


@settings(max_examples=200, deadline=None)
@given(zenml_roles, zenml_roles, ORG_IDS, SCHEMAS, st.randoms(use_true_random=True))
def test_a_formatted_zenml_file_means_what_it_meant(
    roles: list[dict[str, Any]],
    live_roles: list[dict[str, Any]],
    org_id: str,
    schema: str | None,
    rnd: random.Random,
) -> None:
    head = {"$schema": schema} if schema is not None else {}
    data = written(head | {"organization_id": org_id, "roles": roles}, rnd)
    original = ZenmlOrgFile.model_validate_json(data.removeprefix(b"\xef\xbb\xbf"))
    read = ZENML.parse_policy(data.removeprefix(b"\xef\xbb\xbf"))
    formatted = org_bytes(ZENML, "acme.json", data, read)

    again = ZenmlOrgFile.model_validate_json(formatted)
    assert again.organization_id == org_id
    assert existing("acme.json", formatted).schema == schema
    assert zenml_grants(again) == zenml_grants(original)  # only a repeated pair goes
    assert all(len(set(r.permissions)) == len(r.permissions) for r in again.roles)
    assert {(r.level, r.name) for r in again.roles} == {(r.level, r.name) for r in original.roles}
    live = ZENML.parse_policy(json.dumps({"organization_id": org_id, "roles": live_roles}).encode())
    assert same_plan(read.org_policy, ZENML.parse_policy(formatted).org_policy, live.org_policy)
    assert org_bytes(ZENML, "acme.json", formatted, ZENML.parse_policy(formatted)) == formatted


project_policies = st.builds(
    ProjectPolicy,
    roles=policies.map(lambda p: p.roles),
    resources=st.lists(
        st.builds(
            Resource,
            resource_id=st.sampled_from(["documents", "invoices"]),
            description=st.sampled_from(["", "Invoices"]),
            actions=st.lists(st.sampled_from(["read", "write"]), max_size=3).map(tuple),
        ),
        max_size=3,
    ).map(tuple),
    scopes=st.lists(
        st.builds(
            Scope,
            scope=st.sampled_from(["read:documents", "write:invoices"]),
            description=st.sampled_from(["", "Read"]),
            permissions=st.lists(permissions, max_size=2).map(tuple),
        ),
        max_size=2,
    ).map(tuple),
)


@settings(max_examples=100, deadline=None)
@given(project_policies, SCHEMAS, st.randoms(use_true_random=True))
def test_a_formatted_project_file_keeps_every_item(
    policy: ProjectPolicy, schema: str | None, rnd: random.Random
) -> None:
    head = {"$schema": schema} if schema is not None else {}
    data = written(head | {"policy": policy.model_dump()}, rnd)
    formatted = project_bytes(data, policy)
    again = json.loads(formatted)
    assert again.get("$schema") == schema
    again_policy = ProjectPolicy.model_validate(again["policy"])

    def items(p: ProjectPolicy) -> list[str]:
        listed = [*p.roles, *p.resources, *p.scopes]
        return sorted(
            json.dumps(
                x.model_dump(mode="json")
                | {
                    "permissions": sorted(
                        (q.resource_id, sorted(q.actions)) for q in getattr(x, "permissions", ())
                    ),
                    "actions": sorted(getattr(x, "actions", ())),
                }
            )
            for x in listed
        )

    assert items(again_policy) == items(policy)  # every item, nothing merged
    assert project_bytes(formatted, again_policy) == formatted
