"""Fault injection over real HTTP on loopback: latency, rate limit, 5xx, dropped connections.

Each test starts its own emulator (`EmulatorThread`) with the faults it needs and talks to
it with httpx, sequentially unless said otherwise, so that a fault seed gives one sequence
of outcomes. Counts and durations are kept small: the whole file runs in seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import re
import selectors
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from policysync.config import Limits
from policysync.emulator.faults import FaultInjector, Faults
from policysync.emulator.seed import Seed
from policysync.emulator.server import EmulatorThread, build
from policysync.emulator.store import Store
from policysync.models import OrgPolicy

from .conftest import PROJECT_ID, SECRET, SEED_FILE, demo_seed

ACME = "organization-test-07971b06-ac8b-4cdb-9c15-63b17e653931"
ORG_PATH = "v1/b2b/rbac/organizations/"
ERROR_KEYS = {"status_code", "request_id", "error_type", "error_message", "error_url"}
# A dropped connection, as httpx reports it: the status line may have arrived, the body never.
DROP_ERRORS = (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)

Outcome = int | str  # a status code, or "drop"


@contextlib.contextmanager
def faulty(store: Store, faults: Faults) -> Iterator[tuple[EmulatorThread, FaultInjector]]:
    app = build(store, PROJECT_ID, SECRET, Limits(), faults)
    assert isinstance(app, FaultInjector)
    with EmulatorThread(app) as running:
        yield running, app


def client(emulator: EmulatorThread) -> httpx.Client:
    return httpx.Client(base_url=emulator.url, auth=(PROJECT_ID, SECRET), timeout=10)


def call(http: httpx.Client, method: str, path: str, body: Any = None) -> Outcome:
    try:
        response = http.request(method, path, json=body)
    except DROP_ERRORS:
        return "drop"
    if response.status_code != 200:
        assert_error_body(response)
    return response.status_code


def assert_error_body(response: httpx.Response) -> dict[str, Any]:
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert body.keys() >= ERROR_KEYS
    assert body["status_code"] == response.status_code
    assert body["request_id"].startswith("request-id-test-")
    assert body["error_message"]
    assert body["error_url"].endswith(f"/{response.status_code}#{body['error_type']}")
    return body


def random_policy(rng: random.Random, seed: Seed, tag: str) -> dict[str, Any]:
    """A valid org policy of 0 to 3 roles over the seed's project resources."""
    resources = seed.policy.resources
    roles = []
    for n in range(rng.randint(0, 3)):
        permissions = []
        for resource in rng.sample(resources, rng.randint(1, 2)):
            if rng.random() < 0.2:
                actions = ["*"]
            else:
                actions = rng.sample(resource.actions, rng.randint(1, len(resource.actions)))
            permissions.append({"resource_id": resource.resource_id, "actions": actions})
        role = {"role_id": f"{tag}-role-{n}", "description": f"{tag} {n}"}
        roles.append({**role, "permissions": permissions})
    return {"roles": roles}


def org_policy_of(store: Store, organization_id: str) -> OrgPolicy:
    (org,) = (o for o in store.dump().organizations if o.organization_id == organization_id)
    return org.org_policy


# Latency ------------------------------------------------------------------------------

# Above the configured latency, what a loaded 2-core machine may add (none is allowed below).
SLACK_MEDIAN, SLACK_MAX = 0.030, 0.250


def timed_gets(emulator: EmulatorThread, count: int) -> list[float]:
    times = []
    with client(emulator) as http:
        http.get(ORG_PATH + "acme").raise_for_status()  # connect outside the timings
        for _ in range(count):
            start = time.perf_counter()
            response = http.get(ORG_PATH + "acme")
            times.append(time.perf_counter() - start)
            assert response.status_code == 200
    return times


def test_fixed_latency(store: Store) -> None:
    with faulty(store, Faults(latency_ms=(50, 50), seed=1)) as (emulator, _):
        times = timed_gets(emulator, 15)
    assert min(times) >= 0.050
    assert statistics.median(times) <= 0.050 + SLACK_MEDIAN
    assert max(times) <= 0.050 + SLACK_MAX


def test_latency_range(store: Store) -> None:
    with faulty(store, Faults(latency_ms=(20, 60), seed=2)) as (emulator, _):
        times = timed_gets(emulator, 30)
    assert min(times) >= 0.020
    assert max(times) <= 0.060 + SLACK_MAX
    # Drawn across the range, not pinned to one end of it.
    assert min(times) < 0.035
    assert max(times) > 0.045


