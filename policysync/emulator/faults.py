"""Fault injection: the emulator misbehaving on purpose, reproducibly.

An ASGI middleware in front of the API. In order: latency; a requests-per-second limit
answering 429 `too_many_requests` with `Retry-After`; a fraction of 500/503 answers; a
fraction of dropped connections (before the request is handled, or after it was handled
and its response is lost: the case a client cannot tell from the outside). Faults never
corrupt state: an injected error happens instead of the handler, never halfway through
it. Admin paths (`/_emulator/`) are exempt.

Reproducible means per HTTP method: the n-th POST (PUT, ...) the injector lets through
the rate limit meets the same fate in every run with the same seed, however concurrent
clients interleave it with other methods' requests. One stream for all requests made a
write's fate depend on how many reads happened to arrive first.

Latency is the time from a request's arrival to its answer: the answer (an error, or a
dropped connection, too) is held until then, and the emulator's own work on the request
is done meanwhile, as a server answering in that time would. Slept before the work, it
came out longer than asked by the emulator's own time, which no client can win back
(benchmarks compare with N x latency / parallelism): 16 reads in flight of "20 ms" took
24.7 ms each on a 2-core machine that way, 22.6 ms this way (bench/plan_bench.py's
bare-socket floor; the rest is the event loop's timer and uvicorn's writing).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("policysync.emulator")


@dataclass(frozen=True)
class Faults:
    latency_ms: tuple[float, float] = (0.0, 0.0)  # a fixed value is (n, n)
    rate_limit: float | None = None  # requests per second, per one-second window
    error_rate: float = 0.0  # fraction answered 500 or 503
    drop_rate: float = 0.0  # fraction of connections dropped
    seed: int | None = None

    @property
    def any(self) -> bool:
        return (
            self.latency_ms != (0.0, 0.0)
            or self.rate_limit is not None
            or self.error_rate > 0
            or self.drop_rate > 0
        )


class DroppedConnection(Exception):
    """Raised after a response was started, so that the server closes the connection."""


# The body of an injected error: (status, error type, message) -> bytes. The API's own
# error shape: Stytch's by default, FastAPI's for the ZenML Pro emulator.
ErrorBody = Callable[[int, str, str], bytes]


def stytch_error_body(status: int, error_type: str, message: str) -> bytes:
    return json.dumps(
        {
            "status_code": status,
            "request_id": f"request-id-test-{uuid.uuid4()}",
            "error_type": error_type,
            "error_message": message,
            "error_url": f"https://stytch.com/docs/api/errors/{status}#{error_type}",
        }
    ).encode()


class FaultInjector:
    def __init__(
        self, app: ASGIApp, faults: Faults, error_body: ErrorBody = stytch_error_body
    ) -> None:
        self.app = app
        self.faults = faults
        self.error_body = error_body
        self.random = random.Random(faults.seed)  # latency
        self._fates: dict[str, random.Random] = {}  # errors and drops, by method
        self._window = -1
        self._count = 0
        self.stats = {"429": 0, "5xx": 0, "dropped_before": 0, "dropped_after": 0}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/_emulator/"):
            await self.app(scope, receive, send)
            return
        f = self.faults
        low, high = f.latency_ms
        if high > 0:
            wait = self.random.uniform(low, high) / 1000
            send = _held(send, asyncio.get_running_loop().time() + wait)
        if f.rate_limit is not None:
            now = time.time()
            if int(now) != self._window:
                self._window, self._count = int(now), 0
            if self._count >= f.rate_limit:
                self.stats["429"] += 1
                retry = str(max(1, math.ceil(self._window + 1 - now)))
                await self._answer(send, 429, "too_many_requests", {"retry-after": retry})
                return
            self._count += 1
        rnd = self._fate(scope["method"])
        if f.error_rate and rnd.random() < f.error_rate:
            self.stats["5xx"] += 1
            status = rnd.choice((500, 503))
            kind = "internal_server_error" if status == 500 else "service_unavailable"
            await self._answer(send, status, kind)
            return
        if f.drop_rate and rnd.random() < f.drop_rate:
            after = rnd.random() < 0.5
            self.stats["dropped_after" if after else "dropped_before"] += 1
            if after:  # handle the request, lose the response
                await self.app(scope, receive, _discard)
            log.info(
                "fault: connection dropped %s handling %s",
                "after" if after else "before",
                scope["path"],
            )
            await send({"type": "http.response.start", "status": 200, "headers": []})
            raise DroppedConnection
        await self.app(scope, receive, send)

    def _fate(self, method: str) -> random.Random:
        """The stream deciding `method`'s requests' errors and drops."""
        if method not in self._fates:
            seed = None if self.faults.seed is None else f"{self.faults.seed}/{method}"
            self._fates[method] = random.Random(seed)
        return self._fates[method]

    async def _answer(
        self, send: Send, status: int, error_type: str, headers: dict[str, str] | None = None
    ) -> None:
        body = self.error_body(status, error_type, _MESSAGES[error_type])
        raw_headers = [
            (b"content-type", b"application/json"),
            (b"content-length", b"%d" % len(body)),
        ]
        raw_headers += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
        await send({"type": "http.response.start", "status": status, "headers": raw_headers})
        await send({"type": "http.response.body", "body": body})


_MESSAGES = {
    "too_many_requests": "Too many requests have been made.",
    "internal_server_error": "Oops, something seems to have gone wrong.",
    "service_unavailable": "The service is temporarily unavailable.",
}


def _held(send: Send, deadline: float) -> Send:
    """`send`, holding the answer back until `deadline` (the event loop's clock)."""

    async def held(message: Message) -> None:
        if message["type"] == "http.response.start":
            wait = deadline - asyncio.get_running_loop().time()
            if wait > 0:
                await asyncio.sleep(wait)
        await send(message)

    return held


async def _discard(message: Message) -> None:
    return None
