"""The proxy of the base URL, as the environment names it (the end-to-end test with a
proxy on loopback is test_proxy.py)."""

from __future__ import annotations

import asyncio
import socket
import warnings
from pathlib import Path

import pytest
from support.clirun import run

from policysync.errors import ConfigError, TransportError
from policysync.providers.http import HttpClient, Site, environment_proxy
from policysync.providers.pacing import Backoff

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


@pytest.mark.parametrize(
    ("proxy", "shown"),
    [
        ("ftp://user:hunter2@proxy:21", "ftp://proxy:21"),  # a scheme httpx has no proxy for
        ("socks5://user:hunter2@proxy:1080", "socks5://proxy:1080"),  # no socksio installed
        (":::", "(as set)"),
    ],
)
def test_a_proxy_httpx_cannot_use_is_a_config_error_without_its_password(
    monkeypatch: pytest.MonkeyPatch, proxy: str, shown: str
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", proxy)
    client = HttpClient("https://api.example.com/", {}, str, Site("Example", "EXAMPLE_URL"))
    with pytest.raises(ConfigError, match="cannot be used") as caught:
        asyncio.run(client.__aenter__())
    assert f"the proxy {shown} " in str(caught.value)
    assert "hunter2" not in str(caught.value)


def test_a_ca_bundle_that_cannot_be_loaded_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "missing.pem"))
    client = HttpClient("https://api.example.com/", {}, str, Site("Example", "EXAMPLE_URL"))
    with pytest.raises(ConfigError, match=r"SSL_CERT_FILE=.*missing\.pem"):
        asyncio.run(client.__aenter__())


def test_the_command_says_so_and_nothing_else(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], workdir: Path
) -> None:
    monkeypatch.setenv("HTTP_PROXY", "ftp://proxy:21")
    monkeypatch.setenv("STYTCH_PROJECT_ID", "project-test-11111111-1111-4111-8111-111111111111")
    monkeypatch.setenv("STYTCH_SECRET", "secret-test-proxy")
    monkeypatch.setenv("STYTCH_BASE_URL", "http://127.0.0.1:9/")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "coroutine ... was never awaited" among them
        code, out, err = run(["plan"], capsys)
    assert (code, out) == (1, "")
    assert err.startswith("error: the proxy ftp://proxy:21 ")
    assert "Traceback" not in err


def test_a_proxy_that_does_not_answer_is_named_in_the_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with socket.socket() as unused:  # a port nothing listens on once closed
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    monkeypatch.setenv("HTTP_PROXY", f"http://user:hunter2@127.0.0.1:{port}")
    site = Site("Example", "EXAMPLE_URL")
    client = HttpClient("http://127.0.0.1:9/", {}, str, site, backoff=Backoff(attempts=1))

    async def send() -> None:
        async with client:
            await client.send("GET", "/anything")

    with pytest.raises(TransportError) as caught:
        asyncio.run(send())
    message = str(caught.value)
    assert f"through the proxy http://127.0.0.1:{port} " in message
    assert "HTTPS_PROXY, HTTP_PROXY, NO_PROXY" in message
    assert "hunter2" not in message