def test_latency_counts_from_arrival_with_the_work_done_meanwhile() -> None:
    """An app taking 40 ms behind 60 ms of latency answers at ~60 ms, not 100: latency is
    arrival to answer, as N x latency / parallelism, the bound benchmarks use, assumes."""

    async def slow_app(scope: Any, receive: Any, send: Any) -> None:
        await asyncio.sleep(0.040)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    async def timed() -> list[float]:
        app = FaultInjector(slow_app, Faults(latency_ms=(60, 60), seed=3))
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://emulator") as http:
            times = []
            for _ in range(5):
                start = time.perf_counter()
                (await http.get(ORG_PATH + "acme")).raise_for_status()
                times.append(time.perf_counter() - start)
            return times

    times = asyncio.run(timed())
    assert min(times) >= 0.060
    assert statistics.median(times) < 0.090  # slept before the work: >= 0.100


# Rate limit ---------------------------------------------------------------------------


def test_rate_limit(store: Store) -> None:
    rate, duration = 20, 2.5
    accepted: list[tuple[float, float]] = []  # (sent, received) of every 200
    limited = 0
    with faulty(store, Faults(rate_limit=rate)) as (emulator, injector), client(emulator) as http:
        http.get(ORG_PATH + "acme")  # connect; counted by the server, not here
        time.sleep(1.0 - time.time() % 1.0)  # a fresh one-second window, empty of it
        first = time.time()
        while time.time() - first < duration:
            sent = time.time()
            response = http.get(ORG_PATH + "acme")
            received = time.time()
            if response.status_code == 200:
                accepted.append((sent, received))
                continue
            assert response.status_code == 429
            body = assert_error_body(response)
            assert body["error_type"] == "too_many_requests"
            retry_after = response.headers["retry-after"]
            assert retry_after.isdigit()
            assert int(retry_after) >= 1
            limited += 1
        last = time.time()
        assert injector.stats["429"] == limited
    # The server counts per wall-clock second; a 200 whose whole round trip fell inside
    # one second was counted in that second's window.
    per_window = Counter(int(s) for s, r in accepted if int(s) == int(r))
    assert per_window, "no request was accepted"
    assert max(per_window.values()) <= rate
    full_windows = range(int(first) + 1, int(last))  # seconds the run covered entirely
    assert full_windows
    for window in full_windows:
        # Fired back to back: a full window accepts `rate`, one of which may straddle
        # its start and so be counted in no window here.
        assert per_window[window] >= rate - 1, (window, per_window)
    touched = int(last) - int(first) + 1
    assert rate * len(full_windows) <= len(accepted) <= rate * touched
    assert limited > len(accepted)  # fired much faster than the limit


def test_rate_limited_put_is_not_applied(store: Store) -> None:
    seed = demo_seed()
    policy = random_policy(random.Random(5), seed, "limited")
    before = store.dump()
    with faulty(store, Faults(rate_limit=1)) as (emulator, _), client(emulator) as http:
        if time.time() % 1.0 > 0.7:
            time.sleep(1.0 - time.time() % 1.0)
        assert http.get(ORG_PATH + "acme").status_code == 200  # uses the window's one request
        response = http.put(ORG_PATH + "acme", json={"org_policy": policy})
        assert response.status_code == 429
    assert store.dump() == before


# Error rate ---------------------------------------------------------------------------


def outcomes(store: Store, faults: Faults, count: int) -> list[Outcome]:
    """The outcomes of `count` sequential GETs on a fresh emulator."""
    with faulty(store, faults) as (emulator, _), client(emulator) as http:
        return [call(http, "GET", ORG_PATH + "acme") for _ in range(count)]


def test_error_rate(store: Store) -> None:
    count, rate = 300, 0.3
    faults = Faults(error_rate=rate, seed=1234)
    seen = outcomes(store, faults, count)
    counts = Counter(seen)
    assert set(counts) == {200, 500, 503}
    assert abs((counts[500] + counts[503]) / count - rate) < 0.08, counts
    # Reproducible: the same seed, the same sequence; another seed, another one.
    assert outcomes(store, faults, count) == seen
    assert outcomes(store, Faults(error_rate=rate, seed=4321), count) != seen


def test_error_bodies(store: Store) -> None:
    with faulty(store, Faults(error_rate=1.0, seed=3)) as (emulator, _), client(emulator) as http:
        kinds = set()
        for _ in range(20):
            response = http.get(ORG_PATH + "acme")
            kinds.add((response.status_code, assert_error_body(response)["error_type"]))
    assert kinds == {(500, "internal_server_error"), (503, "service_unavailable")}


