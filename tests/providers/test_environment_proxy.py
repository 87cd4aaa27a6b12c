"""The proxy of the base URL, as the environment names it (the end-to-end test with a
proxy on loopback is test_proxy.py)."""

from __future__ import annotations

import pytest

from policysync.providers.http import environment_proxy

PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


@pytest.fixture(autouse=True)
def no_proxy_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


def test_none_without_variables() -> None:
    assert environment_proxy("https://api.stytch.com/") is None


def test_the_variable_of_the_scheme_then_all_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://tls-proxy:3128")
    monkeypatch.setenv("ALL_PROXY", "http://any-proxy:3128")
    assert environment_proxy("https://api.stytch.com/") == "http://tls-proxy:3128"
    assert environment_proxy("http://127.0.0.1:8787/") == "http://any-proxy:3128"


def test_a_proxy_without_scheme_is_http(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("https_proxy", "proxy.example:3128")
    assert environment_proxy("https://api.stytch.com/") == "http://proxy.example:3128"


@pytest.mark.parametrize("no_proxy", ["stytch.com", ".stytch.com", "api.stytch.com", "*"])
def test_no_proxy_covers_the_host(monkeypatch: pytest.MonkeyPatch, no_proxy: str) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy:3128")
    monkeypatch.setenv("NO_PROXY", f"localhost,{no_proxy}")
    assert environment_proxy("https://api.stytch.com/") is None
    assert environment_proxy("https://api.example.com/") == (
        None if no_proxy == "*" else "http://proxy:3128"
    )
