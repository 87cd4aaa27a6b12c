"""The planner: canonical comparison, role changes, fingerprints, the plan's summary."""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Sequence
from pathlib import Path
from typing import TypeVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.plancases import case_state, check_golden, plan_case_dirs, plan_of

from policysync.canonical import fingerprint, normalize
from policysync.formats import file_format
from policysync.models import OrgPolicy, Permission, Role
from policysync.plan import (
    EscalationRules,
    OrgError,
    ResourceChange,
    RoleDiff,
    escalations,
    plan_is_empty,
    plan_org,
    role_diff,
)

T = TypeVar("T")
NOT_FOUND = OrgError(
    status=404,
    error_type="organization_not_found",
    message="Organization could not be found.",
    request_id="request-id-test-1",
)


def policy(*roles: Role) -> OrgPolicy:
    return OrgPolicy(roles=roles)


def role(role_id: str, *grants: tuple[str, tuple[str, ...]], description: str = "") -> Role:
    permissions = tuple(Permission(resource_id=r, actions=a) for r, a in grants)
    return Role(role_id=role_id, description=description, permissions=permissions)


@pytest.mark.parametrize("case", plan_case_dirs(), ids=lambda p: p.name)
def test_case(case: Path, update_golden: bool) -> None:
    org = plan_org(*case_state(case))
    actual = {
        "action": org.action,
        "role_changes": [change.model_dump(mode="json") for change in org.role_changes],
    }
    check_golden(case / "expected.json", json.dumps(actual, indent=2) + "\n", update_golden)


def test_cases_cover_each_kind_of_outcome() -> None:
    actions = {plan_org(*case_state(case)).action for case in plan_case_dirs()}
    assert actions == {"no-op", "update", "error"}


def test_normalize_merges_sorts_and_deduplicates() -> None:
    written = policy(
        role("b", ("x", ("write", "read")), ("a", ("read",)), ("x", ("read", "delete"))),
        role("a", ("x", ("*",)), description=" Kept as written "),
    )
    assert normalize(written) == policy(
        role("a", ("x", ("*",)), description=" Kept as written "),
        role("b", ("a", ("read",)), ("x", ("delete", "read", "write"))),
    )


def test_wildcard_is_compared_as_written() -> None:
    explicit = policy(role("r", ("invoices", ("approve", "read"))))
    wildcard = policy(role("r", ("invoices", ("*",))))
    assert normalize(explicit) != normalize(wildcard)
    assert fingerprint(explicit) != fingerprint(wildcard)


def test_fingerprint_is_a_sha256_of_the_canonical_form() -> None:
    digest = fingerprint(policy(role("r", ("x", ("b", "a")), ("y", ("c",)))))
    assert digest.startswith("sha256:")
    assert len(digest) == len("sha256:") + 64
    assert digest == fingerprint(policy(role("r", ("y", ("c",)), ("x", ("a", "b")))))


def test_fingerprint_of_any_string_even_a_lone_surrogate() -> None:
    assert fingerprint(policy(role("\ud800", description="é"))).startswith("sha256:")


def test_an_unreadable_organization_is_planned_as_an_error() -> None:
    org = plan_org("initech", "orgs/initech.json", policy(role("r")), NOT_FOUND)
    assert (org.action, org.error, org.prior, org.prior_fingerprint) == (
        "error",
        NOT_FOUND,
        None,
        None,
    )
    assert org.role_changes == ()


def test_prior_fingerprint_is_the_live_policy_s() -> None:
    live = policy(role("r", ("x", ("read",))))
    org = plan_org("acme", "orgs/acme.json", policy(), live)
    assert org.prior == live
    assert org.prior_fingerprint == fingerprint(live)


def test_make_plan_sorts_organizations_and_counts() -> None:
    old = role("old", ("x", ("read",)))
    plan = plan_of(
        [
            ("zeta", "orgs/zeta.json", policy(role("new", ("x", ("read",)))), policy(old)),
            ("alpha", "orgs/alpha.json", policy(), NOT_FOUND),
            ("mid", "orgs/mid.json", policy(old), policy(old)),
            ("beta", "orgs/beta.json", policy(role("old", ("x", ("*",)))), policy(old)),
        ]
    )
    assert [o.organization_id for o in plan.organizations] == ["alpha", "beta", "mid", "zeta"]
    assert [o.action for o in plan.organizations] == ["error", "update", "no-op", "update"]
    counts = plan.summary.model_dump()
    assert counts == {
        "add": 1,
        "change": 1,
        "destroy": 1,
        "organizations": 4,
        "changed": 2,
        "failed": 1,
    }
    assert plan.format_version == "4"
    assert not plan_is_empty(plan)


def test_a_plan_with_errors_but_no_update_is_empty() -> None:
    same = policy(role("r", ("x", ("read",))))
    plan = plan_of([("a", "a.json", same, NOT_FOUND), ("b", "b.json", same, same)])
    assert plan_is_empty(plan)
    assert plan.summary.failed == 1


