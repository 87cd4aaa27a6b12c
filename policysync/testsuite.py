"""Policy test files, read and checked against their tree (for `validate` and `test`),
then run (`test`): `policytest` says what a test means, this module where it is.

A test file's mistakes are diagnostics like any policy file's: its JSON and schema, then
what it names: an organization no file names, a role the organization and the project
do not have, a resource or action the tree does not declare.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from policysync.config import Settings
from policysync.diagnostics import Diagnostic, q, suggest
from policysync.layout import TESTS_DIR
from policysync.loader import Source, folder_files, read_json, to_model
from policysync.policytest import (
    Case,
    Catalog,
    HeldRole,
    OrgRoles,
    SuiteFormat,
    find_org,
    judge,
    org_names,
    org_policies,
    suite_format,
)
from policysync.rules import Finding
from policysync.testreport import AssertionResult, CaseResult, RoleGrant, SuiteReport


class Tree(NamedTuple):
    """What a policies folder gives its tests."""

    orgs: list[OrgRoles]
    catalog: Catalog | None  # None when the tree's shared part is invalid (reported)
    suite: SuiteFormat

    @classmethod
    def of(cls, root: Path, settings: Settings) -> Tree:
        suite = suite_format(settings.provider)
        return cls(org_policies(root, settings), suite.catalog(root, settings.limits), suite)


class Prepared(NamedTuple):
    case: Case
    held: list[HeldRole] | None  # None when a role or the organization is unknown


class SuiteFile(NamedTuple):
    path: Path
    source: Source
    tests: list[Prepared]


class Suite(NamedTuple):
    files: list[SuiteFile]  # those that read; the others have diagnostics
    diagnostics: list[Diagnostic]
    wildcard: str | None


def suite_paths(root: Path, diagnostics: list[Diagnostic]) -> list[Path]:
    """The test files of `root` (`tests/*.json`), in name order: none when there is no
    `tests/` folder; what is skipped is reported."""
    return folder_files(root, TESTS_DIR, "policy test", diagnostics)


def read_suite(root: Path, paths: Sequence[Path] | None, settings: Settings) -> Suite:
    """The test files `paths` (None: those of `root`), read and checked against the
    tree `root`."""
    diagnostics: list[Diagnostic] = []
    chosen = suite_paths(root, diagnostics) if paths is None else list(paths)
    if not chosen:
        return Suite([], diagnostics, None)
    tree = Tree.of(root, settings)
    real_root = root.resolve()
    files = []
    for path in chosen:
        data, source, found = read_json(path, real_root, settings.limits)
        diagnostics += found
        if source is None:
            continue
        document = to_model(tree.suite.model, data, source, diagnostics)
        if document is None:
            continue
        tests = []
        for case in tree.suite.cases(document):
            findings, held = check_case(case, tree)
            diagnostics += [source.diagnostic(*f) for f in findings]
            tests.append(Prepared(case, held))
        files.append(SuiteFile(path, source, tests))
    wildcard = tree.catalog.wildcard if tree.catalog is not None else None
    return Suite(files, diagnostics, wildcard)


def check_case(case: Case, tree: Tree) -> tuple[list[Finding], list[HeldRole] | None]:
    """What is wrong with what a test names; the roles its member holds, when known."""
    findings = []
    org = find_org(tree.orgs, case.organization)
    if org is None:
        names = org_names(tree.orgs)
        findings.append(
            Finding(
                "test-org-unknown",
                f"{case.pointer}/organization",
                f"no organization file names {q(case.organization)}"
                + suggest(case.organization, names)
                + ": write the organization_id of a file in orgs/, or that file's name "
                "without .json",
            )
        )
    catalog = tree.catalog
    held: list[HeldRole] | None = None
    if catalog is not None and org is not None and org.roles is not None:
        available = {**catalog.roles, **org.roles}
        role_ids = list(catalog.everyone)
        where = f"{case.organization} ({org.file})"
        if catalog.roles:
            where = f"the project ({catalog.declared_in}) or {where}"
        for j, name in enumerate(case.roles):
            role_id, why = tree.suite.resolve(name, available, where)
            if role_id is None:
                findings.append(Finding("test-role-unknown", f"{case.pointer}/roles/{j}", why))
            else:
                role_ids.append(role_id)
        if not findings:
            held = [available[role_id] for role_id in dict.fromkeys(role_ids)]
    if catalog is not None:
        findings += _check_permissions(case, catalog, tree.suite.resource_field)
    return findings, held


def _check_permissions(case: Case, catalog: Catalog, resource_field: str) -> list[Finding]:
    findings = []
    for assertion in case.assertions:
        actions = catalog.resources.get(assertion.resource)
        if actions is None:
            findings.append(
                Finding(
                    "test-resource-unknown",
                    f"{assertion.pointer}/{resource_field}",
                    f"no resource {q(assertion.resource)}"
                    + suggest(assertion.resource, catalog.resources)
                    + f" in {catalog.declared_in}: name one it declares",
                )
            )
        elif assertion.action not in actions:
            findings.append(
                Finding(
                    "test-action-unknown",
                    f"{assertion.pointer}/action",
                    f"resource {q(assertion.resource)} has no action {q(assertion.action)}"
                    + suggest(assertion.action, actions)
                    + f" (its actions: {', '.join(sorted(actions))}): name one of them",
                )
            )
    return findings


def check_tests(
    root: Path, paths: Sequence[Path] | None, settings: Settings
) -> tuple[list[Diagnostic], int]:
    """`validate`'s part: the findings in the test files `paths` (None: those of
    `root`), and how many files were checked."""
    diagnostics: list[Diagnostic] = []
    chosen = suite_paths(root, diagnostics) if paths is None else list(paths)
    suite = read_suite(root, chosen, settings)
    return diagnostics + suite.diagnostics, len(chosen)


def run_suite(suite: Suite) -> SuiteReport:
    """Every assertion of a suite whose files are valid, judged."""
    results = []
    for file in suite.files:
        for prepared in file.tests:
            results.append(_run_case(prepared, file, suite.wildcard))
    return SuiteReport.build(tuple(str(f.path) for f in suite.files), tuple(results))


def _run_case(prepared: Prepared, file: SuiteFile, wildcard: str | None) -> CaseResult:
    case, held = prepared.case, prepared.held or []
    outcomes = []
    for assertion in case.assertions:
        verdict = judge(assertion, held, wildcard)
        line, column = file.source.place(assertion.pointer)
        outcomes.append(
            AssertionResult(
                expect=assertion.expect,
                resource=assertion.resource,
                action=assertion.action,
                passed=not verdict.explanation,
                line=line,
                column=column,
                pointer=assertion.pointer,
                granted_by=tuple(
                    RoleGrant(role=role.role_id, source=role.source, wildcard=through)
                    for role, through in verdict.grants
                ),
                explanation=verdict.explanation,
            )
        )
    line, column = file.source.place(case.pointer)
    return CaseResult(
        name=case.name,
        organization=case.organization,
        roles=tuple(role.role_id for role in held),
        file=str(file.path),
        line=line,
        column=column,
        passed=all(o.passed for o in outcomes),
        assertions=tuple(outcomes),
    )
