"""`policysync fmt`, its pure part: the canonical bytes of a policy file, the very bytes
`export` writes for the same content (`export.org_file`, `export.project_file`, and
each provider's `FileFormat.org_file`).

A file keeps its `$schema` and its `organization_id` as written. The canonical form
sorts roles, permissions and actions, which are sets to the providers (`canonical.py`);
nothing is merged or dropped on Stytch's side (two permissions on one resource stay two,
which `validate` warns about), while a ZenML file loses only a permission listed twice.
What the file grants is never changed: its plan is the plan of the formatted file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import NamedTuple

from policysync.export import Target, existing, project_file
from policysync.formats import FileFormat
from policysync.layout import PROJECT_FILE
from policysync.models import OrgPolicyFile, ProjectPolicy
from policysync.report import ValidationReport

_BOM = b"\xef\xbb\xbf"


def org_bytes(files_of: FileFormat, name: str, data: bytes, document: OrgPolicyFile) -> bytes:
    """The canonical bytes of the organization file `name`, which holds `data`, read as
    `document` (`files_of.read_policy` or `files_of.parse_policy` of them)."""
    target = Target(document.organization_id, name, existing(name, data).schema, document.templates)
    return files_of.org_file(target, document.org_policy)


def template_bytes(files_of: FileFormat, data: bytes) -> bytes | None:
    """The canonical bytes of a template file that holds `data`; None if it is not one."""
    try:
        roles = files_of.parse_template(data.removeprefix(_BOM))
        description = json.loads(data.removeprefix(_BOM)).get("description", "")
    except ValueError:  # pydantic's ValidationError included
        return None
    return files_of.template_file(existing("", data).schema, description, roles)


def project_bytes(data: bytes, policy: ProjectPolicy) -> bytes:
    """The canonical bytes of `project.json`, which holds `data`, read as `policy`."""
    return project_file(existing(PROJECT_FILE, data).schema, policy)


class FormatResult(NamedTuple):
    """What `policysync fmt` found: the validation of the tree, and when it was valid,
    the files it looked at and those not in the canonical form (rewritten, unless only
    checked)."""

    report: ValidationReport
    files: tuple[Path, ...]
    changed: tuple[Path, ...]
    check: bool  # whether files were only checked, not written
