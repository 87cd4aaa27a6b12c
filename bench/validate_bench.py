"""Benchmark behind `make bench`: `policysync validate` against `check-jsonschema`.

Generates a valid policy tree (a copy of `policies/project.json` and N organization files
of 1 to 6 roles each, from a seeded RNG) and times, as whole commands (wall clock,
interpreter start-up included, as a user experiences them), in the same run:

- `policysync validate <tree>`: schema *and* semantic checks;
- `check-jsonschema --schemafile schemas/org-policy.schema.json <every org file>`: schema
  checks alone, in one invocation.

Runs of the two tools are interleaved (A B A B ...) so that machine noise hits both.
Target: policysync at least 5x faster. Then policysync alone at several sizes, for a
linear fit (intercept = start-up cost, slope = per-file cost).

    .venv/bin/python bench/validate_bench.py [--files 10000] [--repeat 5] [--json FILE]

Standard library only; exit status 0 when the target is met, 1 when it is missed, 2 when
the benchmark itself could not run (a tool missing or failing on the valid tree).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from generate import ORG_WORDS, load_resources, make_org, project_role_ids

REPO = Path(__file__).resolve().parent.parent
PROJECT_JSON = REPO / "policies" / "project.json"
ORG_SCHEMA = REPO / "schemas" / "org-policy.schema.json"

TARGET_RATIO = 5.0
LINEAR_R2 = 0.98
DEFAULT_SIZES = (1_000, 2_500, 5_000, 10_000)
DEFAULT_SEED = 20_240_601
ARGV_HEADROOM = 64 * 1024  # bytes kept free below ARG_MAX
MARKER = ".policysync-bench"  # marks an --out folder as ours to delete


def make_orgs(count: int, seed: int, project_json: Path) -> list[tuple[str, str]]:
    """(file name, JSON text) of `count` organization files, the same for the same seed."""
    rng = random.Random(seed)
    resources = load_resources(project_json)
    reserved = project_role_ids(project_json)
    out = []
    seen_ids: set[str] = set()
    for i in range(count):
        doc = make_org(rng, resources)
        role_ids = [r["role_id"] for r in doc["org_policy"]["roles"]]
        assert len(set(role_ids)) == len(role_ids), role_ids
        assert not reserved & set(role_ids), role_ids
        assert doc["organization_id"] not in seen_ids
        seen_ids.add(doc["organization_id"])
        name = f"{rng.choice(ORG_WORDS)}-{i:05d}.json"
        # both layouts that people (and `policysync export`) write
        text = json.dumps(doc, indent=2 if rng.random() < 0.7 else None) + "\n"
        out.append((name, text))
    return out


def write_tree(root: Path, orgs: Sequence[tuple[str, str]], project_json: Path) -> list[Path]:
    """`root/project.json` and `root/orgs/*.json`; returns the org files, relative to root."""
    (root / "orgs").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(project_json, root / "project.json")
    paths = []
    for name, text in orgs:
        (root / "orgs" / name).write_text(text, encoding="utf-8")
        paths.append(Path("orgs") / name)
    return paths


# --- running and timing -------------------------------------------------------------


@dataclass
class Run:
    wall: float
    cpu: float  # user + sys of the child


@dataclass
class Series:
    label: str
    runs: list[Run] = field(default_factory=list)

    @property
    def walls(self) -> list[float]:
        return [r.wall for r in self.runs]

    @property
    def median(self) -> float:
        return statistics.median(self.walls)

    @property
    def minimum(self) -> float:
        return min(self.walls)

    @property
    def cpu_median(self) -> float:
        return statistics.median(r.cpu for r in self.runs)

    def summary(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "runs": len(self.runs),
            "median_s": self.median,
            "min_s": self.minimum,
            "cpu_median_s": self.cpu_median,
            "wall_s": self.walls,
        }


class BenchError(Exception):
    """The benchmark cannot go on (a tool missing, or failing on the valid tree)."""


def run_timed(argvs: Sequence[Sequence[str]], cwd: Path, expect: int = 0) -> Run:
    """Run the commands one after the other; wall clock and child CPU of all of them."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    for argv in argvs:
        proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False)
        if proc.returncode != expect:
            shown = " ".join(argv[:4]) + (" ..." if len(argv) > 4 else "")
            raise BenchError(
                f"`{shown}` exited {proc.returncode}, expected {expect}\n"
                f"stdout: {proc.stdout[-2000:]}\nstderr: {proc.stderr[-2000:]}"
            )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Run(wall, cpu)


