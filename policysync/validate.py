"""`policysync validate`: every rule over every file, every finding reported.

Organization files are independent of each other but for one rule (two files naming
the same organization), so a large tree is checked on all cores: this process and
forked workers each load and check a share of the files, the workers sending back only
their findings.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, TypeVar

from pydantic import BaseModel

from policysync.canonical import same_project
from policysync.config import Limits, Settings
from policysync.diagnostics import Diagnostic, q, sort_diagnostics
from policysync.layout import (
    ORGS_DIR,
    PROJECT_FILE,
    TEMPLATES_DIR,
    TESTS_DIR,
    is_test_file,
    is_tree_file,
    place,
    root_file,
    template_name,
)
from policysync.loader import (
    OrgFile,
    Source,
    file_diagnostic,
    load_project,
    org_paths,
    read_json,
    to_model,
)
from policysync.models import OrgPolicy, OrgPolicyFile, ProjectPolicy, Role, TemplateFile
from policysync.report import ValidationReport
from policysync.rules import (
    Finding,
    ProjectIndex,
    check_org_policy,
    check_organization_id,
    check_project,
)
from policysync.templates import Template, Templates, check_templates, template_paths

if TYPE_CHECKING:  # jsonschema is imported only when the settings list house rules
    from policysync.house import HouseRule

Rules = tuple["HouseRule", ...]

# Below this many files, starting worker processes costs more than it saves.
PARALLEL_MIN_FILES = 2000


class FileResult(NamedTuple):
    path: Path
    organization_id: str | None  # None when the file could not be read as a policy
    diagnostics: list[Diagnostic]


def check_org(
    org: OrgFile, index: ProjectIndex | None, limits: Limits, templates: Templates | None = None
) -> list[Diagnostic]:
    """The semantic findings of one organization file (its templates looked up in
    `templates`, those of its tree)."""
    source, doc = org.source, org.document
    findings = check_org_policy(doc.org_policy, index, limits)
    if doc.templates:
        roles = doc.org_policy.roles
        own = [(r.role_id, f"/org_policy/roles/{i}/role_id") for i, r in enumerate(roles)]
        findings += check_templates(doc.templates, own, templates or {}, limits)
    out = [source.diagnostic(*f) for f in findings]
    problem = check_organization_id(doc.organization_id, limits)
    if problem:
        out.append(source.diagnostic("org-id-invalid", "/organization_id", problem))
    return out


def check_org_file(
    path: Path,
    real_root: Path,
    index: ProjectIndex | None,
    limits: Limits,
    rules: Rules = (),
    templates: Templates | None = None,
) -> FileResult:
    """Every finding in one organization file: its schema, the rules, the house rules
    (which see the file as written, even when it fails the schema)."""
    data, source, diagnostics = read_json(path, real_root, limits)
    if source is None:
        return FileResult(path, None, diagnostics)
    house = [d for rule in rules for d in rule.check(data, source)]
    doc = to_model(OrgPolicyFile, data, source, diagnostics)
    if doc is None:
        return FileResult(path, None, diagnostics + house)
    findings = check_org(OrgFile(path, source, doc), index, limits, templates)
    return FileResult(path, doc.organization_id, diagnostics + findings + house)


M = TypeVar("M", bound=BaseModel)


def check_template_files(
    root: Path,
    limits: Limits,
    rules: Rules,
    model: type[M],
    judge: Callable[[M], tuple[list[Finding], tuple[Role, ...]]],
) -> tuple[dict[str, Template], list[Diagnostic]]:
    """The templates of `root`, each read as a `model` (the provider's template file),
    checked as organization files are (its roles by `judge`, which also gives them in the
    core's shape; the house rules over the file as written); what is wrong with them, and
    the entries of `templates/` that are not read. A template that cannot be read has
    no roles."""
    real_root = root.resolve()
    diagnostics: list[Diagnostic] = []
    templates: dict[str, Template] = {}
    for path in template_paths(root, diagnostics):
        template = Template(template_name(path.name), str(path), None)
        templates[template.name] = template
        data, source, found = read_json(path, real_root, limits)
        diagnostics += found
        if source is None:
            continue
        diagnostics += [d for rule in rules for d in rule.check(data, source)]
        doc = to_model(model, data, source, diagnostics)
        if doc is None:
            continue
        findings, roles = judge(doc)
        diagnostics += [source.diagnostic(*f) for f in findings]
        templates[template.name] = template._replace(roles=roles)
    return templates, diagnostics


def _check_files(
    args: tuple[list[Path], Path, ProjectIndex | None, Limits, Rules, Templates],
) -> list[FileResult]:
    paths, real_root, index, limits, rules, templates = args
    return [check_org_file(p, real_root, index, limits, rules, templates) for p in paths]


def check_org_files(
    paths: list[Path],
    real_root: Path,
    index: ProjectIndex | None,
    limits: Limits,
    rules: Rules = (),
    templates: Templates | None = None,
) -> list[FileResult]:
    """`check_org_file` over `paths`, on all cores when there are many: this process
    checks one share while forked workers check the others."""
    jobs = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
    forkable = "fork" in multiprocessing.get_all_start_methods()
    table = dict(templates or {})
    if len(paths) < PARALLEL_MIN_FILES or jobs < 2 or not forkable:
        return _check_files((paths, real_root, index, limits, rules, table))
    size = -(-len(paths) // jobs)
    chunks = [
        (paths[i : i + size], real_root, index, limits, rules, table)
        for i in range(0, len(paths), size)
    ]
    *theirs, ours = chunks  # this process takes a share too: one fork fewer
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=len(theirs), mp_context=context) as pool:
        futures = [pool.submit(_check_files, chunk) for chunk in theirs]
        own = _check_files(ours)
        return [result for future in futures for result in future.result()] + own


def duplicate_organizations(
    results: list[FileResult], locate: Callable[[Path], Source | None]
) -> list[Diagnostic]:
    """Two files naming the same organization: both are reported, each placed at its
    `organization_id` by `locate` (the file read again, rarely)."""
    by_org: dict[str, list[Path]] = {}
    for result in results:
        if result.organization_id is not None:
            by_org.setdefault(result.organization_id, []).append(result.path)
    out = []
    for org_id, paths in by_org.items():
        for path in paths if len(paths) > 1 else ():
            others = ", ".join(str(p) for p in paths if p != path)
            message = (
                f"organization {q(org_id)} is also managed by {others}: keep exactly one file "
                "per organization"
            )
            source = locate(path)
            if source is None:
                out.append(file_diagnostic(str(path), "org-duplicate", message))
            else:
                out.append(source.diagnostic("org-duplicate", "/organization_id", message))
    return out


def _org_source(path: Path, real_root: Path, limits: Limits) -> Source | None:
    return read_json(path, real_root, limits)[1]


class RootResult(NamedTuple):
    diagnostics: list[Diagnostic]
    files_checked: int
    organizations: int
    files: dict[str, Path]  # organization_id -> the file that names it, of every root file


def validate_root(
    root: Path,
    selected: list[Path],
    limits: Limits,
    live_project: ProjectPolicy | None = None,
    related: bool = False,
    rules: Rules = (),
) -> RootResult:
    """Validate one policies root; with `selected` files, report on those only (the other
    files are still read, to find duplicate organizations), and, when `related`, on the
    files naming the same organizations as they do too. With `live_project` (read
    from Stytch, the authority), organization files are checked against it, and a
    `project.json` that differs from it is reported."""
    project, diagnostics = load_project(root, limits)
    index: ProjectIndex | None = None
    if project is not None:
        findings = check_project(project.policy)
        diagnostics += [project.source.diagnostic(*f) for f in findings]
        index = None if findings else ProjectIndex.of(project.policy)
        if live_project is not None and not same_project(project.policy, live_project):
            diagnostics.append(
                file_diagnostic(
                    str(project.path),
                    "project-stale",
                    "differs from the live project policy, which policysync used instead: "
                    "refresh it (`policysync export`) so that offline checks match Stytch",
                )
            )
    if live_project is not None:
        index = ProjectIndex.of(live_project)
    targets = org_paths(root, diagnostics) + outside_tree(root, selected)
    project_path = root / PROJECT_FILE
    project_exists = project_path.exists() or project_path.is_symlink()
    if index is None and project_exists and targets and live_project is None:
        diagnostics.append(
            file_diagnostic(
                str(project_path),
                "project-invalid",
                "organization files were not checked against the project policy (roles, "
                "resources, actions) because it has errors: fix those first",
            )
        )
    real_root = root.resolve()
    templates, found = check_template_files(
        root,
        limits,
        rules,
        TemplateFile,
        lambda doc: (check_org_policy(OrgPolicy(roles=doc.roles), index, limits, ""), doc.roles),
    )
    diagnostics += found
    results = check_org_files(targets, real_root, index, limits, rules, templates)
    for result in results:
        diagnostics += result.diagnostics
    diagnostics += duplicate_organizations(results, lambda p: _org_source(p, real_root, limits))
    checked = len(targets) + project_exists + len(templates)
    return narrow(results, diagnostics, checked, project_path, selected, related)


def narrow(
    results: list[FileResult],
    diagnostics: list[Diagnostic],
    files_checked: int,
    root_file: Path,
    selected: list[Path],
    related: bool,
) -> RootResult:
    """The result of a root; with `selected` files, of those (and, when `related`, of the
    files naming the same organizations), the root's `root_file` and its templates (which
    the selected files may use) only."""
    files = {r.organization_id: r.path for r in results if r.organization_id is not None}
    if not selected:
        organizations = sum(1 for r in results if r.organization_id is not None)
        return RootResult(diagnostics, files_checked, organizations, files)
    chosen = {place(p) for p in selected}
    if related:  # a changed file can make another one a duplicate
        named = {r.organization_id for r in results if place(r.path) in chosen}
        chosen |= {place(r.path) for r in results if r.organization_id in named - {None}}
    keep = chosen | {place(root_file)}
    templates = place(root_file.parent / TEMPLATES_DIR)
    diagnostics = [
        d
        for d in diagnostics
        if place(Path(d.file)) in keep or place(Path(d.file)).parent == templates
    ]
    organizations = sum(
        1 for r in results if r.organization_id is not None and place(r.path) in keep
    )
    return RootResult(diagnostics, len(chosen), organizations, files)


def validate(
    paths: Sequence[Path], settings: Settings, strict: bool, related: bool = False
) -> ValidationReport:
    """Validate policy folders and files. A folder is a policies root (with `project.json`
    and `orgs/`, and maybe `tests/`); a file is checked within the root it belongs to
    (and, when `related`, so are the files naming the same organization as it does). The
    policy test files of a root are checked against it: all of them, or the selected
    ones when files are selected."""
    provider = settings.provider
    roots = roots_of(paths, settings)
    check_root: Callable[..., RootResult] = validate_root
    if provider == "zenml":  # imported here: it builds on this module
        from policysync.zenml_validate import validate_zenml_root

        check_root = validate_zenml_root
    from policysync.testsuite import check_tests  # it reads the tree as `test` does

    rules, diagnostics = house_rules_of(settings)  # reported once, whatever is selected
    files_checked = organizations = 0
    for root, selected in roots.items():
        tests = [p for p in selected if is_test_file(p, root)]
        others = [p for p in selected if not is_test_file(p, root)]
        result = check_root(root, others or tests, settings.limits, related=related, rules=rules)
        diagnostics += result.diagnostics
        files_checked += result.files_checked if others or not selected else 0
        organizations += result.organizations
        # the test files: the selected ones, or with none selected all of `tests/`
        found, checked = check_tests(root, tests if selected else None, settings)
        diagnostics += found
        files_checked += checked
    return ValidationReport.build(
        sort_diagnostics(diagnostics), files_checked, organizations, strict
    )


def house_rules_of(settings: Settings) -> tuple[Rules, list[Diagnostic]]:
    """The compiled house rules of `settings`, and what is wrong with the others."""
    if not settings.house_rules:
        return (), []
    from policysync.house import load_house_rules  # jsonschema: only when there are rules

    rules, diagnostics = load_house_rules(settings)
    return tuple(rules), diagnostics


def roots_of(paths: Sequence[Path], settings: Settings) -> dict[Path, list[Path]]:
    """The policies roots that `paths` name (the `--policies` folder when there are
    none), each with the files selected in it; no file selected means every file."""
    provider = settings.provider
    roots: dict[Path, list[Path]] = {}
    for path in paths or [Path(settings.policies)]:
        if path.is_dir():
            roots.setdefault(_as_root(path, provider), [])
        else:
            roots.setdefault(_root_of(path, Path(settings.policies), provider), []).append(path)
    return roots


def outside_tree(root: Path, files: list[Path], provider: str = "stytch") -> list[Path]:
    """The selected files that `org_paths(root)` does not list (the root's own file aside)."""
    return [f for f in files if not is_tree_file(f, root, provider)]


def _is_root(folder: Path, provider: str) -> bool:
    """Whether `folder` looks like a policies root: it has `project.json` (Stytch's), or
    an `orgs/` folder (ZenML's, whose `permissions.json` is optional)."""
    if provider == "zenml":
        return (folder / ORGS_DIR).is_dir()
    return (folder / PROJECT_FILE).exists()


def _as_root(folder: Path, provider: str) -> Path:
    """A policies root named by the user: `policies`, or its `policies/orgs` or
    `policies/tests` (`.` inside them, too)."""
    own_root = (folder / root_file(provider)).exists()
    above = _parent(folder)
    if _name(folder) in (ORGS_DIR, TESTS_DIR) and not own_root and _is_root(above, provider):
        return above
    return folder


def _root_of(file: Path, default: Path, provider: str) -> Path:
    """The policies root a file belongs to: `<root>/orgs/x.json`, `<root>/tests/x.json` or
    `<root>/project.json` (`<root>/permissions.json` for ZenML)."""
    if file.name == root_file(provider):
        return file.parent
    above = _parent(file.parent)
    if _name(file.parent) in (ORGS_DIR, TEMPLATES_DIR, TESTS_DIR) and _is_root(above, provider):
        return above
    return default


def _name(folder: Path) -> str:
    """The name of the folder `folder` is (`orgs` for `.` inside `orgs/`)."""
    return place(folder).name


def _parent(folder: Path) -> Path:
    """The folder above `folder`, named from where `folder` is named: `..` for `.`."""
    if folder.name in ("", os.pardir):  # `.`, `..`, `../..`
        return Path(os.path.normpath(folder / os.pardir))
    return folder.parent
