"""Realistic, valid organization policies from a seeded RNG, shared by the benchmarks."""

from __future__ import annotations

import json
import random
import uuid
from pathlib import Path
from typing import Any

ROLE_NAMES = (
    "invoice-approver",
    "auditor",
    "contractor",
    "support-agent",
    "report-viewer",
    "finance-analyst",
    "document-reviewer",
    "compliance-officer",
    "sso-manager",
    "scim-operator",
    "member-manager",
    "read-only",
    "external-accountant",
    "billing-viewer",
    "data-exporter",
    "legal-reviewer",
    "security-admin",
    "it-admin",
    "team-lead",
    "intern",
    "partner-portal-user",
    "procurement",
    "hr-coordinator",
    "ops-on-call",
)
ROLE_SUFFIXES = ("", "", "", "", "-emea", "-us", "-apac", "-tier2", "-temp", "-2024")
ORG_WORDS = (
    "acme",
    "globex",
    "hooli",
    "initech",
    "umbrella",
    "stark",
    "wayne",
    "wonka",
    "tyrell",
    "cyberdyne",
    "soylent",
    "massive",
    "vandelay",
    "pied-piper",
    "aperture",
    "oscorp",
)
VERBS = ("Approves", "Reads", "Manages", "Reviews", "Exports", "Audits", "Edits", "Oversees")
OBJECTS = (
    "invoices",
    "customer documents",
    "analytics reports",
    "the audit trail",
    "SSO connections",
    "SCIM provisioning",
    "member accounts",
    "quarterly statements",
)
QUALIFIERS = (
    "up to the finance team's limit",
    "for the external auditor",
    "during the onboarding period",
    "on behalf of the regional office",
    "for the compliance programme",
    "as agreed in the master services agreement",
    "without access to payment settings",
    "for incident response; granted for on-call rotations only and reviewed every quarter",
)


def load_resources(project_json: Path) -> dict[str, list[str]]:
    """resource_id -> declared actions, from the project snapshot."""
    policy = json.loads(project_json.read_text(encoding="utf-8"))["policy"]
    return {r["resource_id"]: list(r["actions"]) for r in policy["resources"]}


def project_role_ids(project_json: Path) -> set[str]:
    policy = json.loads(project_json.read_text(encoding="utf-8"))["policy"]
    return {r["role_id"] for r in policy["roles"]}


def make_description(rng: random.Random) -> str | None:
    """None (field left out), or one to three sentences."""
    if rng.random() < 0.15:
        return None
    sentences = [
        f"{rng.choice(VERBS)} {rng.choice(OBJECTS)} {rng.choice(QUALIFIERS)}."
        for _ in range(rng.choice((1, 1, 1, 2, 3)))
    ]
    return " ".join(sentences)


def make_org(rng: random.Random, resources: dict[str, list[str]]) -> dict[str, Any]:
    """One valid organization file: 1-6 roles, 1-4 permissions each, 1-5 actions each."""
    custom = [r for r in resources if not r.startswith("stytch.")]
    stytch = [r for r in resources if r.startswith("stytch.")]
    roles: list[dict[str, Any]] = []
    for name in rng.sample(ROLE_NAMES, rng.randint(1, 6)):
        permissions = []
        count = rng.randint(1, 4)
        # mostly the project's own resources, sometimes Stytch's defaults
        pool = custom if rng.random() < 0.8 else custom + stytch
        for resource_id in rng.sample(pool, min(count, len(pool))):
            declared = resources[resource_id]
            if rng.random() < 0.1:
                actions = ["*"]
            else:
                actions = rng.sample(declared, rng.randint(1, min(5, len(declared))))
            permissions.append({"resource_id": resource_id, "actions": actions})
        role: dict[str, Any] = {"role_id": name + rng.choice(ROLE_SUFFIXES)}
        description = make_description(rng)
        if description is not None:
            role["description"] = description
        role["permissions"] = permissions
        roles.append(role)
    org_uuid = uuid.UUID(int=rng.getrandbits(128), version=4)
    return {
        "$schema": "../../schemas/org-policy.schema.json",
        "organization_id": f"organization-test-{org_uuid}",
        "org_policy": {"roles": roles},
    }
