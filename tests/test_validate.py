"""validate as a whole: the loader's models, and the parallel path."""

from __future__ import annotations

import os
import shutil
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from support.casefiles import CASES

from policysync import validate as validate_module
from policysync.config import Limits, Settings
from policysync.diagnostics import sort_diagnostics
from policysync.loader import load_org, load_project, org_paths, read_org_file
from policysync.validate import validate, validate_root

ROOT = Path(__file__).parent.parent


def test_the_loader_returns_models_of_the_sample() -> None:
    root = ROOT / "policies"
    project, diagnostics = load_project(root, Limits())
    loaded = [load_org(path, root.resolve(), Limits()) for path in org_paths(root, diagnostics)]
    diagnostics += [d for _, found in loaded for d in found]
    orgs = [org for org, _ in loaded if org is not None]
    assert diagnostics == []
    assert project is not None
    assert {r.role_id for r in project.policy.roles} >= {"stytch_admin", "stytch_member"}
    assert len(orgs) == 7
    acme = next(o for o in orgs if o.path.name == "acme.json")
    assert acme.document.templates == ("finance",)
    auditor = acme.document.org_policy.roles[0]
    assert auditor.role_id == "auditor"
    assert auditor.permissions[0].actions == ("export", "read")


def test_parallel_check_reports_exactly_what_the_sequential_one_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree = tmp_path / "policies"
    shutil.copytree(CASES / "sample-broken" / "policies", tree)
    for i in range(30):  # enough files for several chunks, with duplicates across chunks
        shutil.copy(tree / "orgs" / "acme.json", tree / "orgs" / f"copy-{i:02}.json")
    sequential = validate([tree], Settings(), strict=False)
    monkeypatch.setattr(validate_module, "PARALLEL_MIN_FILES", 1)
    pools: list[int] = []

    class RecordingPool(ProcessPoolExecutor):
        def __init__(self, max_workers: int, **kwargs: Any) -> None:
            pools.append(max_workers)
            super().__init__(max_workers, **kwargs)

    monkeypatch.setattr(validate_module, "ProcessPoolExecutor", RecordingPool)
    parallel = validate([tree], Settings(), strict=False)
    assert parallel == sequential
    assert sum(1 for d in parallel.diagnostics if d.code == "org-duplicate") >= 31
    cores = len(os.sched_getaffinity(0))
    assert pools == ([cores - 1] if cores > 1 else [])  # this process checks a share too


def test_the_live_project_policy_is_the_authority(tmp_path: Path) -> None:
    tree = tmp_path / "policies"
    shutil.copytree(ROOT / "policies", tree)
    live, _ = load_project(tree, Limits())
    assert live is not None
    same = validate_root(tree, [], Limits(), live_project=live.policy)
    assert same.diagnostics == []
    # live lost the "approve" action that templates/finance.json (acme's and
    # stark-industries') and stark-industries.json grant
    resources = tuple(
        r.model_copy(update={"actions": tuple(a for a in r.actions if a != "approve")})
        for r in live.policy.resources
    )
    changed = live.policy.model_copy(update={"resources": resources})
    result = validate_root(tree, [], Limits(), live_project=changed)
    assert [(Path(d.file).name, d.code) for d in sort_diagnostics(result.diagnostics)] == [
        ("stark-industries.json", "action-unknown"),
        ("project.json", "project-stale"),
        ("finance.json", "action-unknown"),
    ]
    # a reordered snapshot is not stale
    reordered = live.policy.model_copy(update={"resources": live.policy.resources[::-1]})
    assert validate_root(tree, [], Limits(), live_project=reordered).diagnostics == []


def test_read_org_file_reads_what_load_org_does_even_with_a_byte_order_mark(
    tmp_path: Path,
) -> None:
    root = tmp_path / "policies"
    shutil.copytree(ROOT / "policies", root)
    acme = root / "orgs" / "acme.json"
    plain, _ = load_org(acme, root.resolve(), Limits())
    assert plain is not None
    assert read_org_file(acme, root.resolve(), Limits()) == plain.document
    acme.write_bytes(b"\xef\xbb\xbf" + acme.read_bytes())  # read by load_org (a warning)
    assert read_org_file(acme, root.resolve(), Limits()) == plain.document
    acme.write_text("{")  # changed since it was validated
    assert read_org_file(acme, root.resolve(), Limits()) is None
