"""Credentials and base URL from the environment: Stytch's defaults, and the refusals."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from policysync.errors import ConfigError
from policysync.providers.stytch import Endpoint, endpoint_from_env

TEST_ID = "project-test-11111111-2222-4333-8444-555555555555"
LIVE_ID = "project-live-11111111-2222-4333-8444-555555555555"
SECRET = "secret-test-Zm9vYmFyYmF6cXV4cXV1eA=="


def env(**extra: str) -> dict[str, str]:
    return {"STYTCH_PROJECT_ID": TEST_ID, "STYTCH_SECRET": SECRET, **extra}


@pytest.mark.parametrize(
    ("project_id", "url"),
    [
        (TEST_ID, "https://test.stytch.com/"),
        (LIVE_ID, "https://api.stytch.com/"),
        ("project-anything-else", "https://test.stytch.com/"),
    ],
)
def test_the_host_follows_the_project_as_in_stytchs_sdks(project_id: str, url: str) -> None:
    endpoint = endpoint_from_env(env(STYTCH_PROJECT_ID=project_id))
    assert endpoint == Endpoint(project_id, SecretStr(SECRET), url)
    assert endpoint.secret.get_secret_value() == SECRET


@pytest.mark.parametrize(
    ("given", "used"),
    [
        ("https://gateway.example.com", "https://gateway.example.com/"),
        ("https://gateway.example.com/stytch/", "https://gateway.example.com/stytch/"),
        ("http://127.0.0.1:8787", "http://127.0.0.1:8787/"),
        ("  http://localhost:8787/  ", "http://localhost:8787/"),
        ("", "https://api.stytch.com/"),  # empty is unset
    ],
)
def test_base_url_override(given: str, used: str) -> None:
    assert endpoint_from_env(env(STYTCH_PROJECT_ID=LIVE_ID, STYTCH_BASE_URL=given)).base_url == used


@pytest.mark.parametrize(
    ("variables", "named"),
    [
        ({}, "STYTCH_PROJECT_ID and STYTCH_SECRET are not set"),
        ({"STYTCH_PROJECT_ID": TEST_ID}, "STYTCH_SECRET is not set"),
        ({"STYTCH_SECRET": SECRET}, "STYTCH_PROJECT_ID is not set"),
        ({"STYTCH_PROJECT_ID": " ", "STYTCH_SECRET": SECRET}, "STYTCH_PROJECT_ID is not set"),
        ({"STYTCH_PROJECT_ID": TEST_ID, "STYTCH_SECRET": ""}, "STYTCH_SECRET is not set"),
    ],
)
def test_missing_credentials_are_refused(variables: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named) as caught:
        endpoint_from_env(variables)
    assert "set STYTCH_PROJECT_ID and STYTCH_SECRET" in str(caught.value)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8787/",
        "http://127.45.6.7/",
        "http://[::1]:8787/",
        "http://localhost/",
        "http://LOCALHOST:1/",
        "https://127.0.0.1/",
        "https://test.stytch.com/",
    ],
)
def test_loopback_may_use_plain_http(url: str) -> None:
    assert endpoint_from_env(env(STYTCH_BASE_URL=url)).base_url == url


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://api.stytch.com/", "accepted only for loopback hosts"),
        ("http://10.0.0.1:8787/", "accepted only for loopback hosts"),
        ("http://128.0.0.1/", "accepted only for loopback hosts"),
        ("http://[::2]/", "accepted only for loopback hosts"),
        ("http://localhost.example.com/", "accepted only for loopback hosts"),
        ("http://127.0.0.1.nip.io/", "accepted only for loopback hosts"),
        ("ftp://127.0.0.1/", "not an http\\(s\\) URL"),
        ("localhost:8787", "not an http\\(s\\) URL"),
        ("test.stytch.com", "not an http\\(s\\) URL"),
        ("https:///v1", "not an http\\(s\\) URL"),
        ("http://127.0.0.1:port/", "Port could not be cast"),
    ],
)
def test_unsafe_or_malformed_base_urls_are_refused(url: str, reason: str) -> None:
    with pytest.raises(ConfigError, match=reason) as caught:
        endpoint_from_env(env(STYTCH_BASE_URL=url))
    assert "STYTCH_BASE_URL" in str(caught.value)


def test_credentials_in_the_url_are_refused_without_echoing_them() -> None:
    with pytest.raises(ConfigError, match="holds credentials") as caught:
        endpoint_from_env(env(STYTCH_BASE_URL=f"ftp://{TEST_ID}:{SECRET}@example.com/"))
    assert SECRET not in str(caught.value)


def test_endpoints_built_directly_are_checked_too() -> None:
    with pytest.raises(ConfigError, match="loopback"):
        Endpoint(TEST_ID, SecretStr(SECRET), "http://example.com/")


def test_the_secret_is_never_shown() -> None:
    endpoint = endpoint_from_env(env())
    assert SECRET not in repr(endpoint)
    assert SECRET not in str(endpoint)
    assert SECRET not in f"{endpoint.secret}"


VARIABLES = ("STYTCH_PROJECT_ID", "STYTCH_SECRET", "STYTCH_BASE_URL")
VALUES = {"STYTCH_BASE_URL": "https://test.stytch.com/", "STYTCH_PROJECT_ID": TEST_ID}


def spoiled(variable: str, middle: str) -> dict[str, str]:
    """The variables, `variable` with `middle` inside its value."""
    value = VALUES.get(variable, SECRET)
    return env(STYTCH_BASE_URL=VALUES["STYTCH_BASE_URL"]) | {
        variable: value[:10] + middle + value[10:]
    }


@pytest.mark.parametrize("variable", VARIABLES)
def test_a_variable_that_is_not_utf8_is_named_not_shown(variable: str) -> None:
    """On POSIX the environment holds bytes that are not UTF-8 as lone surrogates
    (os.fsdecode's surrogateescape): \\xff is '\\udcff'."""
    variables = spoiled(variable, "\udcff\udcfe")
    with pytest.raises(ConfigError, match=f"^{variable} is not valid UTF-8 text") as caught:
        endpoint_from_env(variables)
    assert variables[variable] not in str(caught.value)
    assert variables[variable][:10] not in str(caught.value).replace(variable, "")


@pytest.mark.parametrize("variable", VARIABLES)
@pytest.mark.parametrize(
    "middle", ["\r\nX-Injected: 1", "\n", "\x00", "\x1b[31m", "\u202e", "\u200b"]
)
def test_a_variable_with_control_or_invisible_characters_is_refused(
    variable: str, middle: str
) -> None:
    """A line break would inject a header; the others are pasting mistakes."""
    with pytest.raises(ConfigError, match=f"^{variable} holds a control or invisible"):
        endpoint_from_env(spoiled(variable, middle))


def test_a_secret_too_short_to_hide_is_refused() -> None:
    """The secret is scrubbed wherever its text occurs: a short one would mangle messages."""
    with pytest.raises(ConfigError, match=r"^STYTCH_SECRET is shorter than 16 characters"):
        endpoint_from_env(env(STYTCH_SECRET="s" * 15))
    assert endpoint_from_env(env(STYTCH_SECRET="s" * 16)).secret.get_secret_value() == "s" * 16


def test_a_secret_beyond_ascii_or_with_spaces_is_text_a_header_carries() -> None:
    secret = "secret-test-\u00e9t\u00e9 \u2603 \U0001f600"
    assert endpoint_from_env(env(STYTCH_SECRET=secret)).secret.get_secret_value() == secret
