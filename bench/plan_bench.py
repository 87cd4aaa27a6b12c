"""Benchmark behind `make bench`: `policysync plan` against the official SDK in a loop.

Generates a valid policy tree (a copy of `policies/project.json` and N organization files
from `generate.py`, the very files `validate_bench.py` writes) and a matching emulator
seed in which a realistic share of the organizations differ from their files (a role
missing live, an extra role live, or a role whose actions differ), then starts
`policysync emulator --port 0 --seed FILE --latency-ms 20` as a process of its own and
times, wall clock:

(a) the baseline a user would write today: the official `stytch` SDK,
    `client.rbac.organizations.get_org_policy(organization_id=...)` for every
    organization, one after the other (the loop alone, in a process of its own: no
    interpreter start-up and no import counted, which favours the SDK);
(b) `policysync plan --format json --parallelism 16`, the whole command as a user runs
    it (start-up, validation, the reads, planning, rendering), median of 3 after a
    warm-up;
(c) for reference, this emulator's floor: the same reads by a bare-socket client (P
    keep-alive connections, no parsing, ~0.1 ms of CPU per request), median of 3: what
    the emulator itself adds to the latency asked of it (its event loop, its HTTP
    server) shows as the floor's distance from the bound;

and compares them with each other and with the lower bound of any client keeping P
requests in flight: L + N x L / P (the project policy is read first and alone, then the
N organizations, P at a time; L is the emulator's latency). The plan's output is checked: as
many organizations changed, and as many roles to create, update and delete, as seeded.

Then memory: `policysync plan --format json` on 20,000 organizations (no added latency,
to keep it short). Its peak is the largest high-water mark (VmHWM, which the kernel
keeps per process) of the plan process and of the validation workers it forks (each of
which counts the pages it shares with its parent), read from /proc every 20 ms while it
runs. Not wait4()'s ru_maxrss: Linux carries the high-water mark of the process that
forked over exec(), so it reports this benchmark's own size (the 20,000-organization
fixture) when that is larger. Printed for the record: the peak proportional set size of
the whole process tree (PSS: shared pages counted once).

    .venv/bin/python bench/plan_bench.py [--orgs 2000] [--latency-ms 20] [--json FILE]
    .venv/bin/python bench/plan_bench.py --sdk-sample 200   # time 200 SDK calls, extrapolate
    .venv/bin/python bench/plan_bench.py --profile plan.prof  # one more plan, under cProfile

Targets: plan at least 10x faster than the SDK loop, within 1.5x of the lower bound, and
a peak under 200 MB (10^6 bytes) at 20,000 organizations. Standard library and the
`stytch` SDK only. Exit status 0 when every target is met, 1 when one is missed (or the
plan is wrong), 2 when the benchmark itself could not run.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import copy
import json
import multiprocessing
import multiprocessing.connection
import os
import platform
import pstats
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import emulator_bench
import validate_bench
from emulator_bench import Emulator, _readline, server_stack
from generate import load_resources, make_org, project_role_ids
from validate_bench import make_orgs, tool, write_tree

REPO = Path(__file__).resolve().parent.parent
PROJECT_JSON = REPO / "policies" / "project.json"

TARGET_SDK_RATIO = 10.0  # SDK loop / plan, at least
TARGET_BOUND_RATIO = 1.5  # plan / lower bound, at most
TARGET_PEAK_MB = 200.0  # peak RSS at --mem-orgs, below (MB = 10^6 bytes)
DEFAULT_SEED = 20_240_601
PLAN_TIMEOUT = 600.0  # seconds, any one plan run
SAMPLE_EVERY = 0.02  # seconds between /proc samples of the memory run
BenchError = emulator_bench.BenchError
BENCH_ERRORS = (emulator_bench.BenchError, validate_bench.BenchError)

# The seeded differences, by what the plan shows for them.
KINDS = ("create", "delete", "update")


# --- the tree and the seed ----------------------------------------------------------


@dataclass
class Fixture:
    orgs: list[tuple[str, str]]  # (file name, JSON text), as validate_bench writes them
    docs: list[dict[str, Any]]  # the same, parsed
    live: list[dict[str, Any]]  # the live org_policy of each
    kinds: list[str | None]  # the seeded difference of each; None: live equals the file

    def expected(self, n: int) -> dict[str, int]:
        """The plan's summary for the first n organizations."""
        kinds = self.kinds[:n]
        return {
            "organizations": n,
            "changed": sum(k is not None for k in kinds),
            "add": kinds.count("create"),
            "change": kinds.count("update"),
            "destroy": kinds.count("delete"),
            "failed": 0,
        }


