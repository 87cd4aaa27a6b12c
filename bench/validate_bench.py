"""Benchmark behind `make bench`: `policysync validate` against `check-jsonschema`.

Writes a valid policy tree (a copy of `policies/project.json` and N generated organization
files) and times, as whole commands (wall clock, interpreter start-up included, as a user
experiences them), interleaved (A B A B ...) so that machine noise hits both:

- `policysync validate <tree>`: schema *and* semantic checks;
- `check-jsonschema --schemafile schemas/org-policy.schema.json <every org file>`: schema
  checks alone, in as few invocations as the argument list allows.

Target: policysync at least 8x faster (medians). Then policysync alone at several sizes,
for a linear fit (intercept = start-up cost, slope = per-file cost), and the same tree
with and without two house rules (`HOUSE_RULES`, JSON Schemas the tree satisfies),
interleaved: the cost of the house rules, reported (no target); and, interleaved too, a
tree whose organizations each write five shared roles out against the same tree with
those roles in one template: the cost (or saving) of expanding templates (no target).

    .venv/bin/python bench/validate_bench.py [--files 10000] [--repeat 3] [--json FILE]
                                             [--house-rules-only] [--templates-only]

Exit status 0 when the target is met, 1 when it is missed, 2 when the benchmark itself
could not run (a tool missing, or failing on the valid tree).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path

import rig
from rig import write_tree

TARGET_RATIO = 8.0  # check-jsonschema / policysync, at least
LINEAR_R2 = 0.98
DRAFT = "https://json-schema.org/draft/2020-12/schema"
# Two house rules, as a team might write them, that every generated file satisfies.
HOUSE_RULES = {
    "role-ids.json": {
        "$schema": DRAFT,
        "title": "role ids in kebab case",
        "properties": {
            "org_policy": {
                "properties": {
                    "roles": {
                        "items": {
                            "properties": {"role_id": {"pattern": "^[a-z][a-z0-9]*(-[a-z0-9]+)*$"}}
                        }
                    }
                }
            }
        },
    },
    "permissions.json": {
        "$schema": DRAFT,
        "title": "permissions well formed",
        "properties": {
            "org_policy": {
                "properties": {
                    "roles": {
                        "maxItems": 100,
                        "items": {
                            "properties": {
                                "description": {"maxLength": 500},
                                "permissions": {
                                    "minItems": 1,
                                    "items": {
                                        "required": ["resource_id", "actions"],
                                        "properties": {"actions": {"uniqueItems": True}},
                                    },
                                },
                            }
                        },
                    }
                }
            }
        },
    },
}
ARGV_HEADROOM = 64 * 1024  # bytes kept free below ARG_MAX


def argv_bytes(argv: Sequence[str]) -> int:
    """What execve counts against ARG_MAX: the strings and their pointers."""
    return sum(len(os.fsencode(a)) + 1 + 8 for a in argv)


def split_argv(head: Sequence[str], files: Sequence[str]) -> list[list[str]]:
    """One command when it fits in ARG_MAX; otherwise as few as fit, as xargs would."""
    limit = os.sysconf("SC_ARG_MAX") - argv_bytes([f"{k}={v}" for k, v in os.environ.items()])
    limit -= ARGV_HEADROOM
    chunks: list[list[str]] = []
    current, size = list(head), argv_bytes(head)
    for f in files:
        if size + argv_bytes([f]) > limit and len(current) > len(head):
            chunks.append(current)
            current, size = list(head), argv_bytes(head)
        current.append(f)
        size += argv_bytes([f])
    chunks.append(current)
    return chunks


def timed(argvs: Sequence[Sequence[str]], cwd: Path, expect: int = 0) -> rig.Run:
    """The commands one after the other, as one run: walls and CPU added up."""
    total = rig.Run(0.0, 0.0, 0)
    for argv in argvs:
        done = rig.run(argv, cwd, cwd / "out.txt")
        if done.returncode != expect:
            shown = " ".join(argv[:4]) + (" ..." if len(argv) > 4 else "")
            output = (cwd / "out.txt").read_text(errors="replace")[-2000:]
            raise rig.BenchError(
                f"`{shown}` exited {done.returncode}, expected {expect}\n"
                f"stdout: {output}\nstderr: {done.stderr[-2000:]}"
            )
        total.wall += done.wall
        total.cpu += done.cpu
    return total


def linear_fit(xs: Sequence[float], ys: Sequence[float]) -> tuple[float, float, float]:
    """Least squares y = a + b x: (intercept a, slope b, R^2)."""
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx
    intercept = my - slope * mx
    ss_res = sum((y - (intercept + slope * x)) ** 2 for x, y in zip(xs, ys, strict=True))
    ss_tot = sum((y - my) ** 2 for y in ys)
    return intercept, slope, 1.0 - ss_res / ss_tot if ss_tot > 0 else 1.0


def interleaved(
    base: Path, commands: dict[str, tuple[str, list[str]]], repeat: int, title: str
) -> dict[str, rig.Series]:
    """Each command (name -> label, argv) once to warm up, then `repeat` rounds of all
    of them in turn; the figures printed under `title`, and the last over the first."""
    runs = {name: rig.Series(label) for name, (label, _) in commands.items()}
    for _, argv in commands.values():  # warm-up, not counted
        timed([argv], base)
    for _ in range(repeat):
        for name, (_, argv) in commands.items():
            runs[name].runs.append(timed([argv], base))
    first, *_, last = runs
    print(f"\n{title}, interleaved runs")
    for series in runs.values():
        print(f"  {series.label:22} {series.spread():36} CPU {series.cpu:.2f} s")
    print(f"  {last} / {first}: {runs[last].median / runs[first].median:.2f}x (medians)")
    return runs


def house_rules(base: Path, tree: str, policysync: list[str], repeat: int) -> dict[str, rig.Series]:
    """`validate` of `tree` with and without the two `HOUSE_RULES`, interleaved."""
    (base / "house").mkdir(exist_ok=True)
    for name, schema in HOUSE_RULES.items():
        (base / "house" / name).write_text(json.dumps(schema), encoding="utf-8")
    (base / "without.toml").write_text(f'policies = "{tree}"\n', encoding="utf-8")
    (base / "with.toml").write_text(
        f'policies = "{tree}"\nhouse_rules = ["house/*.json"]\n', encoding="utf-8"
    )
    commands = {
        name: (label, [*policysync, "validate", "--config", f"{name}.toml"])
        for name, label in (("without", "without house rules"), ("with", "with 2 rules"))
    }
    return interleaved(base, commands, repeat, f"house rules: policysync validate of {tree}")


def templates(base: Path, n: int, policysync: list[str], repeat: int) -> dict[str, rig.Series]:
    """`validate` of n organizations that share five roles, written out in every file
    (`inlined`) or given by one template (`templated`), interleaved."""
    shared = [
        {
            "role_id": f"shared-{k}",
            "description": "a role every organization has",
            "permissions": [
                {"resource_id": "invoices", "actions": ["approve", "read"]},
                {"resource_id": "reports", "actions": ["read"]},
            ],
        }
        for k in range(5)
    ]
    for name in ("inlined", "templated"):
        orgs = []
        for i in range(n):
            own = [
                {
                    "role_id": f"own-{i}",
                    "description": "this organization's own",
                    "permissions": [{"resource_id": "documents", "actions": ["read"]}],
                }
            ]
            head = {"organization_id": f"organization-{i:06d}"}
            if name == "inlined":
                document = head | {"org_policy": {"roles": shared + own}}
            else:
                document = head | {"templates": ["standard"], "org_policy": {"roles": own}}
            orgs.append((f"org-{i:06d}.json", json.dumps(document, indent=2)))
        write_tree(base / name, orgs)
    (base / "templated" / "templates").mkdir()
    (base / "templated" / "templates" / "standard.json").write_text(
        json.dumps({"roles": shared}, indent=2), encoding="utf-8"
    )
    commands = {
        name: (label, [*policysync, "validate", name])
        for name, label in (("inlined", "5 shared roles inlined"), ("templated", "in one template"))
    }
    return interleaved(
        base, commands, repeat, f"templates: policysync validate of {n:,} organizations"
    )


def bench(args: argparse.Namespace, base: Path) -> bool:
    machine = rig.header("policysync validate benchmark")
    policysync = rig.policysync()
    if args.templates_only or args.house_rules_only:
        if args.templates_only:
            key, runs = "templates", templates(base, args.files, policysync, args.repeat)
        else:
            write_tree(base / f"n{args.files}", rig.make_fixture(args.files, args.seed).orgs)
            key, runs = "house_rules", house_rules(base, f"n{args.files}", policysync, args.repeat)
        rig.write_json(
            args.json,
            {
                "benchmark": f"validate {key.replace('_', ' ')}",
                "machine": machine,
                "files": args.files,
                key: {k: v.summary() for k, v in runs.items()},
            },
        )
        return True
    cjs = rig.tool("check-jsonschema")
    print(f"check-jsonschema {rig.version('check-jsonschema')}")
    n = args.files
    sizes = sorted(set(args.sizes))
    fixture = rig.make_fixture(max(n, *sizes), args.seed)
    trees = {size: write_tree(base / f"n{size}", fixture.orgs[:size]) for size in {n, *sizes}}
    roles = sum(len(d["org_policy"]["roles"]) for d in fixture.docs[:n])
    print(
        f"tree: {n:,} organization files + project.json, {roles:,} roles, "
        f"{sum(len(t) for _, t in fixture.orgs[:n]) / 1e6:.1f} MB, seed {args.seed}"
    )

    # from `base`, with relative paths (a shorter argv)
    ps_cmd = [[*policysync, "validate", f"n{n}"]]
    head = [cjs, "--schemafile", str(rig.ORG_SCHEMA)]
    cj_cmd = split_argv(head, [str(Path(f"n{n}") / p) for p in trees[n]])
    print(f"check-jsonschema: {len(cj_cmd)} invocation(s), argv {argv_bytes(cj_cmd[0]) >> 10} KiB")

    # both reject a broken file (neither is timing a no-op)
    broken_root = base / "broken"
    broken_file = write_tree(broken_root, fixture.orgs[:1])[0]
    broken = fixture.docs[0] | {"org_policy": {"roles": [{"role_id": 7, "permissions": []}]}}
    (broken_root / broken_file).write_text(json.dumps(broken), encoding="utf-8")
    timed([[*policysync, "validate", "broken"]], base, expect=1)
    timed([[*head, str(Path("broken") / broken_file)]], base, expect=1)

    warm_ps, warm_cj = timed(ps_cmd, base), timed(cj_cmd, base)  # page cache, bytecode
    print(
        f"warm-up (not counted): policysync {warm_ps.wall:.2f} s, check-jsonschema "
        f"{warm_cj.wall:.2f} s"
    )
    startup = {"policysync": rig.Series("policysync --version")}
    startup["check-jsonschema"] = rig.Series("check-jsonschema --version")
    for _ in range(3):
        startup["policysync"].runs.append(timed([[*policysync, "--version"]], base))
        startup["check-jsonschema"].runs.append(timed([[cjs, "--version"]], base))

    ps = rig.Series("policysync validate")
    cj = rig.Series("check-jsonschema")
    for _ in range(args.repeat):
        ps.runs.append(timed(ps_cmd, base))
        cj.runs.append(timed(cj_cmd, base))
    ratio = cj.median / ps.median
    target = rig.Target("check-jsonschema / policysync", ratio, TARGET_RATIO, at_least=True)
    print(f"\nN = {n:,} organization files; the whole command, wall clock, interleaved runs")
    for s, what in ((ps, "schema + semantic checks"), (cj, "schema checks only")):
        print(f"  {s.label:22} {s.spread():36} CPU {s.cpu:.2f} s   {what}")
    print(
        f"  start-up alone (--version, median of 3): policysync "
        f"{startup['policysync'].median:.3f} s, check-jsonschema "
        f"{startup['check-jsonschema'].median:.3f} s"
    )
    print(f"  ratio on the fastest runs: {min(cj.walls) / min(ps.walls):.2f}x")
    rig.table([target.row()])

    by_size = {s: rig.Series(f"n={s}") for s in sizes}
    for _ in range(args.size_repeat):
        for s in sizes:
            by_size[s].runs.append(timed([[*policysync, "validate", f"n{s}"]], base))
    medians = [by_size[s].median for s in sizes]
    print(f"\nlinearity: policysync validate, median of {args.size_repeat} at each size")
    for s, m in zip(sizes, medians, strict=True):
        print(f"  {s:>8,} files {m:8.3f} s   {m / s * 1000:.3f} s per 1,000 files")
    fit = {}
    if len(sizes) >= 2:
        intercept, slope, r2 = linear_fit([float(s) for s in sizes], medians)
        shape = "linear" if r2 >= LINEAR_R2 else "NOT linear"
        fit = {"intercept_s": intercept, "slope_s_per_file": slope, "r2": r2}
        print(
            f"  fit: t = {intercept:.3f} s + {slope * 1000:.3f} ms/file x N, R^2 = {r2:.4f}: "
            f"{shape} (when R^2 >= {LINEAR_R2})"
        )

    house = house_rules(base, f"n{n}", policysync, args.repeat)
    shared = templates(base, n, policysync, args.repeat)

    rig.write_json(
        args.json,
        {
            "benchmark": "validate",
            "machine": machine,
            "check_jsonschema": rig.version("check-jsonschema"),
            "files": n,
            "seed": args.seed,
            "startup": {k: v.summary() for k, v in startup.items()},
            "policysync": ps.summary(),
            "check-jsonschema": cj.summary(),
            "target": {**target.__dict__, "met": target.met},
            "linearity": {"sizes": {str(s): by_size[s].summary() for s in sizes}, "fit": fit},
            "house_rules": {k: v.summary() for k, v in house.items()},
            "templates": {k: v.summary() for k, v in shared.items()},
        },
    )
    return target.met


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--files", type=int, default=10_000, help="organization files (10000)")
    p.add_argument("--repeat", type=int, default=3, help="interleaved runs of each tool (3)")
    p.add_argument(
        "--sizes",
        type=rig.int_list,
        default=[1_000, 2_500, 5_000, 10_000],
        help="tree sizes of the linearity runs (1000,2500,5000,10000)",
    )
    p.add_argument("--size-repeat", type=int, default=3, help="runs at each size (3)")
    p.add_argument("--seed", type=int, default=rig.DEFAULT_SEED, help="RNG seed of the tree")
    p.add_argument("--json", type=Path, metavar="FILE", help="also write every figure here")
    p.add_argument(
        "--house-rules-only",
        action="store_true",
        help="only validate with and without two house rules (no check-jsonschema)",
    )
    p.add_argument(
        "--templates-only",
        action="store_true",
        help="only validate shared roles inlined and in one template (no check-jsonschema)",
    )
    args = p.parse_args(argv)
    if min(args.files, args.repeat, args.size_repeat) < 1:
        p.error("--files, --repeat and --size-repeat must be positive")
    return args


if __name__ == "__main__":
    sys.exit(rig.main(bench, parse_args(None)))