def test_failed_put_is_not_applied(store: Store) -> None:
    seed, before = demo_seed(), store.dump()
    with faulty(store, Faults(error_rate=1.0, seed=4)) as (emulator, _), client(emulator) as http:
        for i in range(10):
            policy = random_policy(random.Random(i), seed, f"failed{i}")
            assert call(http, "PUT", ORG_PATH + "acme", {"org_policy": policy}) in (500, 503)
    assert store.dump() == before


def test_mixed_faults_are_reproducible(store: Store) -> None:
    faults = Faults(latency_ms=(0, 2), error_rate=0.2, drop_rate=0.15, seed=99)
    seen = outcomes(store, faults, 120)
    assert {200, "drop"} <= set(seen)
    assert {500, 503} & set(seen)
    assert outcomes(store, faults, 120) == seen


def test_a_methods_fates_do_not_depend_on_other_methods(store: Store) -> None:
    """The n-th PUT meets the same fate whether or not GETs came between: concurrent
    clients interleave reads and writes differently in every run."""
    seed = demo_seed()
    faults = Faults(error_rate=0.3, drop_rate=0.2, seed=12)

    def puts(reads_between: int) -> list[Outcome]:
        seen = []
        with faulty(store, faults) as (emulator, _), client(emulator) as http:
            for i in range(40):
                for _ in range(reads_between):
                    call(http, "GET", ORG_PATH + "acme")
                policy = random_policy(random.Random(i), seed, f"fate{i}")
                seen.append(call(http, "PUT", ORG_PATH + "acme", {"org_policy": policy}))
        return seen

    alone = puts(0)
    assert {200, "drop"} <= set(alone)
    assert {500, 503} & set(alone)
    assert puts(3) == alone


# Dropped connections ------------------------------------------------------------------


def test_dropped_connections_surface_as_transport_errors(store: Store) -> None:
    with faulty(store, Faults(drop_rate=1.0, seed=5)) as (emulator, injector):
        with client(emulator) as http:
            for _ in range(6):
                with pytest.raises(DROP_ERRORS):
                    http.get(ORG_PATH + "acme")
        assert injector.stats["dropped_before"] + injector.stats["dropped_after"] == 6


def test_dropped_put_applied_after_not_before(store: Store) -> None:
    """A PUT dropped after handling was applied, one dropped before was not; nothing between."""
    seed = demo_seed()
    cases: Counter[str] = Counter()
    faults = Faults(drop_rate=1.0, seed=6)
    with faulty(store, faults) as (emulator, injector), client(emulator) as http:
        for i in range(40):
            before = store.dump()
            previous = org_policy_of(store, ACME)
            policy = random_policy(random.Random(i), seed, f"drop{i}")
            stats = dict(injector.stats)
            assert call(http, "PUT", ORG_PATH + "acme", {"org_policy": policy}) == "drop"
            after = injector.stats["dropped_after"] > stats["dropped_after"]
            case = "after" if after else "before"
            assert injector.stats[f"dropped_{case}"] == stats[f"dropped_{case}"] + 1
            cases[case] += 1
            # Read back through the admin path, which is exempt from faults.
            state = Seed.model_validate_json(http.get("_emulator/state").content)
            assert state == store.dump()
            if after:
                assert org_policy_of(store, ACME) == OrgPolicy.model_validate(policy)
            else:
                assert org_policy_of(store, ACME) == previous
                assert state == before
            # Only that organization can have changed, and only as a whole.
            assert [o for o in state.organizations if o.organization_id != ACME] == [
                o for o in before.organizations if o.organization_id != ACME
            ]
            if cases["after"] >= 3 and cases["before"] >= 3:
                break
    assert cases["after"] >= 3
    assert cases["before"] >= 3


# A faulty run ends where a clean one does ---------------------------------------------


def put_with_retries(http: httpx.Client, path: str, body: dict[str, Any]) -> int:
    """PUT until it succeeds, as a client must: back off on 429, retry 5xx and drops."""
    for attempts in range(1, 41):
        try:
            response = http.put(path, json=body)
        except httpx.TransportError:
            continue
        if response.status_code == 429:
            time.sleep(int(response.headers["retry-after"]))
            continue
        if response.status_code >= 500:
            continue
        assert response.status_code == 200, response.text
        return attempts
    raise AssertionError(f"PUT {path} still failing after 40 attempts")