def _other_actions(actions: list[str], declared: list[str]) -> list[str]:
    """Other actions for one permission: a different set in every case."""
    if actions == ["*"]:
        return [declared[0]]
    missing = [a for a in declared if a not in actions]
    if missing:
        return [*actions, missing[0]]
    return actions[:-1] if len(actions) > 1 else ["*"]


def perturb(
    policy: dict[str, Any], kind: str, rng: random.Random, resources: dict[str, list[str]]
) -> dict[str, Any]:
    """The live policy of an organization whose file holds `policy`, differing by `kind`
    (named after what the plan shows for it)."""
    live = copy.deepcopy(policy)
    roles = live["roles"]
    if kind == "create":  # a role of the file is missing live
        roles.pop(rng.randrange(len(roles)))
    elif kind == "update":  # a role's actions differ live
        permission = rng.choice(rng.choice(roles)["permissions"])
        permission["actions"] = _other_actions(
            permission["actions"], resources[permission["resource_id"]]
        )
    else:  # "delete": live holds a role the file does not, generated as make_org does
        taken = {r["role_id"] for r in roles}
        while True:
            extra = make_org(rng, resources)["org_policy"]["roles"]
            extra = [r for r in extra if r["role_id"] not in taken]
            if extra:
                roles.append(extra[0])
                break
    return live


def make_fixture(count: int, seed: int, share: float) -> Fixture:
    orgs = make_orgs(count, seed, PROJECT_JSON)
    docs = [json.loads(text) for _, text in orgs]
    resources = load_resources(PROJECT_JSON)
    rng = random.Random(seed + 1)
    kinds: list[str | None] = [None] * count
    for i in rng.sample(range(count), round(count * share)):
        kinds[i] = rng.choice(KINDS)
    live = [
        perturb(d["org_policy"], k, rng, resources) if k else d["org_policy"]
        for d, k in zip(docs, kinds, strict=True)
    ]
    reserved = project_role_ids(PROJECT_JSON)
    for policy in live:
        ids = [r["role_id"] for r in policy["roles"]]
        assert len(set(ids)) == len(ids), ids
        assert not reserved & set(ids), ids
    return Fixture(orgs, docs, live, kinds)


def seed_document(fixture: Fixture, n: int) -> dict[str, Any]:
    """An emulator seed: the project policy of project.json, the first n organizations."""
    policy = json.loads(PROJECT_JSON.read_text(encoding="utf-8"))["policy"]
    organizations = [
        {
            "organization_id": doc["organization_id"],
            "organization_name": f"Bench {i}",
            "organization_slug": f"bench-{i:05d}",
            "org_policy": live,
        }
        for i, (doc, live) in enumerate(zip(fixture.docs[:n], fixture.live[:n], strict=True))
    ]
    return {"policy": policy, "organizations": organizations}


# --- the emulator -------------------------------------------------------------------


@dataclass
class Endpoint:
    url: str
    project_id: str
    secret: str

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("STYTCH_")}
        env["STYTCH_BASE_URL"] = self.url
        env["STYTCH_PROJECT_ID"] = self.project_id
        env["STYTCH_SECRET"] = self.secret
        return env


def start_emulator(
    policysync: str, seed_file: Path, latency_ms: float, workdir: Path
) -> tuple[Emulator, Endpoint]:
    """`policysync emulator --port 0`; its URL and credentials read from its stdout."""
    command = [policysync, "emulator", "--host", "127.0.0.1", "--port", "0"]
    command += ["--seed", str(seed_file)]
    if latency_ms > 0:
        command += ["--latency-ms", f"{latency_ms:g}"]
    workdir.mkdir()
    emulator = Emulator(command, workdir).__enter__()
    process = emulator.process
    assert process is not None
    assert process.stdout is not None
    values: dict[str, str] = {}
    try:
        while "STYTCH_SECRET" not in values:  # the lines after the URL: the credentials
            line = _readline(process.stdout, 10.0).strip()
            if not line:
                raise BenchError(f"the emulator printed no credentials; {emulator.stderr()}")
            key, sep, value = line.partition("=")
            if sep and key.startswith("STYTCH_"):
                values[key] = value
    except BaseException:
        emulator.__exit__(None, None, None)
        raise
    url = f"http://127.0.0.1:{emulator.port}/"
    return emulator, Endpoint(url, values.get("STYTCH_PROJECT_ID", ""), values["STYTCH_SECRET"])


