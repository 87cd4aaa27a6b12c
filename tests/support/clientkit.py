"""What the client tests share: the demo emulator, a fake clock, a recording middleware.

The emulator is the real one, in-process through httpx.ASGITransport or over loopback
HTTP in a thread; the recorder sits in front of it and sees what a server sees.
"""

from __future__ import annotations

import asyncio
import base64
import time
import traceback
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import SecretStr
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from policysync.emulator.seed import Seed
from policysync.emulator.server import DEFAULT_PROJECT_ID, DEFAULT_SECRET
from policysync.emulator.store import Store
from policysync.providers.stytch import Endpoint

PROJECT_ID, SECRET = DEFAULT_PROJECT_ID, DEFAULT_SECRET
SEED_FILE = Path(__file__).parent.parent.parent / "policies" / "emulator-seed.json"
# Basic auth's token: the form in which the secret travels.
TOKEN = base64.b64encode(f"{PROJECT_ID}:{SECRET}".encode()).decode()


PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


def without_proxy_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """No proxy from the shell running the tests: httpx would send loopback through it."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


def demo_seed() -> Seed:
    return Seed.model_validate_json(SEED_FILE.read_bytes())


def demo_store(seed: Seed | None = None) -> Store:
    store = Store()
    store.load(seed or demo_seed())
    return store


def endpoint(base_url: str = "http://127.0.0.1/", secret: str = SECRET) -> Endpoint:
    return Endpoint(PROJECT_ID, SecretStr(secret), base_url)


def assert_secret_free(exc: BaseException) -> None:
    """Neither the secret nor its Basic token in the text, repr or traceback of `exc`."""
    texts = [str(exc), repr(exc), "".join(traceback.format_exception(exc)), repr(vars(exc))]
    for text in texts:
        assert SECRET not in text
        assert TOKEN not in text


class Counting:
    """An ASGI wrapper recording the path of every request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.paths: list[str] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.paths.append(scope["path"])
        await self.app(scope, receive, send)


class FakeClock:
    """Time that passes only when someone sleeps: waits are recorded, not waited."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


class Recorder:
    """ASGI middleware: when each request arrived, how many were in flight at most,
    from which client connections, and every status and Retry-After answered."""

    def __init__(self, app: ASGIApp, clock: Callable[[], float] = time.monotonic) -> None:
        self.app = app
        self.clock = clock
        self.arrivals: list[float] = []
        self.in_flight = self.max_in_flight = 0
        self.connections: set[object] = set()
        self.statuses: Counter[int] = Counter()
        self.retry_afters: list[float] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.arrivals.append(self.clock())
        self.connections.add(scope.get("client"))
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)

        async def recording_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.statuses[message["status"]] += 1
                headers = dict(message.get("headers", []))
                if b"retry-after" in headers:
                    self.retry_afters.append(float(headers[b"retry-after"]))
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            self.in_flight -= 1


def most_in_one_window(times: list[float], window: float = 1.0) -> int:
    """The most of `times` that fall in any half-open interval `window` long. Times a
    window apart to within a nanosecond count as a window apart: a start computed as
    `earlier + window` can come out 1e-13 short of it in floating point."""
    ordered = sorted(times)
    most, first = 0, 0
    for last, t in enumerate(ordered):
        while t - ordered[first] >= window - 1e-9:
            first += 1
        most = max(most, last - first + 1)
    return most
