"""The one answer to "which files are organization files": the layout of a policies
folder, on disk or in a git tree.

    <policies>/project.json      the project policy snapshot
    <policies>/orgs/<name>.json  one file per managed organization: directly in orgs/,
                                 ending in .json, not hidden (.gitkeep, editor files)
    <policies>/templates/<name>.json
                                 roles shared by organizations, named `<name>` in their
                                 files' `templates`; the same naming rules as orgs/
    <policies>/tests/<name>.json policy tests (`policysync test`): read by `test` and
                                 `validate`, never as organization files

With `provider = "zenml"` there is no project policy: the optional
`<policies>/permissions.json` (the permission vocabulary a team adds) takes its place.
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_FILE = "project.json"
PERMISSIONS_FILE = "permissions.json"
ORGS_DIR = "orgs"
TEMPLATES_DIR = "templates"
TESTS_DIR = "tests"


def is_org_file_name(name: str) -> bool:
    """Whether an entry of `orgs/` named `name` is read as an organization file."""
    return name.endswith(".json") and not name.startswith(".")


def is_org_file_path(relative: str) -> bool:
    """Whether a path relative to the policies folder, with `/` separators (as git names
    it), is an organization file."""
    folder, _, name = relative.partition("/")
    return folder == ORGS_DIR and "/" not in name and is_org_file_name(name)


def is_template_file_path(relative: str) -> bool:
    """Whether a path relative to the policies folder, with `/` separators, is a template."""
    folder, _, name = relative.partition("/")
    return folder == TEMPLATES_DIR and "/" not in name and is_org_file_name(name)


def template_name(file_name: str) -> str:
    """The name organization files use for the template in `file_name`: its stem."""
    return file_name.removesuffix(".json")


def is_template_file(path: Path, root: Path) -> bool:
    """Whether `path` is a template file of the policies folder `root`."""
    return place(path).parent == place(root / TEMPLATES_DIR) and is_org_file_name(path.name)


def is_org_file(path: Path, root: Path) -> bool:
    """Whether `path` is an organization file of the policies folder `root`."""
    return place(path).parent == place(root / ORGS_DIR) and is_org_file_name(path.name)


def is_test_file(path: Path, root: Path) -> bool:
    """Whether `path` is a policy test file of the policies folder `root`: directly in
    `tests/`, named as organization files are."""
    return place(path).parent == place(root / TESTS_DIR) and is_org_file_name(path.name)


def root_file(provider: str) -> str:
    """The file beside `orgs/` that every organization file is checked against."""
    return PERMISSIONS_FILE if provider == "zenml" else PROJECT_FILE


def is_tree_file(path: Path, root: Path, provider: str = "stytch") -> bool:
    """Whether `path` is a file the layout of `root` names: project.json (permissions.json
    for ZenML), an organization file, a template or a policy test file."""
    return (
        place(path) == place(root / root_file(provider))
        or is_org_file(path, root)
        or is_template_file(path, root)
        or is_test_file(path, root)
    )


def place(path: Path) -> Path:
    """Where `path` is, whichever way it is named (`../orgs/x.json` inside `orgs/` is
    `x.json`): absolute, `.` and `..` resolved by name (symbolic links are not followed)."""
    return Path(os.path.abspath(path))