def stop_emulator(emulator: Emulator) -> None:
    """Stop it; BenchError when it had exited during the run."""
    alive = emulator.process is not None and emulator.process.poll() is None
    emulator.__exit__(None, None, None)
    if not alive:
        raise BenchError(f"the emulator exited during the run: {emulator.stderr()}")


# --- (c) the floor of this emulator ---------------------------------------------------


def raw_floor(
    endpoint: Endpoint, ids: list[str], parallelism: int, puts: dict[str, bytes] | None = None
) -> tuple[float, float]:
    """Every organization read by the thinnest client there is: `parallelism` keep-alive
    sockets, each sending a bare GET and reading the answer by its Content-Length (no
    JSON parsed, ~0.1 ms of CPU per request), then, for an organization in `puts`, a
    bare PUT of that body. Its time is what this emulator, on this machine, takes to
    answer them all: the floor of any client. (seconds, CPU seconds)"""
    url = urlsplit(endpoint.url)
    token = base64.b64encode(f"{endpoint.project_id}:{endpoint.secret}".encode()).decode()
    head = f"Host: {url.netloc}\r\nAuthorization: Basic {token}\r\n"

    async def main() -> None:
        pending = iter(ids)

        async def connection() -> None:
            reader, writer = await asyncio.open_connection(url.hostname, url.port)

            async def exchange(request: bytes, path: str) -> None:
                writer.write(request)
                answer = (await reader.readuntil(b"\r\n\r\n")).lower()
                if not answer.startswith(b"http/1.1 200"):
                    raise BenchError(f"the emulator answered {answer[:12]!r} to {path}")
                at = answer.index(b"content-length:") + 15
                await reader.readexactly(int(answer[at : answer.index(b"\r\n", at)]))

            for organization_id in pending:
                path = "/v1/b2b/rbac/organizations/" + quote(organization_id, safe="")
                await exchange(f"GET {path} HTTP/1.1\r\n{head}\r\n".encode(), path)
                body = (puts or {}).get(organization_id)
                if body is not None:
                    length = f"Content-Type: application/json\r\nContent-Length: {len(body)}"
                    put = f"PUT {path} HTTP/1.1\r\n{head}{length}\r\n\r\n".encode() + body
                    await exchange(put, path)
            writer.close()

        await asyncio.gather(*(connection() for _ in range(min(parallelism, len(ids)))))

    cpu, start = time.process_time(), time.perf_counter()
    asyncio.run(main())
    return time.perf_counter() - start, time.process_time() - cpu


# --- (a) the SDK loop ---------------------------------------------------------------


def _canonical(policy: dict[str, Any]) -> dict[str, Any]:
    """Equal for two policies the plan treats alike (order, merged resources, "")."""
    out = {}
    for role in policy.get("roles") or []:
        grants: dict[str, set[str]] = {}
        for p in role.get("permissions") or []:
            grants.setdefault(p["resource_id"], set()).update(p.get("actions") or [])
        described = role.get("description") or ""
        out[role["role_id"]] = (described, {r: sorted(a) for r, a in grants.items()})
    return out


def sdk_loop(
    endpoint: Endpoint,
    ids: list[str],
    desired: list[dict[str, Any]],
    out: multiprocessing.connection.Connection,
) -> None:
    """A child process: the SDK loop, timed; sends back seconds, errors, differences."""
    try:
        import stytch

        client = stytch.B2BClient(
            project_id=endpoint.project_id, secret=endpoint.secret, environment=endpoint.url
        )
        answers = []
        start = time.perf_counter()
        for org_id in ids:
            answers.append(client.rbac.organizations.get_org_policy(organization_id=org_id))
        seconds = time.perf_counter() - start
        differ = sum(
            _canonical(a.org_policy.model_dump()) != _canonical(d)
            for a, d in zip(answers, desired, strict=True)
        )
        out.send(
            {
                "seconds": seconds,
                "errors": sum(a.status_code != 200 for a in answers),
                "differ": differ,
                "version": stytch.__version__,
            }
        )
    except BaseException as exc:  # reported by the parent
        out.send({"error": f"{type(exc).__name__}: {exc}"})
        raise


