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
