"""`policysync validate --changed-since REF`, over real git repositories."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from support.clirun import run
from support.gitkit import add_role, commit_all, edit, git, sample_repo

from policysync.commands.validate import select
from policysync.git import kept, parse_name_status

ORGS = Path("policies/orgs")


def checked(out: str) -> tuple[int, set[str]]:
    """files_checked, and the files with diagnostics, of a JSON validate report."""
    report = json.loads(out)
    return report["files_checked"], {d["file"] for d in report["diagnostics"]}


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The sample policies, with an error in acme.json already committed: a run that
    checks acme.json reports it."""
    sample_repo(tmp_path, monkeypatch)
    edit(ORGS / "acme.json", lambda d: add_role(d, "broken", "no-such-action"))
    return commit_all(tmp_path, "acme: a role with an unknown action")


def test_nothing_changed_checks_nothing(repo: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["validate", "--changed-since", repo, "--format", "json"], capsys)
    assert (code, checked(out)) == (0, (0, set()))
    assert "0 organization file(s) changed since" in err


def test_only_changed_files_are_checked(
    repo: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    edit(ORGS / "globex.json", add_role)  # valid, committed
    commit_all(tmp_path, "globex: a new role")
    edit(ORGS / "hooli.json", lambda d: add_role(d, "bad", "nope"))  # invalid, unstaged
    edit(ORGS / "initech.json", lambda d: d.pop("org_policy"))  # invalid, staged
    git(tmp_path, "add", str(ORGS / "initech.json"))
    (ORGS / "new.json").write_text("{")  # untracked
    git(tmp_path, "mv", str(ORGS / "umbrella.json"), str(ORGS / "renamed.json"))
    (ORGS / "wayne-enterprises.json").unlink()  # deleted: nothing to check
    (tmp_path / "policies" / "README.md").write_text("not a policy file")
    code, out, _ = run(["validate", "--changed-since", repo, "--format", "json"], capsys)
    files, reported = checked(out)
    assert code == 1
    assert files == 6  # globex, hooli, initech, new, renamed; the test file
    assert reported == {str(ORGS / n) for n in ("hooli.json", "initech.json", "new.json")}
    # acme.json's committed error is not reported: acme.json did not change since REF
    code, out, _ = run(["validate", "--format", "json"], capsys)
    assert str(ORGS / "acme.json") in checked(out)[1]


def test_a_valid_change_passes_despite_errors_elsewhere(
    repo: str, capsys: pytest.CaptureFixture[str]
) -> None:
    edit(ORGS / "globex.json", add_role)
    code, out, err = run(["validate", "--changed-since", repo], capsys)
    assert code == 0, out
    assert "2 files valid (1 organization)." in out  # globex.json, and the test file
    assert "1 organization file(s) changed since" in err
    assert "checking them, and every policy test file" in err


@pytest.mark.parametrize(
    "change",
    ["project", "schemas", "settings", "template"],
)
def test_what_every_file_depends_on_rechecks_every_file(
    repo: str, tmp_path: Path, change: str, capsys: pytest.CaptureFixture[str]
) -> None:
    if change == "project":
        edit(tmp_path / "policies/project.json", lambda d: d["policy"]["scopes"].clear())
    elif change == "schemas":
        (tmp_path / "schemas").mkdir()
        (tmp_path / "schemas/org-policy.schema.json").write_text("{}")
    elif change == "template":
        edit(tmp_path / "policies/templates/finance.json", lambda d: d.update(description="x"))
    else:
        (tmp_path / "policysync.toml").write_text("[limits]\nmax_roles_per_org = 50\n")
    code, out, err = run(["validate", "--changed-since", repo, "--format", "json"], capsys)
    files, reported = checked(out)
    assert code == 1
    assert files == 10  # project.json, the seven organization files, the template, the test file
    assert reported == {str(ORGS / "acme.json")}
    assert "changed since" in err
    assert "checking every file" in err


def test_a_new_duplicate_is_reported_on_both_files(
    repo: str, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copy(ORGS / "globex.json", ORGS / "globex-copy.json")
    code, out, _ = run(["validate", "--changed-since", repo, "--format", "json"], capsys)
    report = json.loads(out)
    assert code == 1
    duplicates = {d["file"] for d in report["diagnostics"] if d["code"] == "org-duplicate"}
    assert duplicates == {str(ORGS / "globex.json"), str(ORGS / "globex-copy.json")}
    assert report["files_checked"] == 3  # the two, and the test file


TESTS = Path("policies/tests")


def test_a_changed_test_file_is_checked_alone(
    repo: str, capsys: pytest.CaptureFixture[str]
) -> None:
    edit(TESTS / "finance.json", lambda d: d["tests"][0].update(organization="acmee"))
    code, out, err = run(["validate", "--changed-since", repo, "--format", "json"], capsys)
    files, reported = checked(out)
    assert (code, files, reported) == (1, 1, {str(TESTS / "finance.json")})
    assert "0 organization file(s) changed since" in err
    codes = [d["code"] for d in json.loads(out)["diagnostics"]]
    assert codes == ["test-org-unknown"]


def test_an_organization_change_rechecks_the_tests_naming_it(
    repo: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # the sample test of stark-industries names its role finance-clerk
    edit(ORGS / "stark-industries.json", lambda d: d["org_policy"]["roles"].pop(0))
    code, out, _ = run(["validate", "--changed-since", repo, "--format", "json"], capsys)
    report = json.loads(out)
    assert code == 1
    assert [(d["file"], d["code"]) for d in report["diagnostics"]] == [
        (str(TESTS / "finance.json"), "test-role-unknown")
    ]
    assert report["files_checked"] == 2


def test_a_ref_that_names_no_commit_is_an_error_without_traceback(
    repo: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(["validate", "--changed-since", "no-such-branch"], capsys)
    assert code == 1
    assert out == ""
    assert "'no-such-branch' names no commit" in err
    assert "Traceback" not in err


def test_outside_a_repository(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copytree(Path(__file__).parent.parent.parent / "policies", tmp_path / "policies")
    monkeypatch.chdir(tmp_path)
    code, _, err = run(["validate", "--changed-since", "HEAD"], capsys)
    assert code == 1
    assert "is not in a git repository" in err


def test_paths_and_changed_since_do_not_mix(repo: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["validate", "policies", "--changed-since", repo], capsys)
    assert code == 1
    assert "give no PATH" in err


def test_name_status_parsing() -> None:
    output = "M\0a.json\0R087\0old.json\0new.json\0D\0gone.json\0A\0added.json\0C100\0x\0y\0"
    entries = parse_name_status(output)
    assert entries == [
        ("M", "a.json"),
        ("R", "new.json"),
        ("D", "gone.json"),
        ("A", "added.json"),
        ("C", "y"),
    ]
    assert kept(entries) == ["a.json", "new.json", "added.json", "y"]
    assert parse_name_status("") == []


def test_selection(tmp_path: Path) -> None:
    root = tmp_path / "policies"
    orgs = root / "orgs"
    plain = select(
        [orgs / "a.json", orgs / ".hidden.json", orgs / "x.txt", orgs / "s/b.json"], root, None
    )
    assert plain.everything is None
    assert plain.files == [orgs / "a.json"]
    assert select([orgs / "a.json", root / "project.json"], root, None).everything == str(
        root / "project.json"
    )
    config = tmp_path / "policysync.toml"
    assert select([config], root, config).everything == str(config)
    assert select([tmp_path / "schemas/x.json"], root, None).everything == str(tmp_path / "schemas")


def test_a_changed_zenml_vocabulary_rechecks_every_file(tmp_path: Path) -> None:
    root = tmp_path / "policies"
    changed = [root / "orgs" / "a.json", root / "permissions.json"]
    assert select(changed, root, None).everything == str(root / "permissions.json")


def test_a_changed_house_rule_rechecks_every_file(
    repo: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "policysync.toml").write_text('house_rules = ["rules/*.json"]\n')
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules/described.json").write_text('{"title": "any"}')
    base = commit_all(tmp_path, "a house rule")
    code, out, err = run(["validate", "--changed-since", base, "--format", "json"], capsys)
    assert (code, checked(out)) == (0, (0, set()))
    (tmp_path / "rules/described.json").write_text('{"title": "ids", "required": ["x"]}')
    code, out, err = run(["validate", "--changed-since", base, "--format", "json"], capsys)
    files, reported = checked(out)
    assert (code, files) == (1, 10)
    every = {str(ORGS / f.name) for f in (tmp_path / ORGS).glob("*.json")}
    assert reported == every | {str(Path("policies/templates/finance.json"))}
    assert "rules/described.json changed since" in err