@dataclass
class SdkResult:
    timed_orgs: int
    seconds: float  # for the timed organizations
    estimated_seconds: float  # for all N (equal to seconds when all were timed)
    extrapolated: bool
    differ: int  # timed organizations whose live policy differs from the file
    expected_differ: int
    sdk_version: str

    @property
    def per_org_ms(self) -> float:
        return self.seconds / self.timed_orgs * 1000


def run_sdk(endpoint: Endpoint, fixture: Fixture, n: int, sample: int) -> SdkResult:
    k = min(n, sample) if sample > 0 else n
    ids = [d["organization_id"] for d in fixture.docs[:k]]
    desired = [d["org_policy"] for d in fixture.docs[:k]]
    ctx = multiprocessing.get_context("spawn")
    receiver, sender = ctx.Pipe(duplex=False)
    process = ctx.Process(target=sdk_loop, args=(endpoint, ids, desired, sender), daemon=True)
    process.start()
    sender.close()
    timeout = 60.0 + k * 0.25  # ten times what a 20 ms call takes, and a minute
    try:
        if not receiver.poll(timeout):
            raise BenchError(f"the SDK loop did not finish within {timeout:.0f} s")
        data = receiver.recv()
    except EOFError:
        raise BenchError(f"the SDK loop died (exit code {process.exitcode})") from None
    finally:
        if process.is_alive():
            process.terminate()
        process.join(10)
    if "error" in data:
        raise BenchError(f"the SDK loop failed: {data['error']}")
    if data["errors"]:
        raise BenchError(f"the SDK loop got {data['errors']} answers other than 200")
    return SdkResult(
        timed_orgs=k,
        seconds=data["seconds"],
        estimated_seconds=data["seconds"] * n / k,
        extrapolated=k < n,
        differ=data["differ"],
        expected_differ=sum(x is not None for x in fixture.kinds[:k]),
        sdk_version=data["version"],
    )


# --- (b) policysync plan ------------------------------------------------------------


@dataclass
class PlanRun:
    wall: float
    returncode: int
    cpu: float  # user + sys of the process and of its waited-for children (the workers)
    maxrss_kb: int  # ru_maxrss of wait4(): includes the forking benchmark's own peak
    main_hwm_kb: int | None = None  # sampled: VmHWM of the plan process itself
    peak_hwm_kb: int | None = None  # sampled: the largest VmHWM of the plan and its workers
    tree_pss_kb: int | None = None  # sampled: peak PSS summed over the process tree
    tree_rss_kb: int | None = None  # sampled: peak RSS summed (shared pages counted twice)
    max_processes: int | None = None  # sampled: most processes in the tree at once


