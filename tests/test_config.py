"""Settings: where they are found (the current folder or the nearest one above it, within
the git repository), and how a mistyped key is told."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from support.clirun import run

from policysync.config import find_config, load_settings
from policysync.errors import ConfigError, UsageError

ROOT = Path(__file__).parent.parent


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """`tmp_path/project` with a copy of the sample policies, and no settings yet."""
    shutil.copytree(ROOT / "policies", tmp_path / "project" / "policies")
    return tmp_path / "project"


def test_the_settings_are_found_in_the_nearest_folder_above(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    deep = tree / "policies" / "orgs"
    assert find_config(deep) is None
    (tree / "policysync.toml").write_text("")
    assert find_config(deep) == deep / ".." / ".." / "policysync.toml"
    monkeypatch.chdir(deep)
    assert find_config(Path()) == Path("../../policysync.toml")
    # every path in it is relative to it, named from here
    settings = load_settings(find_config(Path()))
    assert (settings.policies, settings.journal) == ("../../policies", "../../.policysync/journal")
    # a nearer one wins; a pyproject.toml counts only with [tool.policysync]
    (tree / "policies" / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    assert find_config(Path()) == Path("../../policysync.toml")
    (tree / "policies" / "pyproject.toml").write_text("[tool.policysync]\n")
    assert find_config(Path()) == Path("../pyproject.toml")
    (deep / "policysync.toml").write_text("")
    assert find_config(Path()) == Path("policysync.toml")


@pytest.mark.parametrize("git_entry", ["folder", "file"])
def test_the_search_ends_at_the_top_of_the_git_repository(tree: Path, git_entry: str) -> None:
    """A settings file outside the repository is not the repository's (a work tree made
    by `git worktree add` has a `.git` file)."""
    (tree.parent / "policysync.toml").write_text("")  # outside the repository
    git = tree / ".git"
    git.mkdir() if git_entry == "folder" else git.write_text("gitdir: /elsewhere\n")
    assert find_config(tree / "policies" / "orgs") is None
    (tree / "pyproject.toml").write_text("[tool.policysync]\n")  # at its top: found
    assert find_config(tree / "policies" / "orgs") == tree / "policies/orgs/../../pyproject.toml"


def test_validate_works_anywhere_in_the_tree(
    tree: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # no settings: the orgs folder and its files stand for their policies folder
    monkeypatch.chdir(tree / "policies" / "orgs")
    for args in (["."], ["acme.json", "globex.json"], [".."]):
        code, out, err = run(["validate", *args], capsys)
        assert code == 0, out + err
    # settings above, with paths relative to them: found from here, and applied
    settings = 'policies = "policies"\n[limits]\nmax_roles_per_org = 3\n'
    (tree / "policysync.toml").write_text(settings)
    for args in ([], ["."], ["stark-industries.json"]):
        code, out, _ = run(["validate", *args], capsys)
        assert code == 1
        assert "error[too-many-roles] 4 roles, more than the limit of 3" in out
    code, out, _ = run(["validate"], capsys)
    assert out.startswith("../../policies/orgs/stark-industries.json:8:14: ")  # named from here
    # settings that put the policies elsewhere: `validate` checks them there
    (tree / "policysync.toml").write_text('policies = "elsewhere"\n')
    (tree / "policies").rename(tree / "elsewhere")
    monkeypatch.chdir(tree / "elsewhere" / "orgs")
    code, out, _ = run(["validate"], capsys)
    assert (code, out.strip()) == (0, "10 files valid (7 organizations).")


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('polices = "p"\n', ":1: `polices`: not a setting; did you mean `policies`?"),
        ("[limit]\nmax_roles_per_org = 3\n", ":1: `limit`: not a setting; did you mean `limits`?"),
        (
            "[limits]\nmax_role_per_org = 3\n",
            ":2: `limits.max_role_per_org`: not a setting; did you mean "
            "`limits.max_roles_per_org`?",
        ),
        (
            "[requests]\nmax_wait = 3\n",
            ":2: `requests.max_wait`: not a setting; did you mean `requests.max_wait_seconds`?",
        ),
        (
            "[apply]\nfrobnicate = 1\n",
            ":2: `apply.frobnicate`: not a setting; the settings of [apply] are: "
            "guard_min_organizations, max_change_share",
        ),
        (
            "colour = 1\n",
            ":1: `colour`: not a setting; the settings at the top level are: apply, "
            "environments, house_rules, journal, limits, policies, provider, requests, sensitive",
        ),
    ],
)
def test_an_unknown_key_says_which_was_meant(tmp_path: Path, toml: str, message: str) -> None:
    config = tmp_path / "policysync.toml"
    config.write_text(toml)
    with pytest.raises(ConfigError) as raised:
        load_settings(config)
    assert f"{config}{message}\n" in str(raised.value)
    assert "Extra inputs" not in str(raised.value)


def test_an_unknown_key_in_pyproject_is_told_at_its_line(tmp_path: Path) -> None:
    config = tmp_path / "pyproject.toml"
    config.write_text('[project]\nname = "x"\n\n[tool.policysync.limits]\nmax_role_id = 3\n')
    with pytest.raises(ConfigError, match=r"pyproject.toml:5: `limits.max_role_id`: not a s"):
        load_settings(config)
    config.write_text('[tool.policysync]\nprovder = "zenml"\n')
    with pytest.raises(ConfigError, match=r":2: `provder`: not a setting; did you mean `provi"):
        load_settings(config)


def test_sensitive_grants_are_resource_action_pairs(tmp_path: Path) -> None:
    config = tmp_path / "policysync.toml"
    config.write_text('sensitive = ["invoices:void", "a:b:delete"]\n')
    settings = load_settings(config)
    assert settings.sensitive_grants() == [("invoices", "void"), ("a:b", "delete")]
    assert load_settings(None).sensitive_grants() == []
    for bad in ("void", ":void", "invoices:"):
        config.write_text(f'provider = "stytch"\nsensitive = ["a:b", "{bad}"]\n')
        with pytest.raises(ConfigError) as raised:
            load_settings(config)
        assert str(raised.value) == (
            f'{config}:2: `sensitive.1`: "{bad}" is not resource:action, '
            'e.g. "invoices:void"\nfix the configuration file'
        )


SPEC_ENVIRONMENTS = """\
[environments.test]
project_id_env = "STYTCH_TEST_PROJECT_ID"
secret_env = "STYTCH_TEST_SECRET"
[environments.live]
project_id_env = "STYTCH_LIVE_PROJECT_ID"
secret_env = "STYTCH_LIVE_SECRET"
base_url = "https://api.stytch.com/"
"""


def test_environments_as_the_spec_writes_them(tmp_path: Path) -> None:
    config = tmp_path / "policysync.toml"
    config.write_text(SPEC_ENVIRONMENTS)
    settings = load_settings(config)
    assert sorted(settings.environments) == ["live", "test"]
    live = settings.environment("live")
    assert live is not None
    assert (live.name, live.settings.secret_env, live.settings.base_url) == (
        "live",
        "STYTCH_LIVE_SECRET",
        "https://api.stytch.com/",
    )
    assert live.setting("base_url") == "environments.live.base_url"
    assert settings.environment(None) is None
    with pytest.raises(UsageError, match=r"--env tset: .*did you mean test\?"):
        settings.environment("tset")


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        (
            '[environments.live]\nproject_id_env = "A"\nsecrets_env = "B"\n',
            ":3: `environments.live.secrets_env`: not a setting; did you mean "
            "`environments.live.secret_env`?",
        ),
        (
            '[environments.test]\nsecret_env = "A"\n\n[environments.live]\nproject_id_env = "A"\n'
            'secret_env = "B"\nbase_url_env = "C D"\n',
            ':7: `environments.live.base_url_env`: "C D" is not the name of an environment '
            "variable",
        ),
        (
            '[environments.live]\nproject_id_env = "A"\n',
            ":1: `environments.live`: name both project_id_env and secret_env, or neither",
        ),
        (
            '[environments.live]\nbase_url = "https://x/"\nbase_url_env = "X"\n',
            ":1: `environments.live`: give base_url or base_url_env, not both",
        ),
        (
            '\n[environments.live]\napi_key_env = "K"\n',
            ':2: [environments.live]: api_key_env is not for provider "stytch"; its keys are '
            "project_id_env, secret_env, base_url, base_url_env",
        ),
        (
            'provider = "zenml"\n[environments.live]\nsecret_env = "S"\nproject_id_env = "P"\n',
            ':2: [environments.live]: project_id_env, secret_env are not for provider "zenml"',
        ),
        (
            '[environments."a b"]\n',
            ':1: [environments."a b"]: an environment\'s name is letters, digits',
        ),
    ],
)
def test_a_bad_environment_is_told_at_its_line(tmp_path: Path, toml: str, message: str) -> None:
    config = tmp_path / "policysync.toml"
    config.write_text(toml)
    with pytest.raises(ConfigError) as raised:
        load_settings(config)
    assert f"{config}{message}" in str(raised.value)


def test_no_environment_defined_says_how_to_add_one() -> None:
    with pytest.raises(UsageError, match=r"--env live: the settings define no environment: add "):
        load_settings(None).environment("live")
