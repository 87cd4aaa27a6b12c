"""Benchmark behind `make bench`: `policysync apply` of a saved plan against its lower bound.

Writes a policy tree of N generated organization files and an emulator seed in which
every organization differs from its file (a role missing live, an extra role live, or a
role whose actions differ), so that every apply writes all N, deletions included. Then,
in five interleaved rounds, for each parallelism P (16 and 64):

1. start `policysync emulator --latency-ms 60` afresh (seeded again: each apply finds
   every organization as seeded);
2. `policysync plan --out plan.json` (not timed);
3. time `policysync apply plan.json --auto-approve --allow-delete --force --parallelism P
   --format json`, the whole command as a user runs it (start-up, loading and checking
   the saved plan, then per organization a GET, the journal's pending entry, the PUT,
   the echo check, the final entry), and check its result: N applied;
4. `policysync plan --detailed-exitcode` (not timed) must find nothing left to change;
5. the emulator's floor: the same GETs and PUTs by a bare-socket
   client, to show how far this emulator on this machine sits from the bound.

Each organization needs a read, then a write: the lower bound of any client keeping P
requests in flight is N x 2L / P (1,000 x 120 ms / 16 = 7.5 s). Printed alongside: the
CPU time of the apply process per HTTP request (2N), and the emulator's.

    .venv/bin/python bench/apply_bench.py [--orgs 1000] [--latency-ms 60] [--repeat 5]
    .venv/bin/python bench/apply_bench.py --profile apply.prof  # one more apply, cProfile'd
                                          [--parallelism 16,64] [--json FILE]

Targets (medians): apply within 1.12x the bound at P=16 and 1.40x at
P=64. Exit status 0 when every target is met, 1 when one is missed (or an apply was
wrong), 2 when the benchmark itself could not run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import rig

TARGET_BOUND = {16: 1.12, 64: 1.40}  # apply / (N x 2L / P), at most, by parallelism
UNTIMED_PARALLELISM = "64"  # the plans around each apply


def untimed(argv: list[str], endpoint: rig.Endpoint, cwd: Path) -> int:
    """A policysync command that is not timed: its exit code; BenchError when it failed."""
    done = subprocess.run(
        argv,
        cwd=cwd,
        env=endpoint.env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=rig.RUN_TIMEOUT,
        check=False,
    )
    if done.returncode not in (0, 2):
        raise rig.BenchError(f"`{' '.join(argv[1:3])}` exited {done.returncode}: {done.stderr}")
    return done.returncode


@dataclass
class Outcome:
    applied: int
    problems: list[str]  # the first stale or failed organizations
    plan_after_empty: bool
    floor: float | None


def one_apply(
    args: argparse.Namespace,
    base: Path,
    name: str,
    series: rig.Series,
    parallelism: int,
    loop: str,
    floor_puts: dict[str, bytes] | None,
    profile: Path | None = None,
) -> Outcome:
    """Fresh emulator, untimed plan, timed apply (added to `series`), untimed check, and
    the emulator's floor when `floor_puts` are given."""
    work = base / name
    tree, policysync = base / "tree", rig.policysync()
    with rig.Emulator(base / "seed.json", work, args.latency_ms) as emulator:
        endpoint = emulator.endpoint
        saved = work / "plan.json"
        plan = [*policysync, "plan", "--policies", str(tree), "--parallelism"]
        if untimed([*plan, UNTIMED_PARALLELISM, "--out", str(saved)], endpoint, work) != 0:
            raise rig.BenchError(f"policysync plan --out saved no plan in {work}")
        command = rig.policysync(loop)
        if profile is not None:
            command = [sys.executable, "-m", "cProfile", "-o", str(profile), "-m", "policysync"]
        argv = [*command, "apply", str(saved), "--auto-approve", "--allow-delete", "--force"]
        argv += ["--parallelism", str(parallelism), "--format", "json"]
        argv += ["--journal", str(work / "journal")]
        before = emulator.cpu_seconds()
        run = rig.run(argv, work, work / "result.json", endpoint.env())
        after = emulator.cpu_seconds()
        if run.returncode not in (0, 1):
            raise rig.BenchError(f"policysync apply exited {run.returncode}: {run.stderr[-2000:]}")
        series.runs.append(run)
        if before is not None and after is not None:
            series.server_cpu.append(after - before)
        result = json.loads((work / "result.json").read_text(encoding="utf-8"))
        problems = [
            f"{o['organization_id']}: {o['result']}: {(o.get('error') or {}).get('message')}"
            for o in result.get("organizations", [])
            if o["result"] in ("stale", "failed")
        ]
        check = [*plan, UNTIMED_PARALLELISM, "--detailed-exitcode"]
        empty = untimed(check, endpoint, work) == 0
        floor = None
        if floor_puts is not None:
            floor = rig.raw_floor(endpoint, list(floor_puts), parallelism, floor_puts)
    return Outcome(int(result["applied"]), problems[:3], empty, floor)


