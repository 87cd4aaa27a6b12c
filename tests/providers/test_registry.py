"""The providers, built once from the settings' name and the environment."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from starlette.types import Receive, Scope, Send
from support.clirun import run

from policysync.config import load_settings
from policysync.emulator.app import error
from policysync.emulator.server import EmulatorThread
from policysync.errors import ConfigError
from policysync.providers import PROVIDERS, Pacing, build
from policysync.providers.stytch import StytchClient
from policysync.providers.zenml import ZenmlClient

ENVIRON = {
    "STYTCH_PROJECT_ID": "project-test-11111111-1111-4111-8111-111111111111",
    "STYTCH_SECRET": "secret-test-registry",
    "STYTCH_BASE_URL": "http://127.0.0.1:9/",
}


def test_stytch_is_built_from_the_environment() -> None:
    provider = build("stytch", ENVIRON, Pacing(4, 2.0))
    assert isinstance(provider, StytchClient)
    assert provider.project_id == ENVIRON["STYTCH_PROJECT_ID"]
    assert set(PROVIDERS) == {"stytch", "zenml"}


def test_zenml_is_built_from_the_environment_empty_variables_as_unset() -> None:
    key = "ZENPROKEY_registry-test-key-0123456789"
    provider = build("zenml", {"ZENML_PRO_API_KEY": key, "ZENML_PRO_API_URL": ""}, Pacing())
    assert isinstance(provider, ZenmlClient)
    assert provider.project_id == "https://cloudapi.zenml.io"  # the default, for an empty URL
    url = {"ZENML_PRO_API_KEY": key, "ZENML_PRO_API_URL": "http://127.0.0.1:9/api/v1/"}
    assert build("zenml", url, Pacing()).project_id == "http://127.0.0.1:9/api/v1"
    with pytest.raises(ConfigError, match="ZENML_PRO_API_KEY is not set") as missing:
        build("zenml", {"ZENML_PRO_API_KEY": "  ", **ENVIRON}, Pacing())
    assert key not in str(missing.value)
    with pytest.raises(ConfigError, match="shorter than 16"):
        build("zenml", {"ZENML_PRO_API_KEY": "short"}, Pacing())
    with pytest.raises(ConfigError, match="ZENML_PRO_API_URL"):
        build(
            "zenml", {"ZENML_PRO_API_KEY": key, "ZENML_PRO_API_URL": "http://example.com"}, Pacing()
        )


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


def test_the_wait_limit_is_a_setting(tmp_path: Path) -> None:
    assert load_settings(None).requests.max_wait_seconds == 120
    assert build("stytch", ENVIRON, Pacing())._http.backoff.max_wait == 120  # type: ignore[attr-defined]
    assert build("stytch", ENVIRON, Pacing(4, None, 7.5))._http.backoff.max_wait == 7.5  # type: ignore[attr-defined]
    settings = tmp_path / "policysync.toml"
    settings.write_text("[requests]\nmax_wait_seconds = 30\n")
    assert load_settings(settings).requests.max_wait_seconds == 30
    for bad in ("-1", "inf", '"soon"'):
        settings.write_text(f"[requests]\nmax_wait_seconds = {bad}\n")
        with pytest.raises(ConfigError, match=r"policysync.toml:2: `requests.max_wait_seconds`"):
            load_settings(settings)


async def always_busy(scope: Scope, receive: Receive, send: Send) -> None:
    """A server whose every answer is a 429 asking for 5 s of patience."""
    busy = error(429, "too_many_requests", "request-id-test-busy", headers={"retry-after": "5"})
    await busy(scope, receive, send)


def test_the_cli_gives_up_at_the_wait_limit_of_the_settings(
    workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (workdir / "policysync.toml").write_text("[requests]\nmax_wait_seconds = 1\n")
    monkeypatch.setenv("STYTCH_PROJECT_ID", ENVIRON["STYTCH_PROJECT_ID"])
    monkeypatch.setenv("STYTCH_SECRET", ENVIRON["STYTCH_SECRET"])
    with EmulatorThread(always_busy) as server:
        monkeypatch.setenv("STYTCH_BASE_URL", server.url)
        started = time.monotonic()
        code, out, err = run(["plan"], capsys)
    assert time.monotonic() - started < 5  # the 5 s asked for are past the 1 s allowed
    assert (code, out) == (1, "")
    assert "Stytch answered 429 too_many_requests" in err
    assert "asked to retry after 5 s, past the 1 s a request may wait in all" in err
    assert "raise requests.max_wait_seconds" in err
    assert "request-id-test-busy" in err
    assert "Traceback" not in err
