"""`policysync validate` of a ZenML Pro policy tree: `orgs/*.json` in ZenML's shape,
checked against the permission vocabulary (built in, plus `permissions.json`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from policysync.config import Limits
from policysync.diagnostics import Diagnostic
from policysync.layout import PERMISSIONS_FILE
from policysync.loader import Source, org_paths, read_json, to_model
from policysync.templates import Templates, check_templates
from policysync.validate import (
    FileResult,
    RootResult,
    Rules,
    check_template_files,
    duplicate_organizations,
    narrow,
    outside_tree,
)
from policysync.zenml_models import (
    ZenmlOrgFile,
    ZenmlPermissionsFile,
    ZenmlTemplateFile,
    core_role,
    role_key,
    split_key,
)
from policysync.zenml_rules import check_zenml_org
from policysync.zenml_vocabulary import Vocabulary, vocabulary


def load_permissions(root: Path, limits: Limits) -> tuple[Vocabulary | None, list[Diagnostic]]:
    """The vocabulary of the tree `root`: the built-in one, plus `permissions.json` when
    there is one; None (with the reasons) when that file has errors."""
    path = root / PERMISSIONS_FILE
    if not path.exists() and not path.is_symlink():
        return vocabulary(), []
    data, source, diagnostics = read_json(path, root.resolve(), limits)
    if source is None:
        return None, diagnostics
    declared = to_model(ZenmlPermissionsFile, data, source, diagnostics)
    return (None if declared is None else vocabulary(declared)), diagnostics


def load_zenml_org(
    path: Path, real_root: Path, limits: Limits
) -> tuple[ZenmlOrgFile | None, Source | None, list[Diagnostic]]:
    doc, source, diagnostics, _ = _read_zenml_org(path, real_root, limits)
    return doc, source, diagnostics


def _read_zenml_org(
    path: Path, real_root: Path, limits: Limits
) -> tuple[ZenmlOrgFile | None, Source | None, list[Diagnostic], Any]:
    data, source, diagnostics = read_json(path, real_root, limits)
    if source is None:
        return None, None, diagnostics, None
    return to_model(ZenmlOrgFile, data, source, diagnostics), source, diagnostics, data


def shown(key: str) -> str:
    """A role key in a message, as ZenML names the role."""
    level, name = split_key(key)
    return f"{name!r} at level {level!r}"


def check_zenml_file(
    path: Path,
    real_root: Path,
    words: Vocabulary | None,
    limits: Limits,
    rules: Rules = (),
    templates: Templates | None = None,
) -> FileResult:
    doc, source, diagnostics, data = _read_zenml_org(path, real_root, limits)
    if source is None:
        return FileResult(path, None, diagnostics)
    house = [d for rule in rules for d in rule.check(data, source)]
    if doc is None:
        return FileResult(path, None, diagnostics + house)
    findings = check_zenml_org(doc, words, limits)
    if doc.templates:
        own = [(role_key(r.level, r.name), f"/roles/{i}/name") for i, r in enumerate(doc.roles)]
        findings += check_templates(doc.templates, own, templates or {}, limits, shown)
    located = [source.diagnostic(*f) for f in findings]
    return FileResult(path, doc.organization_id, diagnostics + located + house)


def validate_zenml_root(
    root: Path, selected: list[Path], limits: Limits, related: bool = False, rules: Rules = ()
) -> RootResult:
    """Validate one ZenML policies root, as `validate_root` does a Stytch one. When
    `permissions.json` has errors, permissions are not checked until it is fixed."""
    words, diagnostics = load_permissions(root, limits)
    targets = org_paths(root, diagnostics) + outside_tree(root, selected, "zenml")
    real_root = root.resolve()
    templates, found = check_template_files(
        root,
        limits,
        rules,
        ZenmlTemplateFile,
        lambda doc: (check_zenml_org(doc, words, limits), tuple(map(core_role, doc.roles))),
    )
    diagnostics += found
    results = [check_zenml_file(p, real_root, words, limits, rules, templates) for p in targets]
    for result in results:
        diagnostics += result.diagnostics
    diagnostics += duplicate_organizations(
        results, lambda p: load_zenml_org(p, real_root, limits)[1]
    )
    permissions = root / PERMISSIONS_FILE
    has_permissions = permissions.exists() or permissions.is_symlink()
    checked = len(targets) + has_permissions + len(templates)
    return narrow(results, diagnostics, checked, permissions, selected, related)