def test_role_diff_per_resource_and_description() -> None:
    before = role("r", ("gone", ("read",)), ("x", ("read", "delete")), description="old")
    after = role("r", ("x", ("read",)), ("x", ("approve",)), ("new", ("b", "a")), description="new")
    assert role_diff(before, after) == RoleDiff(
        description=("old", "new"),
        resources=(
            ResourceChange("gone", "delete", (), ("read",)),
            ResourceChange("new", "create", ("a", "b"), ()),
            ResourceChange("x", "update", ("approve",), ("delete",)),
        ),
    )


def test_role_diff_of_equivalent_roles_is_empty() -> None:
    before = role("r", ("x", ("read",)), ("x", ("write", "read")))
    assert role_diff(before, role("r", ("x", ("write", "read")))) == RoleDiff(None, ())


# Small alphabets, so that generated policies often share roles, resources and actions.
permissions = st.builds(
    Permission,
    resource_id=st.sampled_from(["documents", "invoices", "reports"]),
    actions=st.lists(st.sampled_from(["*", "read", "write", "delete"]), min_size=1, max_size=3).map(
        tuple
    ),
)


roles = st.builds(
    Role,
    role_id=st.sampled_from(["admin", "auditor", "editor", "viewer"]),
    description=st.sampled_from(["", "Reads", "Writes"]),
    permissions=st.lists(permissions, min_size=1, max_size=3).map(tuple),
)
policies = st.lists(roles, max_size=4, unique_by=lambda r: r.role_id).map(
    lambda rs: OrgPolicy(roles=tuple(rs))
)


def shuffled(items: Sequence[T], rnd: random.Random) -> tuple[T, ...]:
    return tuple(rnd.sample(list(items), len(items)))


def rewritten_role(r: Role, rnd: random.Random) -> Role:
    """`r` as Stytch sees it too: permissions reordered and split, actions repeated."""
    entries = []
    for p in r.permissions:
        actions = [*p.actions, *rnd.sample(p.actions, rnd.randint(0, len(p.actions)))]
        cut = rnd.randint(1, len(actions))
        entries += [(p.resource_id, actions[:cut]), (p.resource_id, actions[cut:])]
    grants = [Permission(resource_id=rid, actions=shuffled(a, rnd)) for rid, a in entries if a]
    return Role(role_id=r.role_id, description=r.description, permissions=tuple(grants))


def rewritten(p: OrgPolicy, rnd: random.Random) -> OrgPolicy:
    roles = [rewritten_role(r, rnd) for r in p.roles]
    return OrgPolicy(roles=shuffled(roles, rnd))


def nudged(p: OrgPolicy, index: int, extra: Permission) -> OrgPolicy:
    """`p` with one more permission in one role: a change, unless it grants nothing new."""
    roles = list(p.roles)
    roles[index] = roles[index].model_copy(
        update={"permissions": (*roles[index].permissions, extra)}
    )
    return OrgPolicy(roles=tuple(roles))


@st.composite
def policy_pairs(draw: st.DrawFn) -> tuple[OrgPolicy, OrgPolicy]:
    """A desired and a live policy: unrelated, the same one written differently, or
    that one with a small difference."""
    desired = draw(policies)
    kind = draw(st.sampled_from(["unrelated", "same", "nearly"]))
    if kind == "unrelated":
        return desired, draw(policies)
    live = rewritten(desired, draw(st.randoms(use_true_random=True)))
    if kind == "nearly" and live.roles:
        live = nudged(live, draw(st.integers(0, len(live.roles) - 1)), draw(permissions))
    return desired, live


@settings(max_examples=250, deadline=None)
@given(policy_pairs())
def test_changes_iff_normalized_forms_differ_iff_fingerprints_do(
    pair: tuple[OrgPolicy, OrgPolicy],
) -> None:
    desired, live = pair
    same = normalize(desired) == normalize(live)
    org = plan_org("acme", "orgs/acme.json", desired, live)
    assert (org.role_changes == ()) == same
    assert (org.action == "no-op") == same
    assert (fingerprint(desired) == fingerprint(live)) == same


@settings(max_examples=150, deadline=None)
@given(policies, st.randoms(use_true_random=True))
def test_a_policy_written_differently_is_no_change(p: OrgPolicy, rnd: random.Random) -> None:
    assert plan_org("acme", "orgs/acme.json", p, rewritten(p, rnd)).role_changes == ()
    assert normalize(normalize(p)) == normalize(p)


@settings(max_examples=150, deadline=None)
@given(policy_pairs())
def test_applying_the_role_changes_to_live_gives_desired(pair: tuple[OrgPolicy, OrgPolicy]) -> None:
    desired, live = pair
    roles = {r.role_id: r for r in live.roles}
    for change in plan_org("acme", "orgs/acme.json", desired, live).role_changes:
        assert change.before == roles.get(change.role_id)
        if change.after is None:
            del roles[change.role_id]
        else:
            roles[change.role_id] = change.after
    assert normalize(OrgPolicy(roles=tuple(roles.values()))) == normalize(desired)


