"""The rate limiter and the backoff, on a fake clock: exact, and instant."""

from __future__ import annotations

import asyncio
import random

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from support.clientkit import FakeClock, most_in_one_window

from policysync.providers.pacing import ARRIVAL_GUARD, Backoff, RateLimiter


def starts_of(arrivals: list[float], count: int, period: float) -> list[float]:
    """When requests arriving at `arrivals` (sorted) leave a limiter: their starts."""
    clock = FakeClock()
    limiter = RateLimiter(count, period, clock, clock.sleep)

    async def run() -> list[float]:
        starts = []
        for arrival in arrivals:
            clock.now = max(clock.now, arrival)
            await limiter.acquire()
            starts.append(clock.now)
        return starts

    return asyncio.run(run())


@example(gaps=[0.1] + [0.0] * 24, count=1)  # 1000.1 + k - (1000.1 + k - 1) < 1.0 in floats
@settings(max_examples=200, deadline=None)
@given(
    gaps=st.lists(st.floats(min_value=0, max_value=0.7), min_size=1, max_size=60),
    count=st.integers(min_value=1, max_value=8),
)
def test_sliding_log_keeps_every_window_under_the_ceiling_and_waits_no_more(
    gaps: list[float], count: int
) -> None:
    arrivals = [1000.0 + sum(gaps[: i + 1]) for i in range(len(gaps))]
    starts = starts_of(arrivals, count, 1.0)
    assert most_in_one_window(starts) <= count
    for i, (arrival, start) in enumerate(zip(arrivals, starts, strict=True)):
        # In arrival order; a request waits only when `count` started within the last
        # second, and then exactly until the oldest of them is a second old.
        assert start >= arrival
        assert i == 0 or start >= starts[i - 1]
        if start > arrival:
            assert i >= count
            assert start == pytest.approx(max(arrival, starts[i - count] + 1.0))


def test_a_burst_starts_at_once_then_one_window_later() -> None:
    starts = starts_of([1000.0] * 25, count=10, period=1.0)
    assert starts == [1000.0] * 10 + [1001.0] * 10 + [1002.0] * 5


@pytest.mark.parametrize(
    ("rate", "per_window", "period"),
    [(10, 10, 1.0), (2.5, 2, 1.0), (1, 1, 1.0), (0.5, 1, 2.0), (0.1, 1, 10.0)],
)
def test_per_second(rate: float, per_window: int, period: float) -> None:
    """floor(rate) a second from 1 up, one per 1/rate seconds below; plus the guard."""
    clock = FakeClock()
    limiter = RateLimiter.per_second(rate, clock, clock.sleep)

    async def burst() -> list[float]:
        starts = []
        for _ in range(3 * per_window):
            await limiter.acquire()
            starts.append(clock.now - 1000.0)
        return starts

    window = period + ARRIVAL_GUARD
    expected = [pytest.approx(n // per_window * window) for n in range(3 * per_window)]
    assert asyncio.run(burst()) == expected


class Highest(random.Random):
    """Draws the top of every range: the longest waits full jitter can give."""

    def uniform(self, a: float, b: float) -> float:
        return b


class Lowest(random.Random):
    def uniform(self, a: float, b: float) -> float:
        return a


def test_backoff_doubles_to_the_cap_then_gives_up() -> None:
    backoff = Backoff(attempts=7, base=0.5, cap=8.0)
    waits = [backoff.delay(n, Highest(), None) for n in range(1, 8)]
    assert waits == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, None]
    assert [backoff.delay(n, Lowest(), None) for n in range(1, 7)] == [0.0] * 6


def test_backoff_jitter_is_full_and_reproducible() -> None:
    backoff = Backoff(attempts=100)
    draws = [backoff.delay(3, random.Random(seed), None) for seed in range(200)]
    assert all(d is not None and 0 <= d <= 2.0 for d in draws)
    assert min(d for d in draws if d is not None) < 0.2
    assert max(d for d in draws if d is not None) > 1.8
    assert backoff.delay(3, random.Random(7), None) == backoff.delay(3, random.Random(7), None)


def test_retry_after_is_a_floor_up_to_what_is_left_of_the_wait() -> None:
    backoff = Backoff(max_wait=60)
    assert backoff.delay(1, Lowest(), 3.0) == 3.0
    assert backoff.delay(1, Highest(), 0.1) == 0.5
    assert backoff.delay(1, Highest(), 60.0) == 60.0
    assert backoff.delay(1, Highest(), 61.0) is None
    assert backoff.delay(2, Highest(), 21.0, waited=40.0) is None  # 20 s left
    assert backoff.delay(2, Highest(), 20.0, waited=40.0) == 20.0
    assert backoff.delay(6, Highest(), 1.0) is None  # attempts still bound it


def test_the_waits_of_a_request_are_bounded_in_all() -> None:
    backoff = Backoff(attempts=100, cap=8.0, max_wait=20.0)
    waited, waits = 0.0, []
    for failure in range(1, 100):
        wait = backoff.delay(failure, Highest(), None, waited=waited)
        if wait is None:
            break
        waits.append(wait)
        waited += wait
    assert waits == [0.5, 1.0, 2.0, 4.0, 8.0, 4.5]  # the last one cut to what was left
    assert backoff.out_of_time(None, waited)
    assert backoff.out_of_time(None, 0.0) is False
    assert Backoff(max_wait=0).delay(1, Highest(), None) is None  # 0: never wait, never retry


def test_throttles_have_a_budget_of_their_own() -> None:
    backoff = Backoff(attempts=6, throttles=20, cap=8.0)
    assert backoff.delay(6, Highest(), None) is None
    assert backoff.delay(6, Highest(), None, throttled=True) == 8.0
    assert backoff.delay(19, Highest(), 2.0, throttled=True) == 8.0
    assert backoff.delay(20, Highest(), None, throttled=True) is None
