"""The files at a git commit playing live: the provider of `plan --against-ref`."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from support.gitkit import commit_all, sample_repo

from policysync.errors import ProviderError
from policysync.models import OrgPolicy, OrgPolicyFile, ProjectPolicyFile, TemplateFile
from policysync.providers.base import Provider
from policysync.providers.gitref import NO_ROLES, GitRef

POLICIES = Path("policies")


def at(ref: str) -> GitRef:
    return GitRef.at(POLICIES, ref, 1_048_576)


def test_it_reads_the_files_of_the_commit_not_the_work_tree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = sample_repo(tmp_path, monkeypatch)
    acme_file = POLICIES / "orgs" / "acme.json"
    acme = OrgPolicyFile.model_validate_json(acme_file.read_text())
    acme_file.write_text(json.dumps({"organization_id": acme.organization_id, "org_policy": {}}))
    provider: Provider = at(base)  # the protocol, as the commands use it
    assert provider.project_id == f"git:{base}"

    async def read() -> tuple[OrgPolicy, OrgPolicy]:
        async with provider:
            return await provider.read_org(acme.organization_id), await provider.read_org("x")

    finance = TemplateFile.model_validate_json(
        (POLICIES / "templates" / "finance.json").read_text()
    )
    expanded = OrgPolicy(roles=finance.roles + acme.org_policy.roles)  # acme's template first
    assert asyncio.run(read()) == (expanded, NO_ROLES)  # no file at REF: no roles
    project = ProjectPolicyFile.model_validate_json((POLICIES / "project.json").read_text())
    assert asyncio.run(provider.read_catalog()) == project.policy


def test_an_organization_whose_file_is_broken_at_the_commit_is_unknown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sample_repo(tmp_path, monkeypatch)
    acme_file = POLICIES / "orgs" / "acme.json"
    acme = OrgPolicyFile.model_validate_json(acme_file.read_text())
    acme_file.write_text(json.dumps({"organization_id": acme.organization_id, "org_policy": 1}))
    broken = commit_all(tmp_path, "acme broken")
    with pytest.raises(ProviderError) as caught:
        asyncio.run(at(broken).read_org(acme.organization_id))
    assert caught.value.error_type == "unknown_at_ref"
    assert caught.value.status is None


def test_it_is_read_only_and_lists_the_organizations_it_holds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = sample_repo(tmp_path, monkeypatch)
    provider = at(base)
    with pytest.raises(ProviderError, match="read-only"):
        asyncio.run(provider.write_org("acme", NO_ROLES))

    async def listed() -> list[str]:
        return [o.organization_id async for o in provider.list_orgs()]

    written = sorted(
        OrgPolicyFile.model_validate_json(p.read_text()).organization_id
        for p in (POLICIES / "orgs").glob("*.json")
    )
    assert asyncio.run(listed()) == written
