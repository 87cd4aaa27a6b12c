"""What git says about the policy files: the commit they come from, whether the working
tree differs from it, what changed since another commit, the files at a commit, and a
commit of exported files on a new branch. The one module that talks to git (through
GitPython).

The pure parsing of git's output comes first; the functions that run git follow. Paths
given to and returned by the latter are file-system paths; inside, git sees paths
relative to the top of the work tree, with `/` separators.
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Literal, NamedTuple

from policysync.errors import UsageError
from policysync.layout import ORGS_DIR, TEMPLATES_DIR, root_file

if TYPE_CHECKING:
    from git import Commit, Repo

LINK_MODE, DEFAULT_FILE_MODE = 0o120000, 0o100644


class GitState(NamedTuple):
    commit: str | None  # None outside a repository, or before the first commit
    dirty: bool | None  # uncommitted changes (untracked files included) under the path


class TreeFile(NamedTuple):
    """One entry below a folder, at a commit."""

    path: str  # relative to the folder, `/`-separated
    kind: Literal["file", "link", "dir"]
    size: int
    data: bytes | None  # None for a folder, or a file larger than it was asked to read


class Snapshot(NamedTuple):
    commit: str  # the full hexsha
    files: tuple[TreeFile, ...]  # every entry below the folder, sorted by path; () if absent


# Pure parsing ---------------------------------------------------------------------------


def split_z(output: str) -> list[str]:
    """The fields of a NUL-separated listing (`-z`)."""
    return [field for field in output.split("\0") if field]


def parse_name_status(output: str) -> list[tuple[str, str]]:
    """(status letter, path) of each entry of `git diff --name-status -z`; a rename or
    copy is reported under its new path."""
    fields, out = split_z(output), []
    position = 0
    while position < len(fields):
        status = fields[position]
        width = 2 if status[:1] in ("R", "C") else 1
        path = fields[position + width] if position + width < len(fields) else ""
        if path:
            out.append((status[:1], path))
        position += width + 1
    return out


def kept(entries: Sequence[tuple[str, str]]) -> list[str]:
    """The paths of the entries that still exist (everything but deletions)."""
    return [path for status, path in entries if status != "D"]


def relative(top: Path, path: Path) -> str | None:
    """`path` as git names it inside the work tree at `top`; None when it is outside."""
    try:
        inside = path.resolve().relative_to(top.resolve())
    except ValueError:
        return None
    return PurePosixPath(*inside.parts).as_posix()


# Calls that run git ---------------------------------------------------------------------


@contextlib.contextmanager
def _repository(path: Path) -> Iterator[tuple[Repo, str]]:
    """The repository holding `path` (a folder, existing or not), and `path` inside it."""
    import git  # GitPython is slow to import: only commands that need it pay

    start = next((p for p in (path, *path.absolute().parents) if p.is_dir()), Path())
    try:
        repo = git.Repo(start, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise UsageError(f"{path} is not in a git repository") from None
    with repo:
        if repo.bare or repo.working_tree_dir is None:
            raise UsageError(f"{repo.git_dir} is a bare repository: run policysync in a clone")
        inside = relative(Path(repo.working_tree_dir), path)
        if inside is None:
            raise UsageError(f"{path} is outside the git work tree {repo.working_tree_dir}")
        yield repo, inside


def _commit(repo: Repo, ref: str) -> Commit:
    """The commit `ref` names (any revision git understands), or a UsageError."""
    import git

    try:
        sha = repo.git.rev_parse("--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}")
        return repo.commit(sha)
    except (git.GitCommandError, ValueError):
        raise UsageError(
            f"{ref!r} names no commit in {repo.working_tree_dir}: check its spelling, or fetch "
            "it first (in GitHub Actions: actions/checkout with fetch-depth: 0)"
        ) from None


def head_state(path: Path) -> GitState:
    """The HEAD commit of the repository holding `path`, and whether `path` is dirty."""
    try:
        with _repository(path) as (repo, inside):
            commit = repo.head.commit.hexsha if repo.head.is_valid() else None
            dirty = repo.is_dirty(untracked_files=True, path=inside)
    except UsageError:
        return GitState(None, None)
    return GitState(commit, dirty)


def changed_since(path: Path, ref: str, within: Sequence[Path]) -> list[Path]:
    """The files under `within` (files or folders) that were added, modified, renamed,
    copied or retyped between `ref` and the work tree (committed, staged or not), or
    that are untracked and not ignored. `path` names the repository."""
    with _repository(path) as (repo, _):
        top = Path(repo.working_tree_dir or ".")
        commit = _commit(repo, ref)
        specs = [f":(literal){spec}" for spec in _specs(top, within)]
        if not specs:
            return []
        diff = repo.git.diff(commit.hexsha, "--name-status", "-z", "--no-renames", "--", *specs)
        untracked = repo.git.ls_files("--others", "--exclude-standard", "-z", "--", *specs)
    paths = kept(parse_name_status(diff)) + split_z(untracked)
    return [top / name for name in sorted(set(paths))]


def _specs(top: Path, within: Sequence[Path]) -> list[str]:
    names = (relative(top, p) for p in within)
    return [name or "." for name in names if name is not None]


def files_at(path: Path, ref: str, max_bytes: int) -> Snapshot:
    """Every entry below the folder `path` at commit `ref`, read from git's objects
    (nothing is checked out); files larger than `max_bytes` are listed but not read."""
    import git

    with _repository(path) as (repo, inside):
        commit = _commit(repo, ref)
        try:
            folder = commit.tree / inside if inside != "." else commit.tree
        except KeyError:
            return Snapshot(commit.hexsha, ())
        if folder.type != "tree":
            return Snapshot(commit.hexsha, ())
        files = []
        for item in folder.traverse():
            if not isinstance(item, git.Tree | git.Blob):
                continue  # a submodule
            name = PurePosixPath(item.path).relative_to(folder.path or ".").as_posix()
            if item.type == "tree":
                files.append(TreeFile(name, "dir", 0, None))
            elif item.type == "blob":
                kind: Literal["file", "link"] = "link" if item.mode == LINK_MODE else "file"
                data = item.data_stream.read() if item.size <= max_bytes else None
                files.append(TreeFile(name, kind, item.size, data))
    return Snapshot(commit.hexsha, tuple(sorted(files)))


def check_new_branch(path: Path, branch: str) -> None:
    """Refuse (UsageError) a branch name git would refuse, or one that exists."""
    import git

    with _repository(path) as (repo, _):
        try:
            repo.git.check_ref_format("--branch", branch)
        except git.GitCommandError:
            raise UsageError(f"--branch {branch!r}: not a valid branch name") from None
        if f"refs/heads/{branch}" in {head.path for head in repo.heads}:
            raise UsageError(f"--branch {branch}: the branch exists; choose a new name")
        if not repo.head.is_valid():
            raise UsageError("--branch needs a commit to start from: this repository has none")


def commit_on_new_branch(path: Path, branch: str, files: Mapping[str, bytes], message: str) -> str:
    """Commit `files` (paths relative to the folder `path`, `/`-separated) on a new branch
    `branch` starting at HEAD, and return the commit's hexsha. The current branch, the
    index and the work tree are left as they are: the commit is built from git objects
    alone."""
    import git
    from git.index.typ import BaseIndexEntry
    from gitdb.base import IStream  # type: ignore[import-untyped]

    check_new_branch(path, branch)
    with _repository(path) as (repo, inside):
        head = repo.head.commit
        index = git.IndexFile.new(repo, head.tree)  # in memory: never written to disk
        entries = []
        for name, data in sorted(files.items()):
            full = name if inside == "." else f"{inside}/{name}"
            stored = repo.odb.store(IStream(git.Blob.type, len(data), io.BytesIO(data)))
            entries.append(BaseIndexEntry((DEFAULT_FILE_MODE, stored.binsha, 0, full)))
        index.add(entries, write=False)
        tree = index.write_tree()
        commit = git.Commit.create_from_tree(repo, tree, message, [head], head=False)
        try:
            repo.create_head(branch, commit)
        except OSError as exc:  # e.g. a branch `a` exists and NAME is `a/b`
            raise UsageError(f"--branch {branch}: git cannot create it: {exc}") from None
        return commit.hexsha


def materialize(files: Sequence[TreeFile], tree: Path, provider: str = "stytch") -> None:
    """Write what the loader reads (`project.json`, or ZenML's `permissions.json`, and
    the entries of `orgs/` and `templates/`) under `tree`.
    A file too large to read becomes a sparse file of its size: the loader refuses it
    by its size alone.

    Nothing is written through a symbolic link: each file and link is created exclusively
    (an entry already at its name is not followed), and an entry whose folder leads
    through a link is refused. Git never holds two such entries, but a file system that
    ignores case takes `orgs/A.json` and `orgs/a.json` for one name: such files are
    refused (UsageError) rather than laid out through one another."""
    tree.mkdir()
    root, own = tree.resolve(), root_file(provider)
    for file in files:
        top = file.path.split("/", 1)[0]
        if file.path != own and top not in (ORGS_DIR, TEMPLATES_DIR):
            continue
        target = root.joinpath(*file.path.split("/"))
        try:
            if target.parent.resolve() != target.parent:
                raise FileExistsError(file.path)
            target.parent.mkdir(parents=True, exist_ok=True)
            if file.kind == "dir":
                target.mkdir(exist_ok=True)
            elif file.kind == "link":
                os.symlink(os.fsdecode(file.data or b""), target)
            else:
                with open(target, "xb") as out:
                    if file.data is None:
                        out.truncate(file.size)
                    else:
                        out.write(file.data)
        except FileExistsError:
            raise UsageError(
                f"{file.path} (committed): on this file system its name is that of another "
                "committed entry, or its folder is a symbolic link (names that differ only "
                "in case are one name here); rename it in git"
            ) from None
