"""`policysync init` end to end: the CLI in-process, writing into temporary folders; with
--from-live, against the emulators (Stytch's and ZenML Pro's) over loopback. What it
writes must validate, be in the canonical form, point its `$schema` keys at schemas that
accept it, and carry workflows that actionlint and zizmor pass."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from support.clirun import run
from support.emulated import SEED, emulator

from policysync import __version__, schemas
from policysync.canonical import same_policy, same_project
from policysync.config import load_settings
from policysync.default_project import DEFAULT_POLICY
from policysync.emulator.server import EmulatorThread, read_model
from policysync.emulator.zenml_app import DEFAULT_API_KEY
from policysync.emulator.zenml_app import build as build_zenml
from policysync.emulator.zenml_store import ZenmlSeed, ZenmlStore
from policysync.models import OrgPolicyFile, ProjectPolicyFile
from policysync.zenml_models import ZenmlOrgFile, ZenmlPermissionsFile

ROOT = Path(__file__).parent.parent.parent
BIN = Path(sys.executable).parent
ZENML_SEED = ROOT / "examples" / "zenml" / "emulator-seed.json"
SHA = "5f0c6a1e" * 5
CALLERS = [f".github/workflows/policy-{kind}.yml" for kind in ("pr", "drift", "apply", "rollback")]
SCHEMA_FILES = [f"schemas/{schemas.filename(name)}" for name in schemas.SCHEMA_MODELS]
COMMON = ["policysync.toml", ".gitignore", "policies/orgs/.gitkeep", *SCHEMA_FILES, *CALLERS]
STARTER = {"stytch": "policies/project.json", "zenml": "policies/permissions.json"}
SCHEMA_OF = {
    "policies/project.json": "project-policy",
    "policies/permissions.json": "zenml-permissions",
}


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def tree(root: Path) -> dict[str, bytes]:
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def checked(repo: Path, provider: str, capsys: pytest.CaptureFixture[str]) -> None:
    """`repo` as a policy repository of `provider`: its settings say so; validate and
    `fmt --check` pass there; each policy file's `$schema` resolves, relative to the
    file, to the schema of its kind in `repo/schemas`, which accepts it."""
    settings = load_settings(repo / "policysync.toml")
    assert (settings.provider, settings.policies) == (provider, str(repo / "policies"))
    policies = sorted((repo / "policies").rglob("*.json"))
    assert policies
    for path in policies:
        relative = path.relative_to(repo).as_posix()
        document = json.loads(path.read_text())
        target = (path.parent / document["$schema"]).resolve()
        org_schema = "org-policy" if provider == "stytch" else "zenml-org-roles"
        name = SCHEMA_OF.get(relative, org_schema)
        assert target == (repo / "schemas" / schemas.filename(name)).resolve(), relative
        jsonschema.validate(document, json.loads(target.read_text()))
    cwd = Path.cwd()
    os.chdir(repo)
    try:
        code, out, err = run(["validate"], capsys)
        assert code == 0, out + err
        code, out, err = run(["fmt", "--check"], capsys)
        assert (code, out) == (0, ""), err
    finally:
        os.chdir(cwd)


def linted(repo: Path) -> None:
    """actionlint (with ShellCheck) and zizmor (offline, every audit), as `make
    workflows` runs them, on the repository's workflows, without zizmor settings."""
    files = [str(repo / path) for path in CALLERS]
    lint = subprocess.run(
        [BIN / "actionlint", "-shellcheck", BIN / "shellcheck", "-pyflakes=", *files],
        capture_output=True,
        text=True,
        check=False,
        cwd=repo,
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr
    audit = subprocess.run(
        [BIN / "zizmor", "--offline", "--no-progress", "--persona", "auditor", ".github"],
        capture_output=True,
        text=True,
        check=False,
        cwd=repo,
    )
    assert audit.returncode == 0, audit.stdout + audit.stderr
    assert "No findings to report" in audit.stdout


# Without --from-live.


@pytest.mark.parametrize("provider", ["stytch", "zenml"])
def test_init_writes_a_repository_that_validates_in_the_canonical_form(
    here: Path, provider: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(["init", "repo", "--provider", provider], capsys)
    assert code == 0, err
    repo = here / "repo"
    written = tree(repo)
    assert sorted(written) == sorted([*COMMON, STARTER[provider]])
    for path in written:
        assert f"+ {Path('repo', path)} (created)" in out.splitlines()
    assert out.splitlines()[-1] == (
        f"Init: a {provider} policy repository in repo: {len(written)} created, 0 updated, "
        "0 unchanged."
    )
    for name in schemas.SCHEMA_MODELS:  # the published ones, as `schema --out` writes them
        filename = schemas.filename(name)
        assert written[f"schemas/{filename}"] == (ROOT / "schemas" / filename).read_bytes()
    assert written[".gitignore"].splitlines()[-1] == b".policysync/"
    assert written["policies/orgs/.gitkeep"] == b""
    if provider == "stytch":
        project = ProjectPolicyFile.model_validate_json(written["policies/project.json"])
        assert same_project(project.policy, DEFAULT_POLICY)  # a new project's, to export over
    else:
        declared = ZenmlPermissionsFile.model_validate_json(written["policies/permissions.json"])
        assert declared == ZenmlPermissionsFile(schema_="../schemas/zenml-permissions.schema.json")
    assert "placeholders" in err
    assert "Using it in GitHub" in err
    checked(repo, provider, capsys)


@pytest.mark.parametrize("provider", ["stytch", "zenml"])
@pytest.mark.parametrize("pinned", [False, True])
def test_the_written_workflows_pass_actionlint_and_zizmor(
    here: Path, provider: str, pinned: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    pins = ["--repository", "acme/policysync", "--ref", SHA] if pinned else []
    code, _, err = run(["init", "--provider", provider, *pins], capsys)
    assert code == 0, err
    owner, sha = ("acme/policysync", SHA) if pinned else ("OWNER/policysync", "0" * 40)
    for path in CALLERS:
        text = (here / path).read_text()
        kind = path.rsplit("-", 1)[1].removesuffix(".yml")
        assert (
            f"    uses: {owner}/.github/workflows/policysync-{kind}.yml@{sha} # v{__version__}\n"
        ) in text
        assert f"      provider: {provider}\n" in text
    assert ("placeholders" in err) is not pinned
    linted(here)


def test_init_in_the_current_folder_keeps_what_is_there(
    here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (here / "README.md").write_text("# acme's roles\n")
    (here / ".gitignore").write_text("node_modules/")
    code, out, err = run(["init"], capsys)
    assert code == 0, err
    assert (here / "README.md").read_text() == "# acme's roles\n"
    assert (here / ".gitignore").read_text().startswith("node_modules/\n\n")
    assert (here / ".gitignore").read_text().endswith("\n.policysync/\n")
    assert "~ .gitignore (updated)" in out
    assert "+ policysync.toml (created)" in out


def test_init_again_changes_nothing(here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["init", "repo"], capsys)[0] == 0
    before = tree(here / "repo")
    mtimes = {p: p.stat().st_mtime_ns for p in (here / "repo").rglob("*") if p.is_file()}
    code, out, err = run(["init", "repo"], capsys)
    assert code == 0, err
    summary = f"0 created, 0 updated, {len(before)} unchanged."
    assert out == f"Init: a stytch policy repository in repo: {summary}\n"
    assert tree(here / "repo") == before
    assert {p: p.stat().st_mtime_ns for p in mtimes} == mtimes


def test_init_refuses_to_write_over_files_listing_them_all(
    here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = here / "repo"
    (repo / "policies").mkdir(parents=True)
    (repo / "policysync.toml").write_text('provider = "zenml"\n')
    (repo / "policies" / "project.json").write_text("{}")
    (repo / "schemas").mkdir()
    (repo / "schemas" / "org-policy.schema.json").write_text(
        (ROOT / "schemas" / "org-policy.schema.json").read_text()  # the same: no conflict
    )
    before = tree(repo)
    code, out, err = run(["init", "repo"], capsys)
    assert code == 1
    assert out == ""
    assert err == (
        "error: repo: init would write over these files:\n"
        f"  {Path('repo/policies/project.json')}\n"
        f"  {Path('repo/policysync.toml')}\n"
        "nothing was written: move them away, or run init with --force to replace them\n"
    )
    assert tree(repo) == before

    code, out, err = run(["init", "repo", "--force"], capsys)
    assert code == 0, err
    assert f"~ {Path('repo/policysync.toml')} (updated)" in out
    assert f"~ {Path('repo/policies/project.json')} (updated)" in out
    assert out.splitlines()[-1].endswith(": 18 created, 2 updated, 1 unchanged.")
    checked(repo, "stytch", capsys)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--all-orgs"], "--all-orgs exports live organizations: it goes with --from-live"),
        (["--ref", f"v{__version__}"], "give the full commit SHA (40 hex digits)"),
        (["--ref", SHA[:7]], "give the full commit SHA (40 hex digits)"),
        (["--repository", "policysync"], "give it as OWNER/NAME"),
        (["--provider", "auth0"], "'auth0' is not one of 'stytch', 'zenml'"),
    ],
)
def test_init_refuses_bad_options_before_writing(
    here: Path, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(["init", "repo", *argv], capsys)
    assert (code, out) == (1, "")
    assert message in err
    assert not (here / "repo").exists()


# --from-live, Stytch.


@pytest.fixture
def stytch_live(here: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[EmulatorThread]:
    with emulator(monkeypatch) as thread:
        yield thread


def test_from_live_exports_the_project_policy(
    stytch_live: EmulatorThread, here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(["init", "repo", "--from-live"], capsys)
    assert code == 0, err
    project = ProjectPolicyFile.model_validate_json(
        (here / "repo/policies/project.json").read_text()
    )
    assert same_project(project.policy, SEED.policy)
    assert not same_project(project.policy, DEFAULT_POLICY)
    assert sorted(tree(here / "repo")) == sorted([*COMMON, "policies/project.json"])
    assert "Export: 1 created, 0 updated, 0 unchanged, 0 problems." in out
    checked(here / "repo", "stytch", capsys)


def test_from_live_all_orgs_exports_every_organization_with_roles(
    stytch_live: EmulatorThread, here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(["init", "repo", "--from-live", "--all-orgs"], capsys)
    assert code == 0, err
    orgs = sorted((here / "repo/policies/orgs").glob("*.json"))
    with_roles = {o.organization_id: o.org_policy for o in SEED.organizations if o.org_policy.roles}
    assert len(orgs) == len(with_roles) > 1
    for path in orgs:
        document = OrgPolicyFile.model_validate_json(path.read_text())
        assert same_policy(document.org_policy, with_roles.pop(document.organization_id))
    assert with_roles == {}
    checked(here / "repo", "stytch", capsys)
    os.chdir(here / "repo")
    code, out, err = run(["plan", "--detailed-exitcode"], capsys)
    assert code == 0, out + err  # the files say what live says


def test_from_live_refuses_policy_files_that_exist(
    stytch_live: EmulatorThread, here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    orgs = here / "repo" / "policies" / "orgs"
    orgs.mkdir(parents=True)
    (orgs / "acme.json").write_text("{}")
    code, _, err = run(["init", "repo", "--from-live"], capsys)
    assert code == 1
    assert f"  {Path('repo/policies/orgs/acme.json')}\n" in err
    assert tree(here / "repo") == {"policies/orgs/acme.json": b"{}"}


def test_from_live_with_bad_credentials_writes_nothing(
    stytch_live: EmulatorThread,
    here: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("STYTCH_SECRET", "secret-test-wrong-wrong-wrong-d3Jvbmc")
    code, out, err = run(["init", "repo", "--from-live"], capsys)
    assert (code, out) == (1, "")
    assert "error:" in err
    assert "wrong-wrong" not in err
    assert not (here / "repo").exists()


# --from-live, ZenML Pro.


@pytest.fixture
def zenml_live(here: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[EmulatorThread]:
    store = ZenmlStore()
    store.load(read_model(ZENML_SEED, ZenmlSeed))
    with EmulatorThread(build_zenml(store, DEFAULT_API_KEY)) as thread:
        monkeypatch.setenv("ZENML_PRO_API_KEY", DEFAULT_API_KEY)
        monkeypatch.setenv("ZENML_PRO_API_URL", thread.url)
        yield thread


def seeded_roles() -> dict[str, list[dict[str, Any]]]:
    document = json.loads(ZENML_SEED.read_text())
    return {org["id"]: org["roles"] for org in document["organizations"] if org.get("roles")}


def test_zenml_from_live_writes_an_empty_vocabulary_and_no_organization(
    zenml_live: EmulatorThread, here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(["init", "repo", "--provider", "zenml", "--from-live"], capsys)
    assert code == 0, err
    assert sorted(tree(here / "repo")) == sorted([*COMMON, "policies/permissions.json"])
    assert "Export: 0 created, 0 updated, 0 unchanged, 0 problems." in out
    declared = ZenmlPermissionsFile.model_validate_json(
        (here / "repo/policies/permissions.json").read_text()
    )
    assert declared == ZenmlPermissionsFile(schema_="../schemas/zenml-permissions.schema.json")
    checked(here / "repo", "zenml", capsys)


def test_zenml_from_live_all_orgs_declares_the_words_the_roles_use(
    zenml_live: EmulatorThread, here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(
        ["init", "repo", "--provider", "zenml", "--from-live", "--all-orgs"], capsys
    )
    assert code == 0, err
    roles = seeded_roles()
    orgs = sorted((here / "repo/policies/orgs").glob("*.json"))
    assert len(orgs) == len(roles) > 1
    for path in orgs:
        document = ZenmlOrgFile.model_validate_json(path.read_text())
        exported = {(r.level, r.name) for r in document.roles}
        assert exported == {(r["level"], r["name"]) for r in roles.pop(document.organization_id)}
    assert roles == {}
    declared = ZenmlPermissionsFile.model_validate_json(
        (here / "repo/policies/permissions.json").read_text()
    )
    organization_level = [
        p
        for org in seeded_roles().values()
        for role in org
        if role["level"] == "organization"
        for p in role["permissions"]
    ]
    assert organization_level  # the seed has some: they need declaring
    assert set(declared.organization.resources) == {p["resource"] for p in organization_level}
    assert set(declared.organization.actions) == {p["action"] for p in organization_level}
    assert declared.workspace.resources == declared.project.resources == ()
    checked(here / "repo", "zenml", capsys)
    os.chdir(here / "repo")
    code, out, err = run(["plan", "--detailed-exitcode"], capsys)
    assert code == 0, out + err