def argv_bytes(argv: Sequence[str]) -> int:
    """What execve counts against ARG_MAX: the strings and their pointers."""
    return sum(len(os.fsencode(a)) + 1 + 8 for a in argv)


def split_argv(head: Sequence[str], files: Sequence[str]) -> list[list[str]]:
    """One command when it fits in ARG_MAX; otherwise as few as fit, as xargs would."""
    limit = os.sysconf("SC_ARG_MAX") - argv_bytes([f"{k}={v}" for k, v in os.environ.items()])
    limit -= ARGV_HEADROOM
    chunks: list[list[str]] = []
    current = list(head)
    size = argv_bytes(current)
    for f in files:
        cost = argv_bytes([f])
        if size + cost > limit and len(current) > len(head):
            chunks.append(current)
            current, size = list(head), argv_bytes(head)
        current.append(f)
        size += cost
    chunks.append(current)
    return chunks


def tool(name: str) -> str:
    """The tool next to this interpreter (the venv's), else on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which(name)
    if found is None:
        hint = " (pip install -e '.[bench]')" if name == "check-jsonschema" else ""
        raise BenchError(f"{name} not found next to {sys.executable} nor on PATH{hint}")
    return found


def version_of(exe: str) -> str:
    proc = subprocess.run([exe, "--version"], capture_output=True, text=True, check=False)
    return proc.stdout.strip().split()[-1] if proc.returncode == 0 and proc.stdout else "?"


# --- statistics ---------------------------------------------------------------------


def linear_fit(xs: Sequence[float], ys: Sequence[float]) -> tuple[float, float, float]:
    """Least squares y = a + b x: (intercept a, slope b, R^2)."""
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    slope = sxy / sxx
    intercept = my - slope * mx
    ss_res = sum((y - (intercept + slope * x)) ** 2 for x, y in zip(xs, ys, strict=True))
    ss_tot = sum((y - my) ** 2 for y in ys)
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else 1.0
    return intercept, slope, r2


# --- the benchmark ------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--files", type=int, default=10_000, help="organization files (10000)")
    p.add_argument("--repeat", type=int, default=5, help="interleaved runs of each tool (5)")
    p.add_argument(
        "--sizes",
        default=",".join(str(s) for s in DEFAULT_SIZES),
        help="tree sizes for the linearity runs of policysync (1000,2500,5000,10000)",
    )
    p.add_argument("--size-repeat", type=int, default=3, help="runs at each size (3)")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, help="RNG seed of the tree")
    p.add_argument(
        "--budget",
        type=float,
        default=480.0,
        help="seconds the timed runs may take; check-jsonschema repetitions are reduced "
        "to fit (480)",
    )
    p.add_argument("--out", type=Path, help="write (and keep) the trees here, e.g. bench/out")
    p.add_argument("--json", type=Path, metavar="FILE", help="also write every figure here")
    args = p.parse_args(argv)
    args.size_list = sorted({int(s) for s in str(args.sizes).split(",") if s.strip()})
    if args.files < 1 or args.repeat < 1 or args.size_repeat < 1 or min(args.size_list) < 1:
        p.error("--files, --repeat, --size-repeat and --sizes must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return bench(args)
    except BenchError as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 2


def bench(args: argparse.Namespace) -> int:
    policysync = tool("policysync")
    check_jsonschema = tool("check-jsonschema")
    if args.out is not None:
        base = args.out.resolve()
        if base.exists() and any(base.iterdir()):
            if not (base / MARKER).exists():
                raise BenchError(f"{base} is not empty and was not written by this benchmark")
            shutil.rmtree(base)
        base.mkdir(parents=True, exist_ok=True)
        (base / MARKER).write_text("written by bench/validate_bench.py\n", encoding="utf-8")
        cleanup = False
    else:
        base = Path(tempfile.mkdtemp(prefix="policysync-bench-"))
        cleanup = True
    try:
        return _bench(args, base, policysync, check_jsonschema)
    finally:
        if cleanup:
            shutil.rmtree(base, ignore_errors=True)


def _bench(args: argparse.Namespace, base: Path, policysync: str, cjs: str) -> int:
    n = args.files
    versions = {
        "policysync": version_of(policysync),
        "check-jsonschema": version_of(cjs),
        "python": platform.python_version(),
    }
    print(
        f"policysync validate benchmark: policysync {versions['policysync']}, "
        f"check-jsonschema {versions['check-jsonschema']}, Python {versions['python']}, "
        f"{os.cpu_count()} CPUs, {platform.system()} {platform.machine()}"
    )

    # -- trees: one per size, each the first n files of the same generated sequence
    t0 = time.perf_counter()
    all_orgs = make_orgs(max(n, *args.size_list), args.seed, PROJECT_JSON)
    trees: dict[int, tuple[Path, list[Path]]] = {}
    for size in sorted({n, *args.size_list}):
        root = base / f"n{size}"
        trees[size] = (root, write_tree(root, all_orgs[:size], PROJECT_JSON))
    roles = sum(len(json.loads(t)["org_policy"]["roles"]) for _, t in all_orgs[:n])
    nbytes = sum(len(t.encode()) for _, t in all_orgs[:n])
    print(
        f"tree: {n:,} organization files + project.json, {roles:,} roles "
        f"({roles / n:.2f} per file), {nbytes / 1e6:.1f} MB, seed {args.seed}; "
        f"written in {time.perf_counter() - t0:.1f} s under {base}"
    )

    # -- the two commands, run from `base` with relative paths (shorter argv)
    root, org_files = trees[n]
    ps_cmd = [[policysync, "validate", root.name]]
    head = [cjs, "--schemafile", str(ORG_SCHEMA)]
    cj_cmd = split_argv(head, [str(Path(root.name) / p) for p in org_files])
    cj_note = (
        "1 invocation"
        if len(cj_cmd) == 1
        else f"{len(cj_cmd)} invocations (argv over ARG_MAX, split as xargs would)"
    )
    print(f"check-jsonschema: {cj_note}, argv {argv_bytes(cj_cmd[0]) / 1024:.0f} KiB")

    # -- sanity: both reject a broken file (so neither is timing a no-op)
    bad_root = base / "broken"
    bad_files = write_tree(bad_root, all_orgs[:1], PROJECT_JSON)
    broken = json.loads(all_orgs[0][1])
    broken["org_policy"]["roles"][0]["permissions"][0]["resource_id"] = 7
    (bad_root / bad_files[0]).write_text(json.dumps(broken), encoding="utf-8")
    run_timed([[policysync, "validate", "broken"]], base, expect=1)
    run_timed([[*head, str(Path("broken") / bad_files[0])]], base, expect=1)

    # -- warm-up (page cache, .pyc); asserts both succeed on the valid tree
    warm_ps = run_timed(ps_cmd, base)
    warm_cj = run_timed(cj_cmd, base)
    print(
        f"warm-up (not counted; both exit 0 on the valid tree): policysync "
        f"{warm_ps.wall:.2f} s, check-jsonschema {warm_cj.wall:.2f} s"
    )

    # -- start-up alone
    startup = {"policysync": Series("policysync --version")}
    startup["check-jsonschema"] = Series("check-jsonschema --version")
    for _ in range(3):
        startup["policysync"].runs.append(run_timed([[policysync, "--version"]], base))
        startup["check-jsonschema"].runs.append(run_timed([[cjs, "--version"]], base))
    print(
        f"start-up alone (`--version`, median of 3): policysync "
        f"{startup['policysync'].median:.3f} s, check-jsonschema "
        f"{startup['check-jsonschema'].median:.3f} s"
    )

    # -- budget: fewer check-jsonschema runs if it would not fit
    per_file = warm_ps.wall / n
    linear_est = sum(args.size_repeat * per_file * s for s in args.size_list)
    cj_repeat = args.repeat
    spare = args.budget - args.repeat * warm_ps.wall - linear_est
    if cj_repeat * warm_cj.wall > spare:
        cj_repeat = max(1, int(spare // warm_cj.wall))
    if cj_repeat < args.repeat:
        print(
            f"note: check-jsonschema takes {warm_cj.wall:.0f} s a run; its repetitions are "
            f"reduced from {args.repeat} to {cj_repeat} to stay within --budget "
            f"{args.budget:.0f} s"
        )

    # -- A B A B ...
    ps = Series("policysync validate")
    cj = Series("check-jsonschema")
    for i in range(args.repeat):
        ps.runs.append(run_timed(ps_cmd, base))
        if i < cj_repeat:
            cj.runs.append(run_timed(cj_cmd, base))
    ratio = cj.median / ps.median
    ratio_min = cj.minimum / ps.minimum
    verdict = "PASS" if ratio >= TARGET_RATIO else "MISS"
    print()
    print(f"N = {n:,} organization files; wall clock of the whole command, interleaved runs")
    print(f"  {'':30} {'runs':>4} {'median':>9} {'min':>9} {'cpu med':>9}")
    for s, what in ((ps, "schema + semantic checks"), (cj, f"schema only, {cj_note}")):
        print(
            f"  {s.label:30} {len(s.runs):>4} {s.median:>8.3f}s {s.minimum:>8.3f}s "
            f"{s.cpu_median:>8.3f}s  {what}"
        )
    print(
        f"  ratio check-jsonschema / policysync: {ratio:.2f}x on medians ({ratio_min:.2f}x on mins)"
    )
    print(f"  target >= {TARGET_RATIO:.0f}x: {verdict}")

    # -- linearity: policysync at each size, sizes interleaved round-robin
    sizes = args.size_list
    by_size = {s: Series(f"policysync validate n={s}") for s in sizes}
    for _ in range(args.size_repeat):
        for s in sizes:
            by_size[s].runs.append(run_timed([[policysync, "validate", trees[s][0].name]], base))
    medians = [by_size[s].median for s in sizes]
    print()
    print(f"linearity: policysync validate, median of {args.size_repeat} at each size")
    print(f"  {'files':>8} {'median':>9} {'s / 1,000 files':>16}")
    for s, m in zip(sizes, medians, strict=True):
        print(f"  {s:>8,} {m:>8.3f}s {m / s * 1000:>16.3f}")
    fit: dict[str, Any] = {}
    if len(sizes) >= 2:
        intercept, slope, r2 = linear_fit([float(s) for s in sizes], medians)
        shape = "linear" if r2 >= LINEAR_R2 else "NOT linear"
        fit = {"intercept_s": intercept, "slope_s_per_file": slope, "r2": r2, "shape": shape}
        print(
            f"  fit: t = {intercept:.3f} s + {slope * 1000:.3f} ms/file x N   "
            f"(intercept = start-up, slope = per-file cost)   R^2 = {r2:.4f}: {shape}"
            f" (linear when R^2 >= {LINEAR_R2})"
        )

    if args.json is not None:
        figures = {
            "files": n,
            "seed": args.seed,
            "roles": roles,
            "bytes": nbytes,
            "versions": versions,
            "cpus": os.cpu_count(),
            "check_jsonschema_invocations": len(cj_cmd),
            "startup": {k: v.summary() for k, v in startup.items()},
            "warmup_s": {"policysync": asdict(warm_ps), "check-jsonschema": asdict(warm_cj)},
            "policysync": ps.summary(),
            "check_jsonschema": cj.summary(),
            "ratio_median": ratio,
            "ratio_min": ratio_min,
            "target_ratio": TARGET_RATIO,
            "verdict": verdict,
            "linearity": {
                "sizes": {str(s): by_size[s].summary() for s in sizes},
                "per_1000_files_s": {
                    str(s): m / s * 1000 for s, m in zip(sizes, medians, strict=True)
                },
                "fit": fit,
            },
        }
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
        print(f"\nfigures written to {args.json}")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
