"""Files at a git commit playing live, for `plan --against-ref REF`: the plan shows what
applying HEAD would change in a project where REF had been applied. Read from git's
objects, never checked out; nothing is contacted, so a pull request that gets no
secrets still gets a plan.

Its `project_id` is `git:<REF's commit>` (no project was read: `apply` refuses such a
plan, as made for another project); an organization's live roles are those of its file
at REF, and its fingerprint the one live would have if REF had been applied. An
organization with no file at REF is read as having no org-specific roles.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

from pydantic import ValidationError

from policysync import git
from policysync.diagnostics import Diagnostic
from policysync.errors import ProviderError
from policysync.formats import ORG_POLICIES
from policysync.layout import PROJECT_FILE, is_org_file_path, is_template_file_path
from policysync.models import (
    Organization,
    OrgPolicy,
    OrgPolicyFile,
    ProjectPolicy,
    ProjectPolicyFile,
    RoleHolders,
)
from policysync.providers.base import Log
from policysync.templates import ParseTemplate, TemplateError, expand, read_template

NO_ROLES = OrgPolicy(roles=())
Parse = Callable[[bytes], OrgPolicyFile]  # an organization file's bytes, or ValidationError
_BOM = b"\xef\xbb\xbf"
PROVIDER = "git"


class GitRef:
    """The provider of the files at one commit: read-only."""

    def __init__(
        self, commit: str, policies: dict[str, OrgPolicy | str], project: ProjectPolicy | None
    ) -> None:
        self.project_id = f"git:{commit}"
        self._policies = policies  # organization_id -> its policy, or why it is unknown
        self._project = project
        self.notes: list[str] = []

    @classmethod
    def at(
        cls,
        root: Path,
        ref: str,
        max_bytes: int,
        parse: Parse = OrgPolicyFile.model_validate_json,
        parse_template: ParseTemplate = ORG_POLICIES.parse_template,
    ) -> GitRef:
        """The files of the policies folder `root` at commit `ref`, each read by `parse`
        (the provider's file format; its templates by `parse_template`)."""
        snapshot = git.files_at(root, ref, max_bytes)
        policies, notes = ref_policies(snapshot.files, root, ref, parse, parse_template)
        at_ref = cls(snapshot.commit, policies, _project(snapshot.files))
        at_ref.notes = notes
        return at_ref

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        return None

    async def read_catalog(self) -> ProjectPolicy:
        if self._project is None:
            raise ProviderError(None, "unknown_at_ref", f"no valid {PROJECT_FILE}", None)
        return self._project

    async def read_org(self, organization_id: str) -> OrgPolicy:
        policy = self._policies.get(organization_id, NO_ROLES)
        if isinstance(policy, str):
            raise ProviderError(None, "unknown_at_ref", policy, None, organization_id)
        return policy

    async def holders(
        self, organization_id: str, role_ids: Sequence[str]
    ) -> tuple[RoleHolders, ...]:
        return ()

    async def write_org(
        self,
        organization_id: str,
        policy: OrgPolicy,
        prior: OrgPolicy | None = None,
        *,
        holders: Sequence[RoleHolders] = (),
        log: Log | None = None,
    ) -> OrgPolicy:
        message = "a git commit is read-only: an --against-ref plan is never applied"
        raise ProviderError(None, "read_only", message, None, organization_id)

    async def list_orgs(self, limit: int = 1000) -> AsyncIterator[Organization]:
        for organization_id, policy in sorted(self._policies.items()):
            if not isinstance(policy, str):
                yield Organization(organization_id, "", organization_id, None, policy)


def _project(files: Sequence[git.TreeFile]) -> ProjectPolicy | None:
    for file in files:
        if file.path == PROJECT_FILE and file.kind == "file" and file.data is not None:
            try:
                return ProjectPolicyFile.model_validate_json(file.data.removeprefix(_BOM)).policy
            except ValidationError:
                return None
    return None


def relocate(diagnostic: Diagnostic, tree: Path, root: Path) -> Diagnostic:
    """A diagnostic about a file of `tree`, naming it as under `root` instead."""

    def swap(text: str) -> str:
        for prefix in sorted({str(tree.resolve()), str(tree)}, key=len, reverse=True):
            text = text.replace(prefix, str(root))
        return text

    return diagnostic._replace(file=swap(diagnostic.file), message=swap(diagnostic.message))


def ref_policies(
    files: Sequence[git.TreeFile],
    root: Path,
    ref: str,
    parse: Parse = OrgPolicyFile.model_validate_json,
    parse_template: ParseTemplate = ORG_POLICIES.parse_template,
) -> tuple[dict[str, OrgPolicy | str], list[str]]:
    """The org policies of REF's files, by organization_id as written, their templates
    (at REF) expanded; for an organization whose file at REF cannot be read or
    expanded, why (its prior is unknown); and notes on the files left out."""
    found: dict[str, list[OrgPolicy | None]] = {}
    notes = []
    templates = {
        t.name: t
        for t in (
            read_template(
                file.path.rsplit("/", 1)[-1],
                f"{root / file.path} at {ref}",
                file.data if file.kind == "file" else None,
                parse_template,
            )
            for file in files
            if is_template_file_path(file.path)
        )
    }
    for file in files:
        if not is_org_file_path(file.path):
            continue
        where = f"{root / file.path} at {ref}"
        if file.kind != "file" or file.data is None:
            notes.append(f"{where}: a symlink or too large a file, left out of the plan")
            continue
        data = file.data.removeprefix(_BOM)
        try:
            document = parse(data)
        except ValidationError:
            org_id = _organization_id(data)
            if org_id is None:
                notes.append(f"{where}: not an organization file, left out of the plan")
            else:
                found.setdefault(org_id, []).append(None)
            continue
        try:
            expanded = expand(document, templates).policy
        except TemplateError:
            expanded = None
        found.setdefault(document.organization_id, []).append(expanded)
    prior: dict[str, OrgPolicy | str] = {}
    for org_id, policies in found.items():
        policy = policies[0]
        if len(policies) == 1 and policy is not None:
            prior[org_id] = policy
            continue
        reason = (
            "two files name it"
            if len(policies) > 1
            else "its file is not valid, or its templates there are not"
        )
        prior[org_id] = f"at {ref}, {reason}: its roles there are unknown"
    return prior, notes


def _organization_id(data: bytes) -> str | None:
    """The organization a file that is not a valid policy file names, if it says."""
    try:
        value = json.loads(data)
    except ValueError:
        return None
    org_id = value.get("organization_id") if isinstance(value, dict) else None
    return org_id if isinstance(org_id, str) else None
