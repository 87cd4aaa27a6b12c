"""Benchmark behind `make bench`: `policysync plan` against its lower bound and the SDK.

Writes a policy tree of N generated organization files and an emulator seed in which 15%
of them differ live, starts `policysync emulator --latency-ms 60` (every answer 60 ms after
its request arrived: a realistic round trip to Stytch's API), and times, wall clock:

(a) what a user would write today: the official `stytch` SDK's
    `rbac.organizations.get_org_policy` for every organization, one after the other (the
    loop alone, in a process of its own: no start-up or import counted). At 60 ms a full
    loop of 2,000 takes two minutes: by default the first 250 are timed and the time
    extrapolated linearly, and the output says so;
(b) `policysync plan --format json --parallelism P`, the whole command as a user runs it
    (start-up, validation, the reads, planning, rendering), for each P (16 and 64), in
    five interleaved rounds;
(c) this emulator's floor: the same reads by a bare-socket client (P keep-alive
    connections, no JSON parsed), which shows how far the emulator sits from the bound.

The lower bound of any client keeping P requests in flight is N x L / P. Each plan's
output is checked against the seed. Printed alongside: the CPU time of the policysync
process (and of the children it waited for: its validation workers) per HTTP request
(N + 1: the project policy, then each organization), and the emulator's.

Then memory: the peak of `policysync plan` on 20,000 organizations (against an emulator
without latency, to keep it short): the largest VmHWM of the plan process and its
workers, sampled from /proc.

    .venv/bin/python bench/plan_bench.py [--orgs 2000] [--latency-ms 60] [--json FILE]
    .venv/bin/python bench/plan_bench.py --sdk-sample 0   # the whole SDK loop (2 minutes)
    .venv/bin/python bench/plan_bench.py --profile plan.prof  # one more plan, under cProfile

Targets (medians): plan within 1.10x the bound at P=16 and 1.35x at
P=64; at least 12x faster than the SDK loop at P=16 (the default); a peak under 200 MB at
20,000 organizations. Exit status 0 when every target is met, 1 when one is missed (or a
plan is wrong), 2 when the benchmark itself could not run.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import multiprocessing.connection
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import rig
from rig import Fixture, make_fixture, seed_document

TARGET_SDK_RATIO = 12.0  # SDK loop / plan at P=16, at least
TARGET_BOUND = {16: 1.10, 64: 1.35}  # plan / (N x L / P), at most, by parallelism
TARGET_PEAK_MB = 200.0  # at --mem-orgs, below (MB = 10^6 bytes)


# --- (a) the SDK loop -------------------------------------------------------------------


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
    endpoint: rig.Endpoint,
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
        errors = sum(a.status_code != 200 for a in answers)
        out.send({"seconds": seconds, "errors": errors, "differ": differ})
    except BaseException as exc:  # reported by the parent
        out.send({"error": f"{type(exc).__name__}: {exc}"})
        raise


@dataclass
class SdkResult:
    timed_orgs: int
    seconds: float  # for the timed organizations
    estimated_seconds: float  # for all N (equal to seconds when all were timed)
    differ: int  # timed organizations whose live policy differs from the file
    expected_differ: int

    @property
    def per_org_ms(self) -> float:
        return self.seconds / self.timed_orgs * 1000


def run_sdk(endpoint: rig.Endpoint, fixture: Fixture, n: int, sample: int) -> SdkResult:
    k = min(n, sample) if sample > 0 else n
    desired = [d["org_policy"] for d in fixture.docs[:k]]
    ctx = multiprocessing.get_context("spawn")
    receiver, sender = ctx.Pipe(duplex=False)
    process = ctx.Process(
        target=sdk_loop, args=(endpoint, fixture.ids(k), desired, sender), daemon=True
    )
    process.start()
    sender.close()
    timeout = 60.0 + k * 0.5  # several times what a call takes, and a minute
    try:
        if not receiver.poll(timeout):
            raise rig.BenchError(f"the SDK loop did not finish within {timeout:.0f} s")
        data = receiver.recv()
    except EOFError:
        raise rig.BenchError(f"the SDK loop died (exit code {process.exitcode})") from None
    finally:
        if process.is_alive():
            process.terminate()
        process.join(10)
    if "error" in data:
        raise rig.BenchError(f"the SDK loop failed: {data['error']}")
    if data["errors"]:
        raise rig.BenchError(f"the SDK loop got {data['errors']} answers other than 200")
    expected = sum(x is not None for x in fixture.kinds[:k])
    if data["differ"] != expected:
        raise rig.BenchError(f"the SDK read {data['differ']} differing, the seed holds {expected}")
    seconds = data["seconds"]
    return SdkResult(k, seconds, seconds * n / k, data["differ"], expected)


# --- (b) policysync plan ----------------------------------------------------------------


def plan_argv(loop: str, tree: Path, parallelism: int) -> list[str]:
    options = ["--format", "json", "--parallelism", str(parallelism)]
    return [*rig.policysync(loop), "plan", "--policies", str(tree), *options]


def check_plan(run: rig.Run, out: Path, expected: dict[str, int]) -> bool:
    """Whether the plan's summary is the seed's; BenchError when the plan failed."""
    if run.returncode != 0:
        raise rig.BenchError(f"policysync plan exited {run.returncode}: {run.stderr[-2000:]}")
    if run.stderr:
        print(f"  plan stderr: {run.stderr[:1000]}")
    with out.open(encoding="utf-8") as f:
        summary = json.load(f)["summary"]
    if any(summary.get(k) != v for k, v in expected.items()):
        print(f"  WRONG plan: {summary}, where the seed holds {expected}")
        return False
    return True


def timed_plan(
    emulator: rig.Emulator, series: rig.Series, argv: list[str], cwd: Path, expected: dict[str, int]
) -> bool:
    """One timed plan, added to `series` with the emulator's CPU meanwhile; correct?"""
    before = emulator.cpu_seconds()
    run = rig.run(argv, cwd, cwd / "plan.json", emulator.endpoint.env())
    after = emulator.cpu_seconds()
    series.runs.append(run)
    if before is not None and after is not None:
        series.server_cpu.append(after - before)
    return check_plan(run, cwd / "plan.json", expected)


