"""Real git repositories in temporary folders, for the tests of git integration."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).parent.parent.parent
IDENTITY = {
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.com",
}


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout.strip()


def commit_all(cwd: Path, message: str) -> str:
    git(cwd, "add", "-A")
    git(cwd, "commit", "-qm", message)
    return git(cwd, "rev-parse", "HEAD")


def sample_repo(path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A repository at `path` (the current folder) holding the sample policies in one
    commit; returns that commit."""
    for name, value in IDENTITY.items():
        monkeypatch.setenv(name, value)
    shutil.copytree(ROOT / "policies", path / "policies")
    monkeypatch.chdir(path)
    git(path, "init", "-q", "-b", "main")
    return commit_all(path, "sample policies")


def edit(path: Path, change: Any) -> None:
    """Rewrite a JSON file through `change(document)`."""
    document = json.loads(path.read_text())
    change(document)
    path.write_text(json.dumps(document, indent=2) + "\n")


def add_role(document: Any, role_id: str = "new-role", action: str = "read") -> None:
    document["org_policy"]["roles"].append(
        {
            "role_id": role_id,
            "description": "added in a test",
            "permissions": [{"resource_id": "invoices", "actions": [action]}],
        }
    )
