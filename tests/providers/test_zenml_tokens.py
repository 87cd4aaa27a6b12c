"""The ZenML Pro client's bearer token across retries, against the ZenML emulator
in-process (httpx.ASGITransport) on a fake clock shared by both: a token that expires
while a request waits to be retried is renewed before the next attempt, however many
times that happens; a token refused all the same logs in again once; and a login that
fails says whether an earlier attempt of the request may have landed."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from support.clientkit import FakeClock

from policysync.emulator.server import read_model
from policysync.emulator.zenml_app import DEFAULT_API_KEY, ZenmlApi, create_app
from policysync.emulator.zenml_store import ZenmlSeed, ZenmlStore
from policysync.errors import ApiError
from policysync.models import OrgPolicy
from policysync.providers.zenml import Endpoint, ZenmlClient
from policysync.zenml_models import ZenmlPermission, ZenmlRole, core_role

ROOT = Path(__file__).parent.parent.parent
SEED_FILE = ROOT / "examples" / "zenml" / "emulator-seed.json"
GLOBEX = "9a1b2c3d-0000-4000-8000-000000000002"
TTL = 10  # seconds a token lives; every wait below is longer
WAIT = "30"  # Retry-After, seconds


DETAILS = {
    401: b'{"detail": ["AuthorizationException", "The token has expired."]}',
    429: b'{"detail": "Too many requests have been made."}',
    503: b'{"detail": "The service is temporarily unavailable."}',
}


class Unsteady:
    """In front of the emulator: answers the first `times` requests to paths ending in
    `suffix` (and method `method`) with `status` and a Retry-After of WAIT seconds, and
    refuses logins once `refuse_logins_after` have been answered; counts statuses."""

    def __init__(
        self,
        app: Any,
        method: str,
        suffix: str,
        status: int,
        times: int,
        refuse_logins_after: int | None = None,
    ) -> None:
        self.app, self.method, self.suffix = app, method, suffix
        self.status, self.left = status, times
        self.refuse_logins_after = refuse_logins_after
        self.logins = 0
        self.statuses: Counter[tuple[str, int]] = Counter()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        if path == "/auth/login":
            self.logins += 1
            if self.refuse_logins_after is not None and self.logins > self.refuse_logins_after:
                refused = b'{"detail": ["AuthorizationException", "Invalid API key."]}'
                return await self.answer(send, path, 401, refused)
        if scope["method"] == self.method and path.endswith(self.suffix) and self.left > 0:
            self.left -= 1
            return await self.answer(send, path, self.status, DETAILS[self.status])

        async def counted(message: Any) -> None:
            if message["type"] == "http.response.start":
                self.statuses[(path, message["status"])] += 1
            await send(message)

        await self.app(scope, receive, counted)

    async def answer(self, send: Any, path: str, status: int, body: bytes) -> None:
        self.statuses[(path, status)] += 1
        headers = [(b"content-type", b"application/json"), (b"retry-after", WAIT.encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def client_and_server(
    clock: FakeClock, method: str, suffix: str, status: int, times: int, **more: Any
) -> tuple[ZenmlClient, Unsteady, ZenmlStore]:
    store = ZenmlStore()
    store.load(read_model(SEED_FILE, ZenmlSeed))
    server = Unsteady(
        create_app(ZenmlApi(store, DEFAULT_API_KEY, TTL, clock=clock)),
        method, suffix, status, times, **more,
    )  # fmt: skip
    endpoint = Endpoint(SecretStr(DEFAULT_API_KEY), "http://127.0.0.1/")
    client = ZenmlClient(
        endpoint,
        transport=httpx.ASGITransport(app=server),
        sleep=clock.sleep,
        clock=clock,
    )
    return client, server, store


def test_a_token_expiring_while_a_request_waits_is_renewed_for_each_attempt() -> None:
    """Throttled three times, 30 s each, with tokens living 10 s: every attempt after a
    wait logs in again first; the server never sees an expired token."""
    clock = FakeClock()
    client, server, store = client_and_server(clock, "GET", "/roles", 429, 3)

    async def go() -> OrgPolicy:
        async with client:
            return await client.read_org(GLOBEX)

    assert asyncio.run(go()) == OrgPolicy(roles=())
    assert clock.sleeps == [30.0, 30.0, 30.0]
    assert server.logins == 4
    assert not [k for k in server.statuses if k[1] == 401], server.statuses
    store.close()


def test_a_login_failing_after_an_attempt_that_may_have_landed_says_so() -> None:
    """A role creation answered 503 (it may have been carried out), then the login the
    next attempt needs is refused: the error is the login's, and outcome_unknown."""
    clock = FakeClock()
    client, server, store = client_and_server(
        clock, "POST", "/roles", 503, 1, refuse_logins_after=1
    )
    role = ZenmlRole(
        name="Stack Readers",
        level="workspace",
        permissions=(ZenmlPermission(resource="stack", action="read"),),
    )

    async def go() -> None:
        async with client:
            await client.write_org(GLOBEX, OrgPolicy(roles=(core_role(role),)))

    with pytest.raises(ApiError) as raised:
        asyncio.run(go())
    assert raised.value.status == 401
    assert raised.value.outcome_unknown
    assert server.logins == 3  # the first; refused to the settling read and to the POST
    assert server.statuses[("/roles", 503)] == 1
    store.close()


@pytest.mark.parametrize("refusals", [1, 2])
def test_a_token_refused_logs_in_again_once_and_sends_again_once(refusals: int) -> None:
    """A 401 for a token the client still thought alive: one login more and one request
    more; a second 401 is the error."""
    clock = FakeClock()
    client, server, store = client_and_server(clock, "GET", "/roles", 401, refusals)

    async def go() -> OrgPolicy:
        async with client:
            return await client.read_org(GLOBEX)

    if refusals == 1:
        assert asyncio.run(go()) == OrgPolicy(roles=())
    else:
        with pytest.raises(ApiError) as raised:
            asyncio.run(go())
        assert (raised.value.status, raised.value.error_type) == (401, "AuthorizationException")
        assert not raised.value.outcome_unknown
    assert server.logins == 2
    assert clock.sleeps == []
    store.close()
