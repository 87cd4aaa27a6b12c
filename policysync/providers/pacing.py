"""Pacing requests to a provider: a ceiling on how many start per second, and the
waits between attempts of a request that failed in a way worth retrying.

Both take their clock, sleep and random source as arguments, so that tests run them on
a fake clock instead of waiting.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from policysync.config import MAX_WAIT_SECONDS

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

# Requests start here but are counted where they arrive; arrival delays vary by a few
# milliseconds on loopback (more across the internet). Widening the window by this much
# keeps a server that counts per second from seeing two of our windows' worth in one of
# its own, for about 5% of throughput.
ARRIVAL_GUARD = 0.05


class RateLimiter:
    """At most `count` requests start in any window of `period` seconds.

    The algorithm is a sliding log: remember when the last `count` requests started; a
    new one may start only once the oldest of those is `period` old. Whatever window a
    server counts in (aligned to the second or sliding), it can never hold more than
    `count` starts. A token bucket would not do: a full bucket of C tokens refilled at
    R per second lets C + R requests start within one second. Waiters queue on a lock,
    so they start in arrival order and one sleeper at a time owns the clock.
    """

    def __init__(self, count: int, period: float, clock: Clock, sleep: Sleep) -> None:
        self._starts: deque[float] = deque(maxlen=count)
        self._period = period
        self._clock = clock
        self._sleep = sleep
        self._lock = asyncio.Lock()

    @classmethod
    def per_second(cls, rate: float, clock: Clock, sleep: Sleep) -> RateLimiter:
        """A ceiling of `rate` requests per second: floor(rate) per second from 1 up
        (no second may hold a fraction of a request), one per 1/rate seconds below 1."""
        count = max(1, math.floor(rate))
        return cls(count, max(1.0, 1.0 / rate) + ARRIVAL_GUARD, clock, sleep)

    async def acquire(self) -> None:
        """Return at the moment the caller may start its request."""
        async with self._lock:
            if len(self._starts) == self._starts.maxlen:
                # A loop: an event loop may wake a sleeper up to its clock resolution early.
                while (wait := self._starts[0] + self._period - self._clock()) > 0:
                    await self._sleep(wait)
            self._starts.append(self._clock())


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with full jitter: before retry n, a wait drawn uniformly from
    [0, min(cap, base * 2**(n-1))]. Full jitter spreads the retries of many concurrent
    requests that failed together, so they do not come back together
    (https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/).

    With the defaults a request that fails (5xx, a lost connection, a timeout) is tried 6
    times over at most 0.5+1+2+4+8 = 15.5 s of waiting: long enough to ride out a brief
    outage, short enough for a CI job. A 429 is no failure of the request: the server
    turned it away unread, asking for patience. Those are counted apart, up to
    `throttles` (20), so that a busy rate limit, which can answer one request 429 many
    times over while others go through, does not fail organizations that a little
    patience would have written. A server's Retry-After is a floor on the wait.

    Whatever the counts, one request waits at most `max_wait` seconds in all (the
    setting `requests.max_wait_seconds`): a wait is cut to what is left of it, and a
    Retry-After asking for more than is left ends the retries at once (waiting past it
    would only delay the report of the organization as failed).
    """

    attempts: int = 6
    throttles: int = 20
    base: float = 0.5
    cap: float = 8.0
    max_wait: float = MAX_WAIT_SECONDS

    def delay(
        self,
        failures: int,
        rng: random.Random,
        retry_after: float | None,
        throttled: bool = False,
        waited: float = 0.0,
    ) -> float | None:
        """Seconds to wait after the `failures`-th failed attempt (or, `throttled`, the
        `failures`-th 429 answer) of a request that has waited `waited` seconds so far;
        None: give up."""
        if failures >= (self.throttles if throttled else self.attempts):
            return None
        if self.out_of_time(retry_after, waited):
            return None
        ceiling = min(self.cap, self.base * 2.0 ** min(failures - 1, 64))
        wait = max(rng.uniform(0.0, ceiling), retry_after or 0.0)
        return min(wait, self.max_wait - waited)

    def out_of_time(self, retry_after: float | None, waited: float) -> bool:
        """Whether a request that has waited `waited` seconds may wait no more: nothing
        is left of `max_wait`, or less than `retry_after` asks for."""
        left = self.max_wait - waited
        return left <= 0 or (retry_after is not None and retry_after > left)