def bench(args: argparse.Namespace, base: Path) -> bool:
    machine = rig.header("policysync apply benchmark")
    n, pars, latency = args.orgs, args.parallelism, args.latency_ms / 1000
    loops = ["asyncio"]  # policysync runs on asyncio's event loop
    fixture = rig.make_fixture(n, args.seed, 1.0)
    rig.write_tree(base / "tree", fixture.orgs)
    rig.write_seed(base / "seed.json", fixture, n)
    expected = fixture.expected(n)
    puts = {  # the floor's PUTs: each organization's file, as apply sends it
        doc["organization_id"]: json.dumps({"org_policy": doc["org_policy"]}).encode()
        for doc in fixture.docs
    }
    print(
        f"tree: {n:,} organization files + project.json, seed {args.seed}; every one differs "
        f"live: {expected['add']} roles missing live, {expected['destroy']} extra live (to "
        f"delete), {expected['change']} with other actions\n"
        f"each apply: a fresh emulator ({args.latency_ms:g} ms on every answer), an untimed "
        f"plan --out, the timed apply ({2 * n:,} requests), an untimed plan that must be empty"
    )

    series = {
        (loop, p): rig.Series(f"P={p} {loop}", requests=2 * n) for p in pars for loop in loops
    }
    floors: dict[int, list[float]] = {p: [] for p in pars}
    correct = True
    for i in range(args.repeat):
        for loop in loops if i % 2 == 0 else loops[::-1]:
            for p in pars:
                s = series[loop, p]
                floor_puts = puts if loop == loops[0] else None
                out = one_apply(args, base, f"run{i}-{loop}-{p}", s, p, loop, floor_puts)
                ok = out.applied == n and s.runs[-1].returncode == 0 and out.plan_after_empty
                correct = correct and ok
                if out.floor is not None:
                    floors[p].append(out.floor)
                print(
                    f"  round {i + 1}, P={p:<3} {loop:8} apply {s.runs[-1].wall:.3f} s, CPU "
                    f"{s.runs[-1].cpu:.2f} s: {out.applied:,} applied, plan after it "
                    + ("empty" if out.plan_after_empty else "NOT EMPTY")
                    + (f"; emulator floor {out.floor:.3f} s" if out.floor is not None else "")
                    + ("" if ok else f"  WRONG {out.problems}")
                )
    if args.profile is not None:
        profiled = rig.Series("profiled")
        p = pars[0]
        one_apply(args, base, "profiled", profiled, p, loops[0], None, args.profile.resolve())
        print(f"  one more apply under cProfile: {profiled.median:.3f} s, in {args.profile}")

    print(
        "\npolicysync apply plan.json --auto-approve --allow-delete --force --parallelism P, "
        "the whole command, medians (range) of interleaved runs; lower bound N x 2L / P"
    )
    targets: list[rig.Target] = []
    for p in pars:
        bound = n * 2 * latency / p
        floor = statistics.median(floors[p])
        print(
            f"  P={p}: bound {n:,} x {2 * args.latency_ms:g} ms / {p} = {bound:.3f} s; emulator "
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
            targets.append(rig.Target(f"apply P={p} / bound", ratio, TARGET_BOUND[p]))

    print()
    rows = [t.row() for t in targets]
    mark = "PASS" if correct else "MISS"
    rows.append(("every org applied, plan empty after", "yes" if correct else "NO", "", mark))
    rig.table(rows)
    if args.profile is not None and args.profile.exists():
        rig.print_profile(args.profile, 30)
    met = correct and all(t.met for t in targets)
    rig.write_json(
        args.json,
        {
            "benchmark": "apply",
            "machine": machine,
            "orgs": n,
            "latency_ms": args.latency_ms,
            "seed": args.seed,
            "expected": expected,
            "applies": {f"{loop} P={p}": s.summary() for (loop, p), s in series.items()},
            "bounds_s": {str(p): n * 2 * latency / p for p in pars},
            "emulator_floors_s": {str(p): f for p, f in floors.items()},
            "targets": [{**t.__dict__, "met": t.met} for t in targets],
            "correct": correct,
            "met": met,
        },
    )
    return met


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = rig.latency_parser(__doc__, "apply", 1_000, "organizations, all changed")
    return rig.latency_args(p, argv)


if __name__ == "__main__":
    sys.exit(rig.main(bench, parse_args(None)))