def reference_fingerprint(p: OrgPolicy) -> str:
    """The definition of a fingerprint, as saved plans made by any version rely on."""
    roles = []
    for r in sorted(p.roles, key=lambda r: r.role_id):
        grants: dict[str, set[str]] = {}
        for permission in r.permissions:
            grants.setdefault(permission.resource_id, set()).update(permission.actions)
        permissions = [{"resource_id": k, "actions": sorted(v)} for k, v in grants.items()]
        permissions.sort(key=lambda permission: str(permission["resource_id"]))
        roles.append(
            {"role_id": r.role_id, "description": r.description, "permissions": permissions}
        )
    text = json.dumps({"roles": roles}, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return "sha256:" + hashlib.sha256(text.encode("ascii")).hexdigest()


ANY_TEXT = st.text(st.characters(codec=None), max_size=8)  # controls, DEL, surrogates...


@settings(max_examples=300)
@given(
    st.lists(
        st.builds(
            Role,
            role_id=ANY_TEXT,
            description=ANY_TEXT,
            permissions=st.lists(
                st.builds(Permission, resource_id=ANY_TEXT, actions=st.lists(ANY_TEXT)),
                max_size=3,
            ).map(tuple),
        ),
        max_size=4,
        unique_by=lambda r: r.role_id,
    )
)
def test_fingerprint_is_the_defined_digest_for_any_text(roles: list[Role]) -> None:
    p = OrgPolicy(roles=tuple(roles))
    assert fingerprint(p) == reference_fingerprint(p)


def test_fingerprint_is_stable_across_versions() -> None:
    """Pinned: a saved plan's prior_fingerprint is checked by whatever version applies it."""
    described = role("zeta", ("docs", ("write", "read")), description='plain \x7f \x1f \n "q"')
    assert fingerprint(policy(described)) == (
        "sha256:e9bfbadb41da62835c6101277bf13aecd78f52ada1a9bd1d6709f4ba1035f9bd"
    )


# Escalations ---------------------------------------------------------------------------


STYTCH = file_format("stytch").escalations


def with_sensitive(provider: str, sensitive: list[tuple[str, str]]) -> EscalationRules:
    return file_format(provider).escalations._replace(sensitive=frozenset(sensitive))


def flagged(
    before: OrgPolicy | OrgError, after: OrgPolicy, rules: EscalationRules = STYTCH
) -> list[tuple[str, str, str, str]]:
    org = plan_org("acme", "orgs/acme.json", after, before)
    return [(e.role_id, e.resource_id, e.action, e.reason) for e in escalations(org, rules)]


def test_escalations_are_the_widening_grants_a_role_gains() -> None:
    before = policy(
        role("admin", ("invoices", ("read", "void"))),
        role("root", ("invoices", ("*",))),
        role("gone", ("stytch.member", ("*",))),
    )
    after = policy(
        role("admin", ("invoices", ("read", "*")), ("stytch.member", ("search",))),
        role("root", ("invoices", ("*", "approve"))),  # "*" covered approve already
        role("new", ("stytch.organization", ("*",)), ("reports", ("export", "read"))),
    )
    assert flagged(before, after) == [
        ("admin", "invoices", "*", "wildcard"),
        ("admin", "stytch.member", "search", "stytch-resource"),
        ("new", "stytch.organization", "*", "wildcard"),  # the first reason that applies
    ]
    # What a role keeps, loses, or a deleted role had, is no escalation.
    assert flagged(after, policy(*before.roles[:2])) == []
    assert flagged(after, after) == []
    # An organization that could not be read has no known gains.
    assert flagged(NOT_FOUND, after) == []


def test_sensitive_grants_are_escalations_for_either_provider() -> None:
    before = policy(role("clerk", ("invoices", ("read",))))
    after = policy(
        role("clerk", ("invoices", ("read", "void", "*")), ("stytch.member", ("update",)))
    )
    sensitive = [("invoices", "void"), ("invoices", "approve")]
    stytch = with_sensitive("stytch", sensitive)
    assert flagged(before, after, stytch) == [
        ("clerk", "invoices", "*", "wildcard"),
        ("clerk", "invoices", "void", "sensitive"),
        ("clerk", "stytch.member", "update", "stytch-resource"),
    ]
    # ZenML Pro has no wildcard and no Stytch resources: only `sensitive` applies.
    zenml = with_sensitive("zenml", sensitive)
    assert flagged(before, after, zenml) == [("clerk", "invoices", "void", "sensitive")]
    assert flagged(before, after, with_sensitive("zenml", [])) == []


def test_a_plan_lists_the_escalations_of_its_organizations_in_order() -> None:
    widened = policy(role("r", ("x", ("*",))))
    narrow = policy(role("r", ("x", ("read",))))
    plan = plan_of(
        [
            ("zeta", "orgs/zeta.json", widened, narrow),
            ("alpha", "orgs/alpha.json", widened, policy()),
            ("beta", "orgs/beta.json", widened, widened),
            ("gamma", "orgs/gamma.json", widened, NOT_FOUND),
        ]
    )
    assert [(e.organization_id, e.reason) for e in plan.escalations] == [
        ("alpha", "wildcard"),
        ("zeta", "wildcard"),
    ]
    assert plan.document().escalations == plan.escalations
