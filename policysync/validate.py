"""`policysync validate`: load policy trees, apply every rule, report every finding."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from policysync.config import Limits, Settings
from policysync.diagnostics import Diagnostic, sort_diagnostics
from policysync.loader import ORGS_DIR, PROJECT_FILE, PolicyTree, file_diagnostic, load_tree
from policysync.report import ValidationReport
from policysync.rules import ProjectIndex, check_org_policy, check_organization_id, check_project, q


def check_tree(tree: PolicyTree, limits: Limits) -> list[Diagnostic]:
    """The semantic findings of a loaded tree, added to its loading diagnostics."""
    out = list(tree.diagnostics)
    index: ProjectIndex | None = None
    if tree.project is not None and tree.project_source is not None:
        findings = check_project(tree.project)
        out += [tree.project_source.diagnostic(*f) for f in findings]
        if not findings:
            index = ProjectIndex.of(tree.project)
    if index is None and tree.orgs and (tree.root / PROJECT_FILE) in tree.files:
        out.append(
            file_diagnostic(
                str(tree.root / PROJECT_FILE),
                "project-invalid",
                "organization files were not checked against the project policy (roles, "
                "resources, actions) because it has errors: fix those first",
            )
        )
    by_org: dict[str, list[str]] = {}
    for org in tree.orgs:
        by_org.setdefault(org.document.organization_id, []).append(org.source.display)
    for org in tree.orgs:
        source, doc = org.source, org.document
        problem = check_organization_id(doc.organization_id, limits)
        if problem:
            out.append(source.diagnostic("org-id-invalid", "/organization_id", problem))
        others = [f for f in by_org[doc.organization_id] if f != source.display]
        if others:
            out.append(
                source.diagnostic(
                    "org-duplicate",
                    "/organization_id",
                    f"organization {q(doc.organization_id)} is also managed by "
                    f"{', '.join(others)}: keep exactly one file per organization",
                )
            )
        out += [source.diagnostic(*f) for f in check_org_policy(doc.org_policy, index, limits)]
    return out


def validate(paths: Sequence[Path], settings: Settings, strict: bool) -> ValidationReport:
    """Validate policy folders and files. A folder is a policies root (with `project.json`
    and `orgs/`); a file is checked within the root it belongs to, whose other files are
    read for context (duplicate organizations) but not reported on."""
    roots: dict[Path, list[Path]] = {}
    selected: set[Path] = set()
    for path in paths or [Path(settings.policies)]:
        if path.is_dir():
            roots.setdefault(path, [])
        else:
            selected.add(path.absolute())
            roots.setdefault(_root_of(path, Path(settings.policies)), []).append(path)
    diagnostics: list[Diagnostic] = []
    files_checked = organizations = 0
    for root, files in roots.items():
        tree = load_tree(root, settings.limits, _outside_tree(root, files))
        found = check_tree(tree, settings.limits)
        if files:  # report on the selected files only (and on the project they depend on)
            keep = {p.absolute() for p in files} | {(root / PROJECT_FILE).absolute()}
            found = [d for d in found if Path(d.file).absolute() in keep]
            files_checked += len({p.absolute() for p in files})
            organizations += sum(1 for o in tree.orgs if o.path.absolute() in selected)
        else:
            files_checked += len(tree.files)
            organizations += len(tree.orgs)
        diagnostics += found
    return ValidationReport.build(
        sort_diagnostics(diagnostics), files_checked, organizations, strict
    )


def _outside_tree(root: Path, files: list[Path]) -> list[Path]:
    """The selected files that `load_tree(root)` would not read by itself."""
    project, orgs = (root / PROJECT_FILE).absolute(), (root / ORGS_DIR).absolute()

    def read_by_tree(f: Path) -> bool:
        if f.absolute() == project:
            return True
        return f.absolute().parent == orgs and f.name.endswith(".json") and f.name[0] != "."

    return [f for f in files if not read_by_tree(f)]


def _root_of(file: Path, default: Path) -> Path:
    """The policies root a file belongs to: `<root>/orgs/x.json` or `<root>/project.json`."""
    parent = file.absolute().parent
    if file.name == PROJECT_FILE:
        return file.parent
    if parent.name == ORGS_DIR and (parent.parent / PROJECT_FILE).exists():
        return file.parent.parent
    return default
