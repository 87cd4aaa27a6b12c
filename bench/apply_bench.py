"""Benchmark behind `make bench`: `policysync apply` of a saved plan against its lower bound.

Generates a valid policy tree (a copy of `policies/project.json` and N organization files
from `generate.py`, the files `validate_bench.py` writes) and an emulator seed in which
every organization differs from its file (`plan_bench.py`'s fixture with a change share
of 1: a role missing live, an extra role live, or a role whose actions differ), so that
every apply writes all N organizations, deletions included. Then, R times:

1. start `policysync emulator --port 0 --seed FILE --latency-ms 20` afresh (a new
   process, seeded again: each run finds every organization as seeded);
2. `policysync plan --out plan.json` (not timed);
3. time, wall clock, `policysync apply plan.json --auto-approve --allow-delete --force
   --parallelism 16 --format json`: the whole command as a user runs it (start-up,
   loading and checking the saved plan, then per organization a GET, the journal's
   fsync'd pending entry, the PUT, the echo check, the fsync'd final entry), and check
   its result: N applied, none stale or failed;
4. `policysync plan --detailed-exitcode` (not timed) must find nothing left to change;
5. the emulator's floor: the same GETs and PUTs by a bare-socket client (`raw_floor`),
   timed, to show how far this emulator on this machine sits from the bound;

and compares the median with the lower bound of any client keeping P requests in flight:
each organization needs a read, then a write after it, so N x (GET + PUT latency) / P =
N x 2L / P (1,000 x 40 ms / 16 = 2.5 s). Start-up, the journal and the CPU work all count
against the target.

    .venv/bin/python bench/apply_bench.py [--orgs 1000] [--latency-ms 20] [--repeat 3]
    .venv/bin/python bench/apply_bench.py --profile apply.prof  # one more apply, under cProfile
                                          [--parallelism 16] [--json FILE]

Target: apply within 1.5x of the lower bound. Standard library only. Exit status 0 when
the target is met, 1 when it is missed (or an apply was wrong), 2 when the benchmark
itself could not run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from emulator_bench import server_stack
from plan_bench import (
    BENCH_ERRORS,
    PROJECT_JSON,
    BenchError,
    Endpoint,
    PlanRun,
    Series,
    make_fixture,
    raw_floor,
    run_plan,
    seed_document,
    start_emulator,
    stop_emulator,
    verdict,
)
from validate_bench import tool, write_tree

TARGET_BOUND_RATIO = 1.5  # apply / lower bound, at most
DEFAULT_SEED = 20_240_601
STEP_TIMEOUT = 600.0  # seconds, any untimed plan


def plan_out(policysync: str, tree: Path, endpoint: Endpoint, out: Path, cwd: Path) -> None:
    """`policysync plan --out FILE` (not timed); BenchError unless it saved a plan."""
    argv = [policysync, "plan", "--policies", str(tree), "--out", str(out)]
    done = subprocess.run(
        argv,
        cwd=cwd,
        env=endpoint.env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        timeout=STEP_TIMEOUT,
        check=False,
    )
    if done.returncode != 0 or not out.is_file():
        raise BenchError(f"policysync plan --out exited {done.returncode}: {done.stderr[-2000:]}")


def plan_is_empty(policysync: str, tree: Path, endpoint: Endpoint, cwd: Path) -> bool:
    """`policysync plan --detailed-exitcode` finds nothing to change (exit 0)."""
    argv = [policysync, "plan", "--policies", str(tree), "--detailed-exitcode"]
    done = subprocess.run(
        argv,
        cwd=cwd,
        env=endpoint.env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=STEP_TIMEOUT,
        check=False,
    )
    if done.returncode not in (0, 2):
        raise BenchError(f"policysync plan exited {done.returncode}: {done.stderr[-2000:]}")
    return done.returncode == 0


def check_apply(run: PlanRun, out: Path, cwd: Path, n: int) -> dict[str, int]:
    """The apply's counts; BenchError when it failed outright. `run_plan` left its stderr
    (where apply shows the plan) in cwd/plan.stderr."""
    if run.returncode not in (0, 1):
        stderr = (cwd / "plan.stderr").read_text(errors="replace").strip()
        raise BenchError(f"policysync apply exited {run.returncode}: {stderr[-2000:]}")
    try:
        result = json.loads(out.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BenchError(f"policysync apply printed no JSON result: {exc}") from None
    counts = {k: int(result[k]) for k in ("applied", "unchanged", "stale", "failed")}
    counts["returncode"] = run.returncode
    if counts["applied"] != n:
        print(f"  apply result: {counts}; first problems: {problems(result)}")
    return counts


def problems(result: dict[str, Any]) -> list[str]:
    return [
        f"{o['organization_id']}: {o['result']}: {(o.get('error') or {}).get('message')}"
        for o in result.get("organizations", [])
        if o["result"] in ("stale", "failed")
    ][:3]


def one_run(
    i: int,
    policysync: str,
    tree: Path,
    seed_file: Path,
    args: argparse.Namespace,
    base: Path,
    puts: dict[str, bytes],
    profile: Path | None = None,
) -> tuple[PlanRun, dict[str, int], bool, float, float]:
    """Fresh emulator, untimed plan, timed apply, untimed check, then the emulator's
    floor (`raw_floor`: the same GETs and PUTs by a bare-socket client); (apply run, its
    counts, whether the plan after it is empty, seconds the untimed plan took, seconds
    the floor took)."""
    work = base / f"run{i}"
    work.mkdir()
    emulator, endpoint = start_emulator(policysync, seed_file, args.latency_ms, work / "emu")
    try:
        saved = work / "plan.json"
        t0 = time.perf_counter()
        plan_out(policysync, tree, endpoint, saved, work)
        plan_seconds = time.perf_counter() - t0
        argv = [policysync, "apply", str(saved), "--auto-approve", "--allow-delete", "--force"]
        if profile is not None:
            argv[:1] = [sys.executable, "-m", "cProfile", "-o", str(profile), "-m", "policysync"]
        argv += ["--parallelism", str(args.parallelism), "--format", "json"]
        argv += ["--journal", str(work / "journal")]
        result = work / "result.json"
        run = run_plan(argv, endpoint.env(), work, result)
        counts = check_apply(run, result, work, args.orgs)
        empty = plan_is_empty(policysync, tree, endpoint, work)
        floor, _ = raw_floor(endpoint, list(puts), args.parallelism, puts)
    finally:
        stop_emulator(emulator)
    return run, counts, empty, plan_seconds, floor


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--orgs", type=int, default=1_000, help="organizations, all changed (1000)")
    p.add_argument("--latency-ms", type=float, default=20.0, help="latency of each answer (20 ms)")
    p.add_argument("--parallelism", type=int, default=16, help="apply --parallelism (16)")
    p.add_argument("--repeat", type=int, default=3, help="timed apply runs, median (3)")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, help="RNG seed of the tree")
    p.add_argument("--json", type=Path, metavar="FILE", help="also write every figure here")
    p.add_argument("--profile", type=Path, metavar="FILE", help="one more apply, under cProfile")
    args = p.parse_args(argv)
    if min(args.orgs, args.parallelism, args.repeat) < 1:
        p.error("--orgs, --parallelism and --repeat must be positive")
    if args.latency_ms <= 0:
        p.error("--latency-ms must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    base = Path(tempfile.mkdtemp(prefix="policysync-apply-bench-"))
    try:
        return bench(args, base)
    except (*BENCH_ERRORS, subprocess.TimeoutExpired) as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 2
    finally:
        shutil.rmtree(base, ignore_errors=True)


def bench(args: argparse.Namespace, base: Path) -> int:
    policysync = tool("policysync")
    stack = server_stack()
    n, par = args.orgs, args.parallelism
    print(
        f"policysync apply benchmark: policysync {stack['policysync']}, "
        f"Python {stack['python']}, {os.cpu_count()} CPUs, {platform.system()} "
        f"{platform.machine()}"
    )

    # -- the tree and the seed: every organization differs live
    t0 = time.perf_counter()
    fixture = make_fixture(n, args.seed, 1.0)
    tree = base / f"n{n}"
    write_tree(tree, fixture.orgs, PROJECT_JSON)
    seed_file = base / f"seed-n{n}.json"
    seed_file.write_text(json.dumps(seed_document(fixture, n)), encoding="utf-8")
    expected = fixture.expected(n)
    puts = {  # the floor's PUTs: each organization's file, as apply sends it
        doc["organization_id"]: json.dumps({"org_policy": doc["org_policy"]}).encode()
        for doc in fixture.docs[:n]
    }
    print(
        f"tree: {n:,} organization files + project.json, seed {args.seed}; every one differs "
        f"live: {expected['add']} roles missing live, {expected['destroy']} extra live (to "
        f"delete), {expected['change']} with other actions "
        f"(written in {time.perf_counter() - t0:.1f} s)"
    )
    print(
        f"each run: a fresh emulator ({args.latency_ms:g} ms of latency on every request), "
        f"policysync plan --out (not timed), then the timed apply"
    )

    startup = Series("policysync --version")
    for _ in range(3):
        startup.runs.append(run_plan([policysync, "--version"], {**os.environ}, base, base / "v"))

    apply = Series("policysync apply")
    floors: list[float] = []
    all_counts: list[dict[str, int]] = []
    correct = True
    for i in range(args.repeat):
        run, counts, empty, plan_seconds, floor = one_run(
            i, policysync, tree, seed_file, args, base, puts
        )
        apply.runs.append(run)
        floors.append(floor)
        all_counts.append(counts)
        ok = counts["applied"] == n and counts["returncode"] == 0 and empty
        correct = correct and ok
        print(
            f"  run {i + 1}: apply {run.wall:.3f} s (CPU {run.cpu:.2f} s; untimed plan "
            f"{plan_seconds:.2f} s): {counts['applied']:,} applied, {counts['stale']} stale, "
            f"{counts['failed']} failed; plan after it "
            + ("empty" if empty else "NOT EMPTY")
            + f"; emulator floor {floor:.3f} s"
            + ("" if ok else "  WRONG")
        )

    if args.profile is not None:
        profile = args.profile.resolve()
        run, *_ = one_run(args.repeat, policysync, tree, seed_file, args, base, puts, profile)
        print(f"  one more run under cProfile: {run.wall:.3f} s, saved to {args.profile}")

    latency = args.latency_ms / 1000
    bound = n * 2 * latency / par
    ratio = apply.median / bound
    ok_bound = ratio <= TARGET_BOUND_RATIO
    cpu_share = apply.cpu_median / apply.median
    floor = sorted(floors)[len(floors) // 2]
    walls = ", ".join(f"{r.wall:.3f}" for r in apply.runs)
    print(
        f"\npolicysync apply plan.json --auto-approve --allow-delete --force "
        f"--parallelism {par}, the whole command\n"
        f"  {apply.median:8.3f} s median of {args.repeat} ({walls})\n"
        f"  {apply.median / n * 1000:.2f} ms per organization; CPU time "
        f"{apply.cpu_median:.2f} s, {cpu_share:.0%} of the wall time"
        + f"\n  start-up alone (policysync --version): {startup.median:.3f} s"
    )
    print(
        f"\nlower bound = N x (GET + PUT latency) / P = {n:,} x {2 * args.latency_ms:g} ms "
        f"/ {par} = {bound:.3f} s (the waiting alone)\n"
        f"emulator floor = the same GETs and PUTs by a bare-socket client ({par} keep-alive "
        f"connections, no JSON read), after each apply: {floor:.3f} s median, "
        f"{floor / n * par / 2 * 1000:.1f} ms per request"
    )
    rows = [
        ("apply (median)", f"{apply.median:.3f} s", "", ""),
        ("lower bound", f"{bound:.3f} s", "", ""),
        ("apply / lower bound", f"{ratio:.2f}x", f"<= {TARGET_BOUND_RATIO:g}x", verdict(ok_bound)),
        ("emulator floor / lower bound", f"{floor / bound:.2f}x", "", ""),
        ("apply / emulator floor", f"{apply.median / floor:.2f}x", "", ""),
        (
            "every org applied, plan empty",
            "yes" if correct else "NO",
            "",
            verdict(correct),
        ),
    ]
    for label, figure, target, mark in rows:
        print(f"  {label:32} {figure:>12} {target:>10}  {mark}".rstrip())

    all_ok = ok_bound and correct
    if args.json is not None:
        figures = {
            "benchmark": "apply",
            "stack": stack,
            "cpus": os.cpu_count(),
            "orgs": n,
            "seed": args.seed,
            "latency_ms": args.latency_ms,
            "parallelism": par,
            "expected": expected,
            "startup": startup.summary(),
            "apply": apply.summary(),
            "apply_runs": [asdict(r) for r in apply.runs],
            "apply_results": all_counts,
            "lower_bound_s": bound,
            "emulator_floor_s": floor,
            "emulator_floor_runs_s": floors,
            "lower_bound_formula": "N * 2L / P",
            "ratio_apply_over_bound": ratio,
            "targets": {"apply_over_bound_max": TARGET_BOUND_RATIO},
            "verdicts": {"apply_over_bound": verdict(ok_bound), "correct": verdict(correct)},
            "verdict": verdict(all_ok),
        }
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
        print(f"\nfigures written to {args.json}")
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