def test_faulty_run_ends_in_the_clean_state() -> None:
    seed = demo_seed()
    rng = random.Random(2024)
    puts = [
        (
            ORG_PATH + rng.choice(seed.organizations).organization_slug,
            {"org_policy": random_policy(rng, seed, f"p{i}")},
        )
        for i in range(100)
    ]
    faults = Faults(rate_limit=60, error_rate=0.3, drop_rate=0.1, seed=7)
    states = []
    for fault in (None, faults):
        store = Store()
        store.load(seed)
        app = build(store, PROJECT_ID, SECRET, Limits(), fault)
        with EmulatorThread(app) as emulator, client(emulator) as http:
            attempts = sum(put_with_retries(http, path, body) for path, body in puts)
        if isinstance(app, FaultInjector):
            assert attempts > len(puts)
            assert all(app.stats[k] > 0 for k in ("429", "5xx", "dropped_before", "dropped_after"))
        else:
            assert attempts == len(puts)
        states.append(store.dump())
        store.close()
    clean, faulty_state = states
    assert faulty_state == clean
    assert clean.organizations != tuple(sorted(seed.organizations, key=lambda o: o.organization_id))


# Admin path ---------------------------------------------------------------------------


def test_admin_path_is_exempt(store: Store) -> None:
    faults = Faults(latency_ms=(300, 300), rate_limit=1, error_rate=0.5, drop_rate=1.0, seed=8)
    with faulty(store, faults) as (emulator, injector), client(emulator) as http:
        for _ in range(15):
            start = time.perf_counter()
            response = http.get("_emulator/state")
            assert time.perf_counter() - start < 0.3
            assert response.status_code == 200
            assert Seed.model_validate_json(response.content) == store.dump()
        # The API paths of the same server are faulty: slow, and never a success.
        start = time.perf_counter()
        assert call(http, "GET", ORG_PATH + "acme") in (429, 500, 503, "drop")
        assert time.perf_counter() - start >= 0.3
        assert sum(injector.stats.values()) == 1


# Logs ---------------------------------------------------------------------------------


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_injected_drops_log_no_traceback(store: Store) -> None:
    handler = _Records()
    loggers = [logging.getLogger(name) for name in ("uvicorn", "uvicorn.error", "uvicorn.asgi")]
    with faulty(store, Faults(drop_rate=1.0, seed=9)) as (emulator, injector):
        for logger in loggers:
            logger.addHandler(handler)
        try:
            with client(emulator) as http:
                for _ in range(5):
                    assert call(http, "GET", ORG_PATH + "acme") == "drop"
                    assert call(http, "PUT", ORG_PATH + "acme", {"org_policy": {}}) == "drop"
        finally:
            for logger in loggers:
                logger.removeHandler(handler)
        assert injector.stats["dropped_before"] > 0
        assert injector.stats["dropped_after"] > 0
    problems = [r for r in handler.records if r.levelno >= logging.WARNING or r.exc_info]
    assert problems == []


def first_line(process: subprocess.Popen[str], timeout: float) -> str:
    """The first line the process prints, waiting at most `timeout` seconds for it."""
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        assert selector.select(timeout), f"nothing printed within {timeout} s"
    return process.stdout.readline()


def test_cli_emulator_stderr_stays_quiet_on_drops(tmp_path: Path) -> None:
    """The foreground emulator, as a user runs it: no traceback on stderr for injected drops."""
    command = [sys.executable, "-m", "policysync", "emulator", "--port", "0"]
    command += ["--seed", str(SEED_FILE), "--drop-rate", "0.5", "--fault-seed", "10"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("STYTCH_")}
    stderr_file = tmp_path / "stderr"
    with stderr_file.open("w") as stderr:
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=stderr, env=env, text=True
        )
    try:
        match = re.search(r" at (http://127\.0\.0\.1:\d+/)", first_line(process, 30))
        assert match
        with httpx.Client(base_url=match[1], auth=(PROJECT_ID, SECRET), timeout=10) as http:
            seen = Counter(call(http, "GET", ORG_PATH + "acme") for _ in range(20))
        assert seen["drop"] > 0
        assert seen[200] > 0
    finally:
        process.terminate()
        try:
            process.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
    logged = stderr_file.read_text()
    assert "Traceback" not in logged
    assert "Exception in ASGI application" not in logged
    assert "DroppedConnection" not in logged
