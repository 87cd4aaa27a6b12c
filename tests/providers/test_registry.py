"""The providers, built once from the settings' name and the environment."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.clirun import run

from policysync.config import load_settings
from policysync.errors import ConfigError
from policysync.providers import PROVIDERS, Pacing, build
from policysync.providers.stytch import StytchClient

ENVIRON = {
    "STYTCH_PROJECT_ID": "project-test-11111111-1111-4111-8111-111111111111",
    "STYTCH_SECRET": "secret-test-registry",
    "STYTCH_BASE_URL": "http://127.0.0.1:9/",
}


def test_stytch_is_built_from_the_environment() -> None:
    provider = build("stytch", ENVIRON, Pacing(4, 2.0))
    assert isinstance(provider, StytchClient)
    assert provider.project_id == ENVIRON["STYTCH_PROJECT_ID"]
    assert set(PROVIDERS) == {"stytch"}


def test_an_unknown_provider_is_a_config_error_naming_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="use one of stytch"):
        build("nope", ENVIRON, Pacing())


def test_the_settings_name_the_provider(tmp_path: Path) -> None:
    assert load_settings(None).provider == "stytch"
    bad = tmp_path / "policysync.toml"
    bad.write_text('provider = "auth0"\n')
    with pytest.raises(ConfigError, match=r"policysync.toml:1: `provider`"):
        load_settings(bad)


def test_the_cli_reports_a_provider_it_does_not_know(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "policysync.toml").write_text('provider = "auth0"\n')
    monkeypatch.chdir(tmp_path)
    code, out, err = run(["plan"], capsys)
    assert (code, out) == (1, "")
    assert "`provider`" in err
    assert "Traceback" not in err