def _proc_kb(path: str, key: str) -> int:
    """A `Key: N kB` line of a /proc file; 0 when the process or the line is gone."""
    try:
        with open(path, encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith(key):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _process_tree(pid: int) -> list[int]:
    pids, todo = [], [pid]
    while todo:
        p = todo.pop()
        pids.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children", encoding="ascii") as f:
                    todo += [int(c) for c in f.read().split()]
        except OSError:
            continue
    return pids


def run_plan(
    argv: list[str], env: dict[str, str], cwd: Path, stdout: Path, sample: bool = False
) -> PlanRun:
    """One run, stdout to a file, waited for with wait4() (its own rusage, not that of
    every child of this benchmark); with `sample`, memory sampled from /proc meanwhile."""
    with stdout.open("wb") as out, (cwd / "plan.stderr").open("wb") as err:
        start = time.perf_counter()
        process = subprocess.Popen(
            argv, cwd=cwd, env=env, stdout=out, stderr=err, stdin=subprocess.DEVNULL
        )
    timer = threading.Timer(PLAN_TIMEOUT, process.kill)
    timer.start()
    peaks = {"hwm": 0, "peak": 0, "pss": 0, "rss": 0, "processes": 0}
    sampled = sample and Path(f"/proc/{process.pid}/status").exists()
    try:
        if sampled:
            while not (done := os.wait4(process.pid, os.WNOHANG))[0]:
                tree = _process_tree(process.pid)
                peaks["processes"] = max(peaks["processes"], len(tree))
                hwm = _proc_kb(f"/proc/{process.pid}/status", "VmHWM:")
                peak = max((_proc_kb(f"/proc/{p}/status", "VmHWM:") for p in tree), default=0)
                rss = sum(_proc_kb(f"/proc/{p}/status", "VmRSS:") for p in tree)
                pss = sum(_proc_kb(f"/proc/{p}/smaps_rollup", "Pss:") for p in tree)
                peaks.update(
                    hwm=max(peaks["hwm"], hwm),
                    peak=max(peaks["peak"], peak),
                    rss=max(peaks["rss"], rss),
                    pss=max(peaks["pss"], pss),
                )
                time.sleep(SAMPLE_EVERY)
        else:
            done = os.wait4(process.pid, 0)
        wall = time.perf_counter() - start
    finally:
        timer.cancel()
    _, status, usage = done
    process.returncode = os.waitstatus_to_exitcode(status)
    if wall >= PLAN_TIMEOUT:
        raise BenchError(f"`{' '.join(argv[:2])}` did not finish within {PLAN_TIMEOUT:.0f} s")
    run = PlanRun(wall, process.returncode, usage.ru_utime + usage.ru_stime, usage.ru_maxrss)
    if sampled:
        run.main_hwm_kb, run.tree_pss_kb = peaks["hwm"], peaks["pss"]
        run.peak_hwm_kb = peaks["peak"]
        run.tree_rss_kb, run.max_processes = peaks["rss"], peaks["processes"]
    return run


def check_plan(run: PlanRun, out: Path, cwd: Path) -> dict[str, int]:
    """The plan's summary; BenchError when the plan failed; its stderr shown, if any."""
    stderr = (cwd / "plan.stderr").read_text(errors="replace").strip()
    if run.returncode != 0:
        raise BenchError(f"policysync plan exited {run.returncode}: {stderr[-2000:]}")
    if stderr:
        print(f"  plan stderr: {stderr[:1000]}")
    with out.open(encoding="utf-8") as f:
        summary: dict[str, int] = json.load(f)["summary"]
    return summary


def summary_matches(got: dict[str, int], expected: dict[str, int]) -> bool:
    return all(got.get(k) == v for k, v in expected.items())


@dataclass
class Series:
    label: str
    runs: list[PlanRun] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(r.wall for r in self.runs)

    @property
    def cpu_median(self) -> float:
        return statistics.median(r.cpu for r in self.runs)

    def summary(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "runs": len(self.runs),
            "median_s": self.median,
            "min_s": min(r.wall for r in self.runs),
            "cpu_median_s": self.cpu_median,
            "wall_s": [r.wall for r in self.runs],
            "cpu_s": [r.cpu for r in self.runs],
        }


def plan_argv(policysync: str, tree: Path, parallelism: int) -> list[str]:
    options = ["--format", "json", "--parallelism", str(parallelism)]
    return [policysync, "plan", "--policies", str(tree), *options]


def print_profile(path: Path, limit: int) -> None:
    print(f"\nplan profile ({path}; the main process only), top {limit} by cumulative time:")
    stats = pstats.Stats(str(path))
    stats.sort_stats("cumulative").print_stats(limit)
    print(f"top {limit} by own time:")
    stats.sort_stats("tottime").print_stats(limit)


# --- the run ------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--orgs", type=int, default=2_000, help="organizations, timed runs (2000)")
    p.add_argument("--latency-ms", type=float, default=20.0, help="latency of each answer (20 ms)")
    p.add_argument("--parallelism", type=int, default=16, help="plan --parallelism (16)")
    p.add_argument("--repeat", type=int, default=3, help="timed plan runs, median (3)")
    p.add_argument(
        "--sdk-sample",
        type=int,
        default=0,
        metavar="K",
        help="time the SDK loop on the first K organizations only and extrapolate "
        "linearly to --orgs (0: all of them, the default)",
    )
    p.add_argument(
        "--mem-orgs",
        type=int,
        default=20_000,
        help="organizations of the memory run, no added latency (20000); 0 skips it",
    )
    p.add_argument(
        "--change-share",
        type=float,
        default=0.15,
        help="share of the organizations that differ live (0.15)",
    )
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, help="RNG seed of the tree")
    p.add_argument("--profile", type=Path, metavar="FILE", help="one more plan, under cProfile")
    p.add_argument("--json", type=Path, metavar="FILE", help="also write every figure here")
    args = p.parse_args(argv)
    if min(args.orgs, args.parallelism, args.repeat) < 1:
        p.error("--orgs, --parallelism and --repeat must be positive")
    if args.mem_orgs < 0 or args.sdk_sample < 0:
        p.error("--mem-orgs and --sdk-sample cannot be negative")
    if args.latency_ms <= 0 or not 0 < args.change_share <= 1:
        p.error("--latency-ms must be positive and --change-share in (0, 1]")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    base = Path(tempfile.mkdtemp(prefix="policysync-plan-bench-"))
    try:
        return bench(args, base)
    except BENCH_ERRORS as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 2
    finally:
        shutil.rmtree(base, ignore_errors=True)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def mb(kb: int | None) -> str:
    return f"{kb * 1024 / 1e6:.1f} MB" if kb is not None else "n/a"


