"""Benchmark behind `make bench`: how many GETs per second `policysync emulator` serves.

The plan and apply benchmarks keep up to 64 requests in flight against an emulator that
answers each 60 ms after it arrived: about 1,070 requests per second, which the emulator
must serve with room to spare, on the same two cores as the client, for the bound to be
reachable. This benchmark seeds it with N generated organizations (2,000 by default),
starts it as a process of its own without latency or faults, and loads
GET /v1/b2b/rbac/organizations/{id} from separate client processes (no GIL shared with
the server), each holding keep-alive connections with one request in flight on each (a
closed loop), for a fixed duration after a warm-up. Prints requests/s, latency p50/p99,
the error count, and the CPU time the server and the clients spent per request. Then
the load generator's own ceiling: the same load against a trivial HTTP server (a fixed
answer of the same size), so that a miss can be told apart from a slow client.

    .venv/bin/python bench/emulator_bench.py [--orgs 2000] [--duration 10] [--json FILE]
    .venv/bin/python bench/emulator_bench.py --profile emulator.prof   # server under cProfile

Target: at least 2,000 GETs/s, and no errors. Exit status 0 when the target is met, 1 when
it is missed, 2 when the benchmark itself could not run.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import multiprocessing
import multiprocessing.connection
import os
import random
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import rig

TARGET_RPS = 2_000.0
ORG_PATH = "/v1/b2b/rbac/organizations/"


# --- the trivial server ------------------------------------------------------------


class _Trivial(asyncio.Protocol):
    """Answers every request on the connection with the same bytes."""

    def __init__(self, answer: bytes) -> None:
        self.answer = answer
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            self.buffer = self.buffer[end + 4 :]
            assert self.transport is not None
            self.transport.write(self.answer)


def trivial_server(body_size: int, ready: multiprocessing.connection.Connection) -> None:
    """A child process: an HTTP/1.1 server answering a fixed 200 of `body_size` bytes."""
    body = b'{"status_code":200,"org_policy":{"roles":[]},"pad":"' + b"x" * body_size + b'"}'
    answer = (
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
        b"content-length: %d\r\n\r\n%s" % (len(body), body)
    )

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: _Trivial(answer), "127.0.0.1", 0)
        ready.send(server.sockets[0].getsockname()[1])
        await asyncio.Event().wait()

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    asyncio.run(serve())


# --- the load generator -----------------------------------------------------------------


@dataclass
class Plan:
    port: int
    paths: list[str]
    connections: int
    start: float  # time.monotonic() of the first request
    measure_from: float  # end of the warm-up
    end: float
    seed: int
    authorization: str  # the Authorization header's value


@dataclass
class WorkerResult:
    latencies: list[float] = field(default_factory=list)  # seconds, completed in the window
    statuses: dict[int, int] = field(default_factory=dict)
    connection_errors: int = 0
    cpu_in_window: float = 0.0
    requests_total: int = 0


class _Connection(asyncio.Protocol):
    """One keep-alive connection with one request in flight at a time."""

    def __init__(self, worker: _Worker) -> None:
        self.worker = worker
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.sent_at = 0.0
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def send(self) -> None:
        assert self.transport is not None
        now = time.monotonic()
        if now >= self.worker.plan.end:
            self.transport.close()
            return
        self.sent_at = now
        self.transport.write(self.worker.next_request())

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        head_end = self.buffer.find(b"\r\n\r\n")
        if head_end < 0:
            return
        head = bytes(self.buffer[:head_end]).lower() + b"\r\n"
        at = head.find(b"\r\ncontent-length:")
        if at < 0:  # not what this client can read: counted as an error, connection closed
            self.worker.record(self.sent_at, time.monotonic(), 0)
            assert self.transport is not None
            self.transport.close()
            return
        total = head_end + 4 + int(head[at + 17 : head.find(b"\r\n", at + 2)])
        if len(self.buffer) < total:
            return
        status = int(self.buffer[9:12])
        del self.buffer[:total]
        self.worker.record(self.sent_at, time.monotonic(), status)
        self.send()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.lost.done():
            self.lost.set_result(None)


class _Worker:
    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.result = WorkerResult()
        rng = random.Random(plan.seed)
        host = f"127.0.0.1:{plan.port}"
        requests = [
            (
                f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: {plan.authorization}\r\n"
                "User-Agent: policysync-emulator-bench\r\n\r\n"
            ).encode()
            for path in plan.paths
        ]
        rng.shuffle(requests)
        self.requests = requests
        self.next = 0

    def next_request(self) -> bytes:
        self.next = (self.next + 1) % len(self.requests)
        return self.requests[self.next]

    def record(self, sent: float, received: float, status: int) -> None:
        self.result.requests_total += 1
        if self.plan.measure_from <= received < self.plan.end:
            self.result.latencies.append(received - sent)
            self.result.statuses[status] = self.result.statuses.get(status, 0) + 1

    async def connection(self) -> None:
        loop = asyncio.get_running_loop()
        while time.monotonic() < self.plan.end:
            try:
                _, conn = await loop.create_connection(
                    lambda: _Connection(self), "127.0.0.1", self.plan.port
                )
            except OSError:
                self.result.connection_errors += 1
                await asyncio.sleep(0.05)
                continue
            await asyncio.sleep(max(0.0, self.plan.start - time.monotonic()))
            conn.send()
            await conn.lost
            if time.monotonic() < self.plan.end:
                self.result.connection_errors += 1  # the server closed a keep-alive connection

    async def run(self) -> WorkerResult:
        loop = asyncio.get_running_loop()
        cpu: list[float] = []
        # asyncio's clock is time.monotonic(), the clock of the plan.
        loop.call_at(self.plan.measure_from, lambda: cpu.append(time.process_time()))
        await asyncio.gather(*(self.connection() for _ in range(self.plan.connections)))
        # Every connection stops at the first answer after the end; CPU up to then.
        self.result.cpu_in_window = time.process_time() - (cpu[0] if cpu else 0.0)
        return self.result


def load_worker(plan: Plan, out: multiprocessing.connection.Connection) -> None:
    """A child process: run the plan, send back a WorkerResult (as a dict)."""
    try:
        out.send(asdict(asyncio.run(_Worker(plan).run())))
    except BaseException as exc:  # reported by the parent
        out.send({"error": f"{type(exc).__name__}: {exc}"})
        raise


@dataclass
class LoadResult:
    target: str
    processes: int
    connections_per_process: int
    seconds: float
    requests: int
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    errors: int
    statuses: dict[str, int]
    client_cpu_seconds: float
    server_cpu_seconds: float | None
    machine_busy_cores: float | None  # everything that ran, this benchmark included

    def client_us_per_request(self) -> float:
        return self.client_cpu_seconds / max(self.requests, 1) * 1e6

    def server_us_per_request(self) -> float | None:
        if self.server_cpu_seconds is None:
            return None
        return self.server_cpu_seconds / max(self.requests, 1) * 1e6


def generate_load(
    ctx: multiprocessing.context.SpawnContext,
    target: str,
    port: int,
    paths: list[str],
    authorization: str,
    args: argparse.Namespace,
    duration: float,
    server_pid: int | None,
) -> LoadResult:
    start = time.monotonic() + 1.5  # time for the workers to start and connect
    measure_from = start + args.warmup
    end = measure_from + duration
    pipes, processes = [], []
    for i in range(args.processes):
        plan = Plan(
            port, paths, args.connections, start, measure_from, end, args.seed + i, authorization
        )
        receiver, sender = ctx.Pipe(duplex=False)
        process = ctx.Process(target=load_worker, args=(plan, sender), daemon=True)
        process.start()
        sender.close()
        pipes.append(receiver)
        processes.append(process)
    time.sleep(max(0.0, measure_from - time.monotonic()))
    server_cpu_start = rig.cpu_seconds(server_pid) if server_pid else None
    machine_start = rig.machine_cpu()
    time.sleep(max(0.0, end - time.monotonic()))
    server_cpu_end = rig.cpu_seconds(server_pid) if server_pid else None
    machine_end = rig.machine_cpu()
    results = []
    for receiver, process in zip(pipes, processes, strict=True):
        if not receiver.poll(30):
            raise rig.BenchError(f"a load process sent no result (exit code {process.exitcode})")
        data = receiver.recv()
        process.join(10)
        if "error" in data:
            raise rig.BenchError(f"a load process failed: {data['error']}")
        results.append(WorkerResult(**data))
    latencies = sorted(x for r in results for x in r.latencies)
    statuses: dict[str, int] = {}
    for r in results:
        for status, n in r.statuses.items():
            statuses[str(status)] = statuses.get(str(status), 0) + n
    connection_errors = sum(r.connection_errors for r in results)
    errors = sum(n for s, n in statuses.items() if s != "200") + connection_errors
    if not latencies:
        raise rig.BenchError(f"no request to {target} completed in the measured window")

    def percentile(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000

    server_cpu = (
        server_cpu_end - server_cpu_start
        if server_cpu_start is not None and server_cpu_end is not None
        else None
    )
    return LoadResult(
        target=target,
        processes=args.processes,
        connections_per_process=args.connections,
        seconds=duration,
        requests=len(latencies),
        rps=len(latencies) / duration,
        p50_ms=percentile(0.50),
        p90_ms=percentile(0.90),
        p99_ms=percentile(0.99),
        max_ms=latencies[-1] * 1000,
        errors=errors,
        statuses=statuses,
        client_cpu_seconds=sum(r.cpu_in_window for r in results),
        server_cpu_seconds=server_cpu,
        machine_busy_cores=(
            (machine_end[0] - machine_start[0]) / duration
            if machine_start is not None and machine_end is not None
            else None
        ),
    )


# --- the run ----------------------------------------------------------------------------


def show(result: LoadResult) -> None:
    server = result.server_us_per_request()
    server_text = f"{server:.0f} us/request" if server is not None else "n/a"
    server_share = (
        f" ({result.server_cpu_seconds / result.seconds:.0%} of a core)"
        if result.server_cpu_seconds is not None
        else ""
    )
    print(
        f"  {result.rps:>9,.0f} requests/s   {result.requests:,} in {result.seconds:.0f} s, "
        f"{result.processes} x {result.connections_per_process} connections\n"
        f"  latency ms   p50 {result.p50_ms:.2f}   p90 {result.p90_ms:.2f}   "
        f"p99 {result.p99_ms:.2f}   max {result.max_ms:.1f}\n"
        f"  errors       {result.errors}   statuses {result.statuses}\n"
        f"  CPU          server {server_text}{server_share}; "
        f"clients {result.client_us_per_request():.0f} us/request "
        f"({result.client_cpu_seconds / result.seconds:.0%} of a core)"
    )
    if result.machine_busy_cores is not None:
        ours = (result.client_cpu_seconds + (result.server_cpu_seconds or 0)) / result.seconds
        others = max(0.0, result.machine_busy_cores - ours)  # the samples are not simultaneous
        print(
            f"  machine      {result.machine_busy_cores:.2f} of {os.cpu_count()} cores busy: "
            f"{ours:.2f} in these processes, {others:.2f} in the kernel's network stack "
            "and other processes"
        )


def bench(args: argparse.Namespace, base: Path) -> bool:
    ctx = multiprocessing.get_context("spawn")
    machine = rig.header("policysync emulator benchmark")
    stack = {name: rig.version(name) for name in ("uvicorn", "starlette", "httptools")}
    print(", ".join(f"{k} {v}" for k, v in stack.items()))
    fixture = rig.make_fixture(args.orgs, args.seed)
    seed_file = rig.write_seed(base / "seed.json", fixture, args.orgs)
    print(f"seed: {args.orgs:,} organizations, seed {args.seed}")
    paths = [ORG_PATH + i for i in fixture.ids(args.orgs)]

    profile = args.profile.resolve() if args.profile else None
    with rig.Emulator(seed_file, base, profile=profile) as emulator:
        endpoint = emulator.endpoint
        credentials = f"{endpoint.project_id}:{endpoint.secret}".encode()
        authorization = "Basic " + base64.b64encode(credentials).decode()
        port = int(endpoint.url.rstrip("/").rsplit(":", 1)[1])
        print(
            f"\nemulator: GET {ORG_PATH}{{id}}, {args.warmup:.0f} s warm-up"
            + (", under cProfile" if args.profile else "")
        )
        result = generate_load(
            ctx, "emulator", port, paths, authorization, args, args.duration, emulator.pid
        )
        show(result)

    ceiling: LoadResult | None = None
    if args.ceiling_duration > 0:
        receiver, sender = ctx.Pipe(duplex=False)
        server = ctx.Process(target=trivial_server, args=(600, sender), daemon=True)
        server.start()
        try:
            if not receiver.poll(30):
                raise rig.BenchError("the trivial server did not start")
            port = receiver.recv()
            print("\nload generator ceiling: the same load against a trivial HTTP server")
            ceiling = generate_load(
                ctx, "trivial", port, paths, authorization, args, args.ceiling_duration, server.pid
            )
            show(ceiling)
        finally:
            server.terminate()
            server.join(10)

    met = result.rps >= args.target and result.errors == 0
    print(
        f"\nemulator: {result.rps:,.0f} GETs/s, p50 {result.p50_ms:.2f} ms, "
        f"p99 {result.p99_ms:.2f} ms, {result.errors} errors; "
        f"target >= {args.target:,.0f}/s with no errors: {'PASS' if met else 'MISS'}"
    )
    if ceiling is not None:
        headroom = ceiling.rps / result.rps if result.rps else float("inf")
        limited_by = "the server" if headroom >= 1.5 else "possibly the load generator"
        print(
            f"load generator ceiling {ceiling.rps:,.0f} requests/s "
            f"({headroom:.1f}x the emulator's): the measurement is limited by {limited_by}"
        )
    if profile is not None and profile.exists():
        rig.print_profile(profile, 25)
    rig.write_json(
        args.json,
        {
            "benchmark": "emulator",
            "machine": machine,
            "stack": stack,
            "orgs": args.orgs,
            "seed": args.seed,
            "warmup_seconds": args.warmup,
            "target_rps": args.target,
            "emulator": asdict(result),
            "ceiling": asdict(ceiling) if ceiling is not None else None,
            "profiled": args.profile is not None,
            "met": met,
        },
    )
    return met


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--orgs", type=int, default=2_000, help="organizations in the seed (2000)")
    p.add_argument("--duration", type=float, default=10.0, help="measured seconds (10)")
    p.add_argument("--warmup", type=float, default=2.0, help="seconds before measuring (2)")
    p.add_argument("--processes", type=int, default=2, help="load generator processes (2)")
    p.add_argument(
        "--connections", type=int, default=16, help="keep-alive connections per process (16)"
    )
    p.add_argument("--target", type=float, default=TARGET_RPS, help="GETs/s to reach (2000)")
    p.add_argument(
        "--ceiling-duration",
        type=float,
        default=5.0,
        help="measured seconds against the trivial server; 0 skips it (5)",
    )
    p.add_argument("--seed", type=int, default=rig.DEFAULT_SEED, help="RNG seed of the orgs")
    p.add_argument("--profile", type=Path, metavar="FILE", help="run the server under cProfile")
    p.add_argument("--json", type=Path, metavar="FILE", help="also write every figure here")
    args = p.parse_args(argv)
    if min(args.orgs, args.processes, args.connections) < 1 or args.duration <= 0:
        p.error("--orgs, --processes, --connections and --duration must be positive")
    if args.warmup < 0 or args.ceiling_duration < 0:
        p.error("--warmup and --ceiling-duration cannot be negative")
    return args


if __name__ == "__main__":
    sys.exit(rig.main(bench, parse_args(None)))
