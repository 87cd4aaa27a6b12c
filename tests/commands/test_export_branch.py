"""`policysync export --branch NAME`: a commit on a new branch, over a real repository,
the current checkout left as it was."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.clirun import run
from support.emulated import emulator
from support.gitkit import add_role, commit_all, edit, git, sample_repo

from policysync.models import OrgPolicyFile

ORGS = Path("policies/orgs")


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    head = sample_repo(tmp_path, monkeypatch)
    with emulator(monkeypatch):
        yield head


def status(tmp_path: Path) -> str:
    return git(tmp_path, "status", "--porcelain", "--untracked-files=all")


def test_branch_commits_the_export_and_leaves_the_checkout_alone(
    repo: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    edit(ORGS / "hooli.json", add_role)  # an uncommitted change of the user's
    before = status(tmp_path)
    code, out, err = run(["export", "--all-orgs", "--branch", "adopt-drift"], capsys)
    assert code == 0, err
    assert git(tmp_path, "branch", "--show-current") == "main"
    assert git(tmp_path, "rev-parse", "HEAD") == repo
    assert status(tmp_path) == before  # work tree and index untouched
    assert not (ORGS / "cyberdyne.json").exists()
    commit = git(tmp_path, "rev-parse", "adopt-drift")
    assert git(tmp_path, "rev-parse", "adopt-drift~1") == repo
    assert f"Committed {commit[:12]} on the new branch adopt-drift" in out
    assert "Export live" not in git(tmp_path, "log", "-1", "--format=%s", "main")
    assert git(tmp_path, "log", "-1", "--format=%s", "adopt-drift") == (
        "Export the live Stytch RBAC policies"
    )
    changed = set(git(tmp_path, "diff", "--name-only", repo, commit).splitlines())
    assert "policies/orgs/cyberdyne.json" in changed
    assert "new-role" not in git(tmp_path, "show", "adopt-drift:policies/orgs/hooli.json")
    # the branch holds what a plain export writes
    git(tmp_path, "stash", "-q", "-u")
    assert run(["export", "--all-orgs"], capsys)[0] == 0
    git(tmp_path, "add", "-A")
    assert git(tmp_path, "diff", "--cached", "--stat", "adopt-drift", "--", "policies") == ""
    assert run(["validate"], capsys)[0] == 0


def test_an_existing_branch_is_refused_before_anything_is_done(
    repo: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    git(tmp_path, "branch", "taken")
    code, out, err = run(["export", "--branch", "taken"], capsys)
    assert (code, out) == (1, "")
    assert "the branch exists" in err
    assert git(tmp_path, "rev-parse", "taken") == repo
    code, _, err = run(["export", "--branch", "bad..name"], capsys)
    assert code == 1
    assert "not a valid branch name" in err


def test_nothing_to_adopt_creates_no_branch(
    repo: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["export"], capsys)[0] == 0
    commit_all(tmp_path, "adopted")
    code, out, _ = run(["export", "--branch", "again"], capsys)
    assert code == 0
    assert "branch again was not created" in out
    assert "again" not in git(tmp_path, "branch", "--list")


def test_files_at_head_in_another_form_create_no_branch(
    repo: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["export", "--all-orgs"], capsys)[0] == 0
    acme = ORGS / "acme.json"
    document = json.loads(acme.read_text())
    document["org_policy"]["roles"].reverse()
    acme.write_text(json.dumps(document))  # what live says, on one line
    head = commit_all(tmp_path, "live, adopted; acme on one line")
    code, out, err = run(["export", "--all-orgs", "--branch", "reformatted"], capsys)
    assert code == 0, err
    assert "Nothing changed since HEAD: branch reformatted was not created." in out
    assert git(tmp_path, "branch", "--list", "reformatted") == ""
    assert git(tmp_path, "rev-parse", "HEAD") == head


def test_the_branch_starts_from_the_files_at_head(
    repo: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    acme = ORGS / "acme.json"
    edit(acme, lambda d: d.update({"$schema": "committed-schema.json"}))
    commit_all(tmp_path, "another $schema")
    edit(acme, lambda d: d.update({"$schema": "uncommitted-schema.json"}))
    assert run(["export", "--branch", "from-head"], capsys)[0] == 0
    exported = git(tmp_path, "show", "from-head:policies/orgs/acme.json")
    assert json.loads(exported)["$schema"] == "committed-schema.json"
    assert OrgPolicyFile.model_validate_json(exported).organization_id.startswith("organization-")
