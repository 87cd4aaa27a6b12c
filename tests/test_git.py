"""git state of the policy files, over real repositories in temporary folders."""

from __future__ import annotations

from pathlib import Path

from support.gitkit import git

from policysync.git import GitState, head_state


def test_outside_a_repository(tmp_path: Path) -> None:
    assert head_state(tmp_path) == GitState(None, None)


def test_commit_and_dirty_flag_of_the_policies_folder(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q")
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "project.json").write_text("{}")
    assert head_state(policies) == GitState(None, True)  # no commit yet, untracked file
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-qm", "first")
    head = git(tmp_path, "rev-parse", "HEAD")
    assert head_state(policies) == GitState(head, False)
    (tmp_path / "elsewhere.txt").write_text("outside the policies folder")
    assert head_state(policies) == GitState(head, False)
    (policies / "project.json").write_text('{"changed": true}')
    assert head_state(policies) == GitState(head, True)
    git(tmp_path, "checkout", "-q", "--", "policies")
    (policies / "orgs").mkdir()
    (policies / "orgs" / "new.json").write_text("{}")
    assert head_state(policies) == GitState(head, True)
