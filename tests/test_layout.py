"""The one definition of which files are organization files, on disk and in git."""

from __future__ import annotations

from pathlib import Path

import pytest

from policysync.layout import is_org_file, is_org_file_name, is_org_file_path, is_tree_file


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("acme.json", True),
        ("a.b.json", True),
        (".acme.json", False),  # hidden: editors' and export's temporary files
        (".gitkeep", False),
        ("acme.json.tmp", False),
        ("acme.JSON", False),
        ("acme", False),
    ],
)
def test_org_file_names(name: str, expected: bool) -> None:
    assert is_org_file_name(name) is expected


@pytest.mark.parametrize(
    ("relative", "expected"),
    [
        ("orgs/acme.json", True),
        ("orgs/sub/acme.json", False),  # only files directly in orgs/
        ("orgs/.acme.json", False),
        ("project.json", False),
        ("other/acme.json", False),
        ("orgs", False),
    ],
)
def test_org_file_paths_in_a_git_tree(relative: str, expected: bool) -> None:
    assert is_org_file_path(relative) is expected


def test_org_files_on_disk(tmp_path: Path) -> None:
    root = tmp_path / "policies"
    assert is_org_file(root / "orgs" / "acme.json", root)
    assert not is_org_file(root / "orgs" / "x" / "acme.json", root)
    assert not is_org_file(root / "acme.json", root)
    assert is_tree_file(root / "project.json", root)
    assert is_tree_file(root / "orgs" / "acme.json", root)
    assert not is_tree_file(root / "orgs" / "project.json.bak", root)
