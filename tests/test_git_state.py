"""The commit and dirty flag that plans and journals carry, over real repositories."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.clirun import run
from support.emulated import emulator
from support.gitkit import add_role, commit_all, edit, git, sample_repo

from policysync.git import GitState, head_state
from policysync.journal import list_runs, load_run

ORGS = Path("policies/orgs")


def test_ignored_files_do_not_make_the_tree_dirty_staged_changes_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    head = sample_repo(tmp_path, monkeypatch)
    (tmp_path / ".gitignore").write_text("*.swp\n")
    head = commit_all(tmp_path, "ignore swap files")
    (ORGS / "acme.json.swp").write_text("editor state")
    assert head_state(Path("policies")) == GitState(head, False)
    edit(ORGS / "globex.json", add_role)
    git(tmp_path, "add", "policies")
    assert head_state(Path("policies")) == GitState(head, True)
    git(tmp_path, "commit", "-qm", "globex")
    assert head_state(Path("policies")) == GitState(git(tmp_path, "rev-parse", "HEAD"), False)


def test_a_policies_folder_that_does_not_exist_yet_is_clean(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    head = sample_repo(tmp_path, monkeypatch)
    assert head_state(Path("elsewhere/policies")) == GitState(head, False)


def test_plan_and_journal_carry_the_commit_and_the_dirty_flag(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    head = sample_repo(tmp_path, monkeypatch)
    with emulator(monkeypatch):
        code, out, err = run(["plan", "--format", "json"], capsys)
        assert code == 0, err
        assert (json.loads(out)["git_commit"], json.loads(out)["git_dirty"]) == (head, False)
        edit(ORGS / "hooli.json", add_role)
        code, out, err = run(["plan", "--format", "json"], capsys)
        assert (json.loads(out)["git_commit"], json.loads(out)["git_dirty"]) == (head, True)
        journal = tmp_path / "journal"
        code, _, err = run(
            [
                "apply",
                "--auto-approve",
                "--allow-delete",
                "--allow-delete-in-use",
                "--journal",
                str(journal),
            ],
            capsys,
        )
        assert code == 0, err
    (run_id,) = list_runs(journal)
    summary, _ = load_run(journal, run_id)
    assert (summary.git_commit, summary.git_dirty) == (head, True)
