"""`policysync plan --against-ref REF`: the offline plan, from git alone.

The files at HEAD play the desired state and the files at REF play live: the plan shows
what applying HEAD would change in a project where REF had been applied. Both sides are
read from git's objects, never checked out, and Stytch is not contacted, so a pull
request that gets no secrets still gets a plan. HEAD's files are validated as `plan`
validates them (against HEAD's `project.json`): they are written to a temporary folder
for the loader, and the diagnostics name them as they are named in the work tree.

In the plan, `project_id` is `git:<REF's commit>` (no project was read: `apply` refuses
such a plan, as made for another project), `prior` is the policy of REF's file and
`prior_fingerprint` its fingerprint, the one live would have if REF had been applied.
An organization with no file at REF is planned as if it had no org-specific roles.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

from pydantic import ValidationError

from policysync import __version__, git
from policysync.config import Settings
from policysync.diagnostics import Diagnostic, sort_diagnostics
from policysync.errors import UsageError
from policysync.layout import ORGS_DIR, PROJECT_FILE, is_org_file_path
from policysync.loader import read_org_file
from policysync.models import OrgPolicy, OrgPolicyFile
from policysync.plan import OrgError, Plan, PlanEntry, assemble, plan_org
from policysync.report import ValidationReport
from policysync.selection import Shard, select
from policysync.validate import validate_root

NO_ROLES = OrgPolicy(roles=())
_BOM = b"\xef\xbb\xbf"


class RefPlan(NamedTuple):
    plan: Plan | None  # None when HEAD's files are invalid
    report: ValidationReport  # the validation of HEAD's files
    notes: list[str]  # what the plan could not take into account


def plan_against_ref(
    settings: Settings, ref: str, only: Sequence[str] = (), shard: Shard | None = None
) -> RefPlan:
    root, limits = Path(settings.policies), settings.limits
    head = git.files_at(root, "HEAD", limits.max_file_bytes)
    base = git.files_at(root, ref, limits.max_file_bytes)
    state = git.head_state(root)
    notes = []
    if state.dirty:
        notes.append(
            f"{root} has uncommitted changes: they are not in this plan, which compares "
            f"the commits HEAD and {ref}"
        )
    with tempfile.TemporaryDirectory(prefix="policysync-") as tmp:
        tree = Path(tmp) / "policies"
        materialize(head.files, tree)
        checked = validate_root(tree, [], limits)
        diagnostics = [relocate(d, tree, root) for d in checked.diagnostics]
        report = ValidationReport.build(
            sort_diagnostics(diagnostics), checked.files_checked, checked.organizations, False
        )
        if not report.valid:
            return RefPlan(None, report, notes)
        unknown = sorted(set(only) - checked.files.keys())
        if unknown:
            raise UsageError(
                f"--org {', '.join(unknown)}: no file in {root / ORGS_DIR} at HEAD names "
                f"{'this organization' if len(unknown) == 1 else 'these organizations'}"
            )
        ids = select(sorted(checked.files), only, shard)
        desired = {}
        for org_id in ids:
            document = read_org_file(checked.files[org_id], tree.resolve(), limits)
            if document is None:  # validated moments ago, in a folder only we write to
                raise UsageError(f"{checked.files[org_id]}: could not be read again")
            desired[org_id] = (str(root / checked.files[org_id].relative_to(tree)), document)
    prior, problems = ref_policies(base.files, root, ref)
    entries = [
        PlanEntry.of(plan_org(org_id, file, doc.org_policy, prior.get(org_id, NO_ROLES)))
        for org_id, (file, doc) in desired.items()
    ]
    plan = assemble(
        entries,
        project_id=f"git:{base.commit}",
        created_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        policysync_version=__version__,
        git_commit=head.commit,
        git_dirty=state.dirty,
    )
    return RefPlan(plan, report, notes + problems)


def materialize(files: Sequence[git.TreeFile], tree: Path) -> None:
    """Write what the loader reads (`project.json`, the entries of `orgs/`) under `tree`.
    A file too large to read becomes a sparse file of its size: the loader refuses it
    by its size alone."""
    tree.mkdir()
    for file in files:
        top = file.path.split("/", 1)[0]
        if file.path != PROJECT_FILE and top != ORGS_DIR:
            continue
        target = tree / file.path
        target.parent.mkdir(parents=True, exist_ok=True)
        if file.kind == "dir":
            target.mkdir(exist_ok=True)
        elif file.kind == "link":
            os.symlink(os.fsdecode(file.data or b""), target)
        elif file.data is None:
            with open(target, "wb") as out:
                out.truncate(file.size)
        else:
            target.write_bytes(file.data)


def relocate(diagnostic: Diagnostic, tree: Path, root: Path) -> Diagnostic:
    """A diagnostic about a file of `tree`, naming it as under `root` instead."""

    def swap(text: str) -> str:
        for prefix in sorted({str(tree.resolve()), str(tree)}, key=len, reverse=True):
            text = text.replace(prefix, str(root))
        return text

    return diagnostic._replace(file=swap(diagnostic.file), message=swap(diagnostic.message))


def ref_policies(
    files: Sequence[git.TreeFile], root: Path, ref: str
) -> tuple[dict[str, OrgPolicy | OrgError], list[str]]:
    """The org policies of REF's files, by organization_id as written; an organization
    whose file at REF cannot be read is an error (its prior is unknown)."""
    found: dict[str, list[OrgPolicy | None]] = {}
    notes = []
    for file in files:
        if not is_org_file_path(file.path):
            continue
        where = f"{root / file.path} at {ref}"
        if file.kind != "file" or file.data is None:
            notes.append(f"{where}: a symlink or too large a file, left out of the plan")
            continue
        data = file.data.removeprefix(_BOM)
        try:
            document = OrgPolicyFile.model_validate_json(data)
        except ValidationError:
            org_id = _organization_id(data)
            if org_id is None:
                notes.append(f"{where}: not an organization file, left out of the plan")
            else:
                found.setdefault(org_id, []).append(None)
            continue
        found.setdefault(document.organization_id, []).append(document.org_policy)
    prior: dict[str, OrgPolicy | OrgError] = {}
    for org_id, policies in found.items():
        policy = policies[0]
        if len(policies) == 1 and policy is not None:
            prior[org_id] = policy
            continue
        reason = "two files name it" if len(policies) > 1 else "its file is not valid"
        prior[org_id] = OrgError(
            status=None,
            error_type="unknown_at_ref",
            message=f"at {ref}, {reason}: its roles there are unknown",
            request_id=None,
        )
    return prior, notes


def _organization_id(data: bytes) -> str | None:
    """The organization a file that is not a valid policy file names, if it says."""
    try:
        value = json.loads(data)
    except ValueError:
        return None
    org_id = value.get("organization_id") if isinstance(value, dict) else None
    return org_id if isinstance(org_id, str) else None
