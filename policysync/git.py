"""What git says about the policy files: the commit they come from, and whether the
working tree differs from it. The one module that talks to git (through GitPython)."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple


class GitState(NamedTuple):
    commit: str | None  # None outside a repository, or before the first commit
    dirty: bool | None  # uncommitted changes (untracked files included) under the path


def head_state(path: Path) -> GitState:
    """The HEAD commit of the repository holding `path`, and whether `path` is dirty."""
    import git  # GitPython costs ~0.1 s to import: only commands that need it pay

    try:
        repo = git.Repo(path, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        return GitState(None, None)
    with repo:
        commit = repo.head.commit.hexsha if repo.head.is_valid() else None
        inside = str(path.resolve().relative_to(Path(repo.working_dir).resolve()))
        dirty = repo.is_dirty(untracked_files=True, path=inside)
    return GitState(commit, dirty)
