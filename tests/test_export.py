"""export's pure part: which organizations go into which files, and their bytes."""

from __future__ import annotations

import json

from policysync.export import (
    ORG_SCHEMA,
    Existing,
    Known,
    Target,
    choose,
    existing,
    org_file,
    project_file,
)
from policysync.models import OrgPolicy, ProjectPolicy


def known(org_id: str, slug: str, external: str | None = None, roles: bool = True) -> Known:
    return Known(org_id, slug, external, roles)


def test_existing_files_keep_what_they_say() -> None:
    data = b'\xef\xbb\xbf{"$schema": "s.json", "organization_id": "acme"}'
    assert existing("a.json", data) == Existing("a.json", "acme", "s.json")
    assert existing("b.json", b"{") == Existing("b.json", None, None)
    assert existing("c.json", b'{"organization_id": ""}') == Existing("c.json", None, None)
    assert existing("d.json", None) == Existing("d.json", None, None)


def test_refresh_reports_unreadable_and_duplicate_files() -> None:
    files = [
        Existing("a.json", "acme", None),
        Existing("b.json", None, None),
        Existing("c.json", "acme", "x"),
    ]
    targets, problems = choose(files, (), False, None)
    assert targets == [Target("acme", "a.json", None)]
    assert [(p.file, p.organization_id) for p in problems] == [("b.json", None), ("c.json", "acme")]
    # asking for one organization does not complain about unrelated unreadable files
    targets, problems = choose(files, ["acme"], False, None)
    assert targets == [Target("acme", "a.json", None)]
    assert [p.file for p in problems] == ["c.json"]


def test_new_files_are_named_after_the_slug_else_the_id() -> None:
    files = [Existing("globex.json", "org-1", None)]
    orgs = [
        known("org-2", "globex"),  # its slug's name is taken by another organization
        known("org-3", ".hidden/slug"),
        known("org-4", "no-roles", roles=False),
        known("org-1", "globex-slug"),  # has a file, under its id
    ]
    targets, problems = choose(files, (), True, orgs)
    assert problems == []
    assert targets == [
        Target("org-1", "globex.json", None),
        Target("org-3", "hidden-slug.json", ORG_SCHEMA),
        Target("org-2", "org-2.json", ORG_SCHEMA),
    ]


def test_an_org_asked_for_by_any_name_goes_into_its_file() -> None:
    files = [Existing("acme.json", "acme-slug", "keep.json")]
    orgs = [known("org-1", "acme-slug", "acme-42", roles=False), known("org-2", "b", roles=False)]
    targets, problems = choose(files, ["acme-42", "b", "org-2", "missing"], False, orgs)
    assert targets == [
        Target("acme-slug", "acme.json", "keep.json"),
        Target("org-2", "b.json", ORG_SCHEMA),
    ]
    assert [p.organization_id for p in problems] == ["missing"]


def test_the_canonical_form_sorts_everything_and_keeps_the_key_order() -> None:
    policy = OrgPolicy.model_validate(
        {
            "roles": [
                {"role_id": "b", "permissions": [{"resource_id": "y", "actions": ["z", "a"]}]},
                {
                    "role_id": "a",
                    "description": "first",
                    "permissions": [
                        {"resource_id": "y", "actions": ["read"]},
                        {"resource_id": "x", "actions": ["*"]},
                    ],
                },
            ]
        }
    )
    shuffled = OrgPolicy.model_validate(
        {"roles": [policy.roles[1].model_dump(), policy.roles[0].model_dump()]}
    )
    data = org_file(Target("org-1", "a.json", ORG_SCHEMA), policy)
    assert data == org_file(Target("org-1", "a.json", ORG_SCHEMA), shuffled)
    assert data.endswith(b"}\n")
    document = json.loads(data)
    assert list(document) == ["$schema", "organization_id", "org_policy"]
    assert [r["role_id"] for r in document["org_policy"]["roles"]] == ["a", "b"]
    assert document["org_policy"]["roles"][0]["permissions"][0]["resource_id"] == "x"
    assert document["org_policy"]["roles"][1] == {
        "role_id": "b",
        "description": "",
        "permissions": [{"resource_id": "y", "actions": ["a", "z"]}],
    }
    assert "$schema" not in json.loads(org_file(Target("org-1", "a.json", None), policy))


def test_project_file() -> None:
    policy = ProjectPolicy.model_validate(
        {
            "roles": [],
            "resources": [
                {"resource_id": "b", "actions": ["write", "read"]},
                {"resource_id": "a", "description": "A", "actions": ["x"]},
            ],
        }
    )
    document = json.loads(project_file("../s.json", policy))
    assert document == {
        "$schema": "../s.json",
        "policy": {
            "roles": [],
            "resources": [
                {"resource_id": "a", "description": "A", "actions": ["x"]},
                {"resource_id": "b", "description": "", "actions": ["read", "write"]},
            ],
            "scopes": [],
        },
    }