# --- the run ----------------------------------------------------------------------------


def bench(args: argparse.Namespace, base: Path) -> bool:
    machine = rig.header("policysync plan benchmark")
    n, pars, latency = args.orgs, args.parallelism, args.latency_ms / 1000
    loops = ["asyncio"]  # policysync runs on asyncio's event loop
    fixture = make_fixture(max(n, args.mem_orgs), args.seed, args.change_share)
    tree = base / f"n{n}"
    rig.write_tree(tree, fixture.orgs[:n])
    seed_file = base / f"seed-n{n}.json"
    seed_file.write_text(json.dumps(seed_document(fixture, n)), encoding="utf-8")
    expected = fixture.expected(n)
    print(
        f"tree: {n:,} organization files + project.json, seed {args.seed}; live differs in "
        f"{expected['changed']:,} ({expected['changed'] / n:.0%}): {expected['add']} roles "
        f"missing live, {expected['destroy']} extra live, {expected['change']} with other actions"
    )

    series = {
        (loop, p): rig.Series(f"P={p} {loop}", requests=n + 1) for p in pars for loop in loops
    }
    floors: dict[int, list[float]] = {p: [] for p in pars}
    correct = True
    with rig.Emulator(seed_file, base / "emu", args.latency_ms) as emulator:
        print(f"emulator: {args.latency_ms:g} ms on every answer, at {emulator.endpoint.url}")
        sdk = run_sdk(emulator.endpoint, fixture, n, args.sdk_sample)
        warm = rig.Series("warm-up")
        correct = timed_plan(emulator, warm, plan_argv(loops[0], tree, pars[0]), base, expected)
        for i in range(args.repeat):
            for loop in loops if i % 2 == 0 else loops[::-1]:
                for p in pars:
                    argv = plan_argv(loop, tree, p)
                    ok = timed_plan(emulator, series[loop, p], argv, base, expected)
                    correct = correct and ok
            for p in pars:
                floors[p].append(rig.raw_floor(emulator.endpoint, fixture.ids(n), p))
        if args.profile is not None:
            argv = plan_argv(loops[0], tree, pars[0])
            profile = ["-m", "cProfile", "-o", str(args.profile.resolve()), "-m", "policysync"]
            argv = [sys.executable, *profile, *argv[argv.index("plan") :]]
            profiled = rig.Series("profiled")
            timed_plan(emulator, profiled, argv, base, expected)
            print(f"one more plan under cProfile: {profiled.median:.3f} s, in {args.profile}")

    extrapolated = sdk.timed_orgs < n
    print(
        f"\n(a) SDK loop: stytch {rig.version('stytch')}, get_org_policy for each organization, "
        f"one after the other: {sdk.per_org_ms:.1f} ms each\n"
        f"  {sdk.estimated_seconds:.1f} s for {n:,} organizations"
        + (
            f", EXTRAPOLATED from the first {sdk.timed_orgs:,} ({sdk.seconds:.2f} s)"
            if extrapolated
            else ""
        )
        + f"; {sdk.differ} of them differ from their file, as seeded"
    )
    print(
        f"\n(b) policysync plan --format json --parallelism P, the whole command, medians "
        f"(range) of interleaved runs; {n + 1:,} requests each; lower bound N x L / P"
    )
    targets: list[rig.Target] = []
    for p in pars:
        bound = n * latency / p
        floor = statistics.median(floors[p])
        print(
            f"  P={p}: bound {n:,} x {args.latency_ms:g} ms / {p} = {bound:.3f} s; emulator "
            f"floor {floor:.3f} s = {floor / bound:.2f}x the bound (bare-socket client; "
            f"{min(floors[p]):.3f}-{max(floors[p]):.3f})"
        )
        for loop in loops:
            s = series[loop, p]
            print(
                f"    {loop:8} {s.spread():34} {s.median / bound:.2f}x the bound, "
                f"{s.median / floor:.2f}x the floor; {s.cpu_text()}"
            )
        if p in TARGET_BOUND:
            ratio = series[loops[0], p].median / bound
            targets.append(rig.Target(f"plan P={p} / bound", ratio, TARGET_BOUND[p]))
    print(f"  output of every plan matches the seed: {'yes' if correct else 'NO'}")
    sdk_p = 16 if 16 in pars else pars[0]
    sdk_ratio = sdk.estimated_seconds / series[loops[0], sdk_p].median
    label = f"SDK loop{' (extrapolated)' if extrapolated else ''} / plan P={sdk_p}"
    targets.append(rig.Target(label, sdk_ratio, TARGET_SDK_RATIO, at_least=True))

    memory: rig.Run | None = None
    if args.mem_orgs:
        m = args.mem_orgs
        rig.write_tree(base / f"n{m}", fixture.orgs[:m])
        mem_seed = base / f"seed-n{m}.json"
        mem_seed.write_text(json.dumps(seed_document(fixture, m)), encoding="utf-8")
        with rig.Emulator(mem_seed, base / "emu-mem") as emulator:
            argv = plan_argv(loops[0], base / f"n{m}", pars[0])
            memory = rig.run(argv, base, base / "plan.json", emulator.endpoint.env(), True)
        mem_ok = check_plan(memory, base / "plan.json", fixture.expected(m))
        correct = correct and mem_ok
        peak_mb = (memory.peak_kb or 0) * 1024 / 1e6
        print(
            f"\nmemory: policysync plan --parallelism {pars[0]}, {m:,} organizations, no "
            f"latency: {memory.wall:.2f} s, CPU {memory.cpu:.2f} s; output "
            + ("matches the seed" if mem_ok else "WRONG")
            + f"\n  peak {peak_mb:.1f} MB: the largest VmHWM of the plan process and its "
            f"validation workers (whole tree at once, PSS: {(memory.pss_kb or 0) * 1024 / 1e6:.1f}"
            f" MB; at most {memory.processes} processes)"
        )
        targets.append(rig.Target(f"peak memory, {m:,} orgs", peak_mb, TARGET_PEAK_MB, unit=" MB"))

    print()
    rows = [t.row() for t in targets]
    mark = "PASS" if correct else "MISS"
    rows.append(("every plan matches the seed", "yes" if correct else "NO", "", mark))
    rig.table(rows)
    if args.profile is not None and args.profile.exists():
        rig.print_profile(args.profile, 30)
    met = correct and all(t.met for t in targets)
    rig.write_json(
        args.json,
        {
            "benchmark": "plan",
            "machine": machine,
            "orgs": n,
            "latency_ms": args.latency_ms,
            "seed": args.seed,
            "expected": expected,
            "sdk": {**asdict(sdk), "extrapolated": extrapolated, "stytch": rig.version("stytch")},
            "plans": {f"{loop} P={p}": s.summary() for (loop, p), s in series.items()},
            "bounds_s": {str(p): n * latency / p for p in pars},
            "emulator_floors_s": {str(p): f for p, f in floors.items()},
            "memory": {"orgs": args.mem_orgs, **asdict(memory)} if memory else None,
            "targets": [{**t.__dict__, "met": t.met} for t in targets],
            "correct": correct,
            "met": met,
        },
    )
    return met


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = rig.latency_parser(__doc__, "plan", 2_000, "organizations, timed runs")
    p.add_argument(
        "--sdk-sample",
        type=int,
        default=250,
        metavar="K",
        help="time the SDK loop on the first K organizations, extrapolate (250); 0: all",
    )
    p.add_argument(
        "--mem-orgs", type=int, default=20_000, help="organizations of the memory run; 0 skips it"
    )
    p.add_argument("--change-share", type=float, default=0.15, help="differing live (0.15)")
    args = rig.latency_args(p, argv)
    if args.mem_orgs < 0 or args.sdk_sample < 0 or not 0 < args.change_share <= 1:
        p.error("--mem-orgs and --sdk-sample cannot be negative; --change-share in (0, 1]")
    return args


if __name__ == "__main__":
    sys.exit(rig.main(bench, parse_args(None)))
