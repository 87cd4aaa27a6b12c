"""The policy files of each provider, as the core reads and writes them: how a tree is
validated, how an organization file becomes the core's shape (Stytch's `OrgPolicyFile`,
which the planner, the journal and rollback compare), and how `export` writes one.
One `FileFormat` per provider, by the name the settings give it; a provider's format is
imported only when asked for (ZenML's lives in `zenml_format.py`)."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

from policysync.config import Limits
from policysync.default_project import DEFAULT_POLICY
from policysync.export import (
    ORG_SCHEMA,
    PROJECT_SCHEMA,
    Target,
    org_file,
    project_file,
    template_file,
)
from policysync.layout import PROJECT_FILE
from policysync.loader import read_org_file
from policysync.models import OrgPolicy, OrgPolicyFile, ProjectPolicy, Role, TemplateFile
from policysync.plan import EscalationRules, InUseOf, members_in_use
from policysync.templates import ParseTemplate
from policysync.validate import RootResult, Rules, validate_root


class FileFormat(NamedTuple):
    # The whole tree `root` validated (against the live catalog, when it was read), with
    # the house rules.
    validate_tree: Callable[[Path, Limits, ProjectPolicy | None, Rules], RootResult]
    # An organization file known to be valid, in the core's shape; None when it no
    # longer loads.
    read_policy: Callable[[Path, Path, Limits], OrgPolicyFile | None]
    # An organization file's bytes in the core's shape; pydantic's ValidationError if
    # they are not a valid one.
    parse_policy: Callable[[bytes], OrgPolicyFile]
    # The canonical bytes `export` writes for an organization.
    org_file: Callable[[Target, OrgPolicy], bytes]
    org_schema: str  # the `$schema` of a new organization file
    project_policy: bool  # whether the tree has `project.json`, a snapshot of live
    exported: str  # what `export --branch` commits, for its message
    # The files `policysync init` writes into a new policies folder besides `orgs/`, by
    # their names in it: placeholders; or, given the organizations' live policies it
    # exported (`init --from-live`), what the tree needs beside them.
    starter: Callable[[Sequence[OrgPolicy] | None], dict[str, bytes]]
    # The grants that widen access on their own, whatever the settings' `sensitive`.
    escalations: EscalationRules
    # A template file's bytes as roles in the core's shape; pydantic's ValidationError if
    # they are not a valid template.
    parse_template: ParseTemplate
    # The canonical bytes of a template file: its `$schema`, description and roles.
    template_file: Callable[[str | None, str, Sequence[Role]], bytes]
    # What depends on a role a plan deletes, from its holders (the provider's `holders`).
    in_use: InUseOf


def _validate_org_policies(
    root: Path, limits: Limits, live: ProjectPolicy | None, rules: Rules
) -> RootResult:
    return validate_root(root, [], limits, live, rules=rules)


def _starter(live: Sequence[OrgPolicy] | None) -> dict[str, bytes]:
    """A new project's policy as project.json; nothing after an export, which wrote the
    live one."""
    return {} if live is not None else {PROJECT_FILE: project_file(PROJECT_SCHEMA, DEFAULT_POLICY)}


def _parse_template(data: bytes) -> tuple[Role, ...]:
    return TemplateFile.model_validate_json(data).roles


ORG_POLICIES = FileFormat(
    validate_tree=_validate_org_policies,
    read_policy=read_org_file,
    parse_policy=OrgPolicyFile.model_validate_json,
    org_file=org_file,
    org_schema=ORG_SCHEMA,
    project_policy=True,
    exported="the live Stytch RBAC policies",
    starter=_starter,
    # Stytch authorizes "*" as every action, and its own resources (members, SSO, SCIM,
    # the organization's settings) are `stytch.*`.
    escalations=EscalationRules(wildcard="*", reserved_prefix="stytch."),
    parse_template=_parse_template,
    template_file=template_file,
    # Members hold roles, directly or through the organization's implicit assignments.
    in_use=members_in_use,
)

# provider -> "module:attribute" of its format
FORMATS = {"stytch": f"{__name__}:ORG_POLICIES", "zenml": "policysync.zenml_format:FORMAT"}


def file_format(provider: str) -> FileFormat:
    module, _, attribute = FORMATS[provider].partition(":")
    found: FileFormat = getattr(importlib.import_module(module), attribute)
    return found
