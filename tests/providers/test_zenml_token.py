"""The bearer token ZenML Pro's login answers, believed only when it can be sent: a
token that is not visible ASCII, or a lifetime that is negative or not a number, is an
unreadable answer (never shown), not a header to inject or a clock to break."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from pydantic import SecretStr

from policysync.errors import ApiError
from policysync.providers.zenml import Endpoint, ZenmlClient

KEY = "ZENPROKEY_token-test-key-0123456789"
ORG = "9a1b2c3d-0000-4000-8000-000000000001"


def client(login: dict[str, object], seen: list[str]) -> ZenmlClient:
    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(f"{request.method} {request.url.path}")
        if request.url.path == "/auth/login":
            return httpx.Response(200, json=login)
        return httpx.Response(200, json=[])

    endpoint = Endpoint(SecretStr(KEY), "http://127.0.0.1:9/")
    return ZenmlClient(endpoint, transport=httpx.MockTransport(answer))


async def read_twice(zenml: ZenmlClient) -> None:
    async with zenml:
        await zenml.read_org(ORG)
        await zenml.read_org(ORG)


@pytest.mark.parametrize(
    "login",
    [
        {"access_token": "tok\r\nX-Injected: yes-0123456789"},
        {"access_token": "tok with spaces 0123456789"},
        {"access_token": "tok-0123456789abcdef", "expires_in": -5},
        {"access_token": "tok-0123456789abcdef", "expires_in": "soon"},
        {"token": "tok-0123456789abcdef"},
    ],
    ids=["crlf", "spaces", "negative", "not-a-number", "missing"],
)
def test_a_login_answer_that_cannot_be_used_is_an_error_not_a_header(
    login: dict[str, object],
) -> None:
    seen: list[str] = []
    with pytest.raises(ApiError) as caught:
        asyncio.run(read_twice(client(login, seen)))
    assert caught.value.error_type == "unexpected_response"
    assert "a 200 answer policysync cannot read" in str(caught.value)
    token = str(login.get("access_token", login.get("token")))
    assert token not in str(caught.value)
    assert KEY not in str(caught.value)
    assert seen == ["POST /auth/login"]  # nothing was sent with it


def test_a_token_without_a_lifetime_is_kept_and_reused() -> None:
    seen: list[str] = []
    asyncio.run(
        read_twice(client({"access_token": "tok-0123456789abcdef", "expires_in": None}, seen))
    )
    assert seen.count("POST /auth/login") == 1
    assert seen.count(f"GET /organizations/{ORG}/roles") == 2


def test_the_login_sends_the_key_as_a_form_and_never_as_json() -> None:
    bodies: list[tuple[str, bytes]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/auth/login":
            bodies.append((request.headers["content-type"], request.content))
            return httpx.Response(200, json={"access_token": "tok-0123456789abcdef"})
        assert request.headers["authorization"] == "Bearer tok-0123456789abcdef"
        return httpx.Response(200, json=[])

    zenml = ZenmlClient(
        Endpoint(SecretStr(KEY), "http://127.0.0.1:9/"), transport=httpx.MockTransport(answer)
    )
    asyncio.run(read_twice(zenml))
    assert bodies == [("application/x-www-form-urlencoded", f"password={KEY}".encode())]
    assert KEY not in repr(vars(zenml))  # the key is held as a SecretStr only
