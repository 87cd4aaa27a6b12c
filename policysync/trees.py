"""A policies tree of either provider as the core reads it: checked by the provider's
own rules (`validate.py`, `zenml_validate.py`), and its organization files read in the
core's shape (Stytch's: a ZenML file is converted by `zenml_models.core_file`), which is
what the planner, the journal and rollback compare."""

from __future__ import annotations

from pathlib import Path

from policysync.config import Limits
from policysync.loader import read_org_file
from policysync.models import OrgPolicyFile, ProjectPolicy
from policysync.validate import RootResult, validate_root
from policysync.zenml_models import ZenmlOrgFile, core_file
from policysync.zenml_validate import load_zenml_org, validate_zenml_root


def validate_tree(
    provider: str,
    root: Path,
    limits: Limits,
    live_project: ProjectPolicy | None = None,
) -> RootResult:
    """The whole tree `root` validated as `provider`'s (for Stytch, against the live
    project policy when it was read)."""
    if provider == "zenml":
        return validate_zenml_root(root, [], limits)
    return validate_root(root, [], limits, live_project)


def read_policy(provider: str, path: Path, real_root: Path, limits: Limits) -> OrgPolicyFile | None:
    """An organization file known to be valid, in the core's shape; None when it no
    longer loads."""
    if provider == "zenml":
        document, _, _ = load_zenml_org(path, real_root, limits)
        return None if document is None else core_file(document)
    return read_org_file(path, real_root, limits)


def parse_policy(provider: str, data: bytes) -> OrgPolicyFile:
    """An organization file's bytes, in the core's shape; pydantic's ValidationError
    when they are not a valid one."""
    if provider == "zenml":
        return core_file(ZenmlOrgFile.model_validate_json(data))
    return OrgPolicyFile.model_validate_json(data)