def bench(args: argparse.Namespace, base: Path) -> int:
    policysync = tool("policysync")
    stack = server_stack()
    n, par = args.orgs, args.parallelism
    print(
        f"policysync plan benchmark: policysync {stack['policysync']}, "
        f"Python {stack['python']}, {os.cpu_count()} CPUs, {platform.system()} "
        f"{platform.machine()}"
    )

    # -- the tree and the seed
    t0 = time.perf_counter()
    fixture = make_fixture(max(n, args.mem_orgs), args.seed, args.change_share)
    tree = base / f"n{n}"
    write_tree(tree, fixture.orgs[:n], PROJECT_JSON)
    seed_file = base / f"seed-n{n}.json"
    seed_file.write_text(json.dumps(seed_document(fixture, n)), encoding="utf-8")
    expected = fixture.expected(n)
    roles = sum(len(d["org_policy"]["roles"]) for d in fixture.docs[:n])
    print(
        f"tree: {n:,} organization files + project.json, {roles:,} roles, seed {args.seed}; "
        f"live differs in {expected['changed']:,} organizations "
        f"({expected['changed'] / n:.0%}): {expected['add']} roles missing live, "
        f"{expected['destroy']} extra live, {expected['change']} with other actions "
        f"(written in {time.perf_counter() - t0:.1f} s)"
    )
    startup = Series("policysync --version")
    for _ in range(3):
        startup.runs.append(run_plan([policysync, "--version"], {**os.environ}, base, base / "v"))

    # -- against the emulator with latency: the SDK loop, then the plan
    argv = plan_argv(policysync, tree, par)
    out = base / "plan.json"
    emulator, endpoint = start_emulator(policysync, seed_file, args.latency_ms, base / "emu1")
    try:
        print(
            f"emulator: {n:,} organizations, {args.latency_ms:g} ms of latency on every request, "
            f"at {endpoint.url}"
        )
        sdk = run_sdk(endpoint, fixture, n, args.sdk_sample)
        ids = [doc["organization_id"] for doc in fixture.docs[:n]]
        floors = sorted(raw_floor(endpoint, ids, par) for _ in range(args.repeat))
        floor, floor_cpu = floors[len(floors) // 2]
        warm = run_plan(argv, endpoint.env(), base, out)
        got = check_plan(warm, out, base)
        correct = summary_matches(got, expected)
        plan = Series("policysync plan")
        for _ in range(args.repeat):
            run = run_plan(argv, endpoint.env(), base, out)
            correct = correct and summary_matches(check_plan(run, out, base), expected)
            plan.runs.append(run)
        profiled: PlanRun | None = None
        if args.profile is not None:
            profile = str(args.profile.resolve())
            prof_argv = [sys.executable, "-m", "cProfile", "-o", profile, "-m", "policysync"]
            profiled = run_plan(prof_argv + argv[1:], endpoint.env(), base, out)
            check_plan(profiled, out, base)
    finally:
        stop_emulator(emulator)

    note = (
        f", extrapolated from the first {sdk.timed_orgs:,} ({sdk.seconds:.2f} s)"
        if sdk.extrapolated
        else ""
    )
    print(
        f"\n(a) SDK loop: stytch {sdk.sdk_version}, rbac.organizations.get_org_policy for "
        "each organization, one after the other (the loop alone)\n"
        f"  {sdk.estimated_seconds:8.3f} s for {n:,} organizations, "
        f"{sdk.per_org_ms:.1f} ms each{note}\n"
        f"  {sdk.differ:,} of the {sdk.timed_orgs:,} read differ from their file "
        f"(seeded: {sdk.expected_differ:,})"
    )
    if sdk.differ != sdk.expected_differ:
        raise BenchError("the SDK read other policies than the seed holds")
    walls = ", ".join(f"{r.wall:.3f}" for r in plan.runs)
    cpu_share = plan.cpu_median / plan.median
    print(
        f"\n(b) policysync plan --format json --parallelism {par}, the whole command\n"
        f"  {plan.median:8.3f} s median of {args.repeat} ({walls}; warm-up {warm.wall:.3f} s, "
        f"not counted)\n"
        f"  CPU time of the plan process (and its validation workers): "
        f"{plan.cpu_median:.3f} s, {cpu_share:.0%} of its wall time"
        + f"\n  start-up alone (policysync --version): {startup.median:.3f} s\n"
        f"  plan output: {got['organizations']:,} organizations, {got['changed']:,} changed, "
        f"{got['add']} to add, {got['change']} to change, {got['destroy']} to destroy, "
        f"{got['failed']} failed: "
        + ("matches the seed" if correct else f"WRONG: the seed holds {expected}")
    )
    if profiled is not None:
        print(f"  one more run under cProfile: {profiled.wall:.3f} s, saved to {args.profile}")
    print(
        f"\n(c) this emulator's floor: the same {n:,} reads by a bare-socket client "
        f"({par} keep-alive connections, {floor_cpu / n * 1000:.2f} ms of CPU per request)\n"
        f"  {floor:8.3f} s median of {args.repeat}, {floor / n * par * 1000:.1f} ms per "
        f"request where {args.latency_ms:g} ms were asked for: the emulator's own time\n"
        f"  policysync plan beyond it: {plan.median - floor:.3f} s (start-up, validation of "
        f"the tree, the plan's CPU that the waiting did not hide, its output)"
    )

    # -- memory, against an emulator without latency
    memory: PlanRun | None = None
    mem_ok = True
    mem_correct = True
    if args.mem_orgs:
        m = args.mem_orgs
        mem_tree = base / f"n{m}"
        write_tree(mem_tree, fixture.orgs[:m], PROJECT_JSON)
        mem_seed = base / f"seed-n{m}.json"
        mem_seed.write_text(json.dumps(seed_document(fixture, m)), encoding="utf-8")
        emulator, endpoint = start_emulator(policysync, mem_seed, 0, base / "emu2")
        try:
            memory = run_plan(
                plan_argv(policysync, mem_tree, par), endpoint.env(), base, out, sample=True
            )
            mem_got = check_plan(memory, out, base)
        finally:
            stop_emulator(emulator)
        out.unlink()
        mem_correct = summary_matches(mem_got, fixture.expected(m))
        peak_mb = (memory.peak_hwm_kb or 0) * 1024 / 1e6
        mem_ok = peak_mb < TARGET_PEAK_MB
        print(
            f"\nmemory: policysync plan --format json, {m:,} organizations, no added latency "
            f"({mem_got['changed']:,} changed: "
            f"{'matches the seed' if mem_correct else 'WRONG'})\n"
            f"  wall time {memory.wall:.2f} s; CPU {memory.cpu:.2f} s (with its workers)\n"
            f"  peak RSS {peak_mb:.1f} MB: the largest VmHWM of the plan process and its "
            f"validation workers, sampled every {SAMPLE_EVERY * 1000:.0f} ms\n"
            f"    main process VmHWM {mb(memory.main_hwm_kb)}; whole tree at once, PSS "
            f"{mb(memory.tree_pss_kb)} "
            f"(RSS summed {mb(memory.tree_rss_kb)}; "
            f"at most {memory.max_processes} process(es) at once)"
        )

    # -- the verdicts
    latency = args.latency_ms / 1000
    bound = latency + n * latency / par
    sdk_ratio = sdk.estimated_seconds / plan.median
    bound_ratio = plan.median / bound
    ok_sdk = sdk_ratio >= TARGET_SDK_RATIO
    ok_bound = bound_ratio <= TARGET_BOUND_RATIO
    all_correct = correct and mem_correct
    print(
        f"\nlower bound = L + N x L / P = {args.latency_ms:g} ms + {n:,} x "
        f"{args.latency_ms:g} ms / {par} = {bound:.3f} s (the waiting alone)"
    )
    rows = [
        ("plan (median)", f"{plan.median:.3f} s", "", ""),
        (
            "SDK loop" + (" (extrapolated)" if sdk.extrapolated else ""),
            f"{sdk.estimated_seconds:.3f} s",
            "",
            "",
        ),
        ("lower bound", f"{bound:.3f} s", "", ""),
        ("emulator floor (bare client)", f"{floor:.3f} s", "", ""),
        ("emulator floor / lower bound", f"{floor / bound:.2f}x", "", ""),
        ("plan / emulator floor", f"{plan.median / floor:.2f}x", "", ""),
        ("SDK loop / plan", f"{sdk_ratio:.2f}x", f">= {TARGET_SDK_RATIO:g}x", verdict(ok_sdk)),
        (
            "plan / lower bound",
            f"{bound_ratio:.2f}x",
            f"<= {TARGET_BOUND_RATIO:g}x",
            verdict(ok_bound),
        ),
    ]
    if memory is not None:
        peak = f"{(memory.peak_hwm_kb or 0) * 1024 / 1e6:.1f} MB"
        rows.append(
            (f"peak RSS, {args.mem_orgs:,} orgs", peak, f"< {TARGET_PEAK_MB:g} MB", verdict(mem_ok))
        )
        rows.append((f"plan wall time, {args.mem_orgs:,} orgs", f"{memory.wall:.2f} s", "", ""))
    rows.append(
        ("plan output matches the seed", "yes" if all_correct else "NO", "", verdict(all_correct))
    )
    for label, figure, target, mark in rows:
        print(f"  {label:32} {figure:>12} {target:>10}  {mark}".rstrip())

    if args.profile is not None and args.profile.exists():
        print_profile(args.profile, 30)

    all_ok = ok_sdk and ok_bound and mem_ok and all_correct
    if args.json is not None:
        figures = {
            "benchmark": "plan",
            "stack": stack,
            "cpus": os.cpu_count(),
            "orgs": n,
            "seed": args.seed,
            "latency_ms": args.latency_ms,
            "parallelism": par,
            "change_share": args.change_share,
            "expected": expected,
            "startup": startup.summary(),
            "sdk": {**asdict(sdk), "per_org_ms": sdk.per_org_ms},
            "emulator_floor": {"seconds": floor, "cpu_seconds": floor_cpu},
            "plan": plan.summary(),
            "plan_warmup_s": warm.wall,
            "plan_output": {k: got.get(k) for k in expected},
            "lower_bound_s": bound,
            "lower_bound_formula": "L + N * L / P",
            "ratio_sdk_over_plan": sdk_ratio,
            "ratio_plan_over_bound": bound_ratio,
            "memory": (
                {
                    "orgs": args.mem_orgs,
                    **asdict(memory),
                    "peak_mb": (memory.peak_hwm_kb or 0) * 1.024e-3,
                }
                if memory is not None
                else None
            ),
            "targets": {
                "sdk_over_plan_min": TARGET_SDK_RATIO,
                "plan_over_bound_max": TARGET_BOUND_RATIO,
                "peak_mb_max": TARGET_PEAK_MB,
            },
            "verdicts": {
                "sdk_over_plan": verdict(ok_sdk),
                "plan_over_bound": verdict(ok_bound),
                "memory": verdict(mem_ok) if memory is not None else None,
                "correct": verdict(all_correct),
            },
            "verdict": verdict(all_ok),
        }
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
        print(f"\nfigures written to {args.json}")
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
