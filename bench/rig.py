"""What the benchmarks share: the fixtures, the emulator, timed runs, and the reporting.

Every script in bench/ imports this module and no other of the folder. Standard library
only. The benchmarks go through the `policysync` command and `policysync emulator`, never
through policysync's modules, so that they measure what a user runs.

The fixture: N organization files of 1 to 6 roles each, from a seeded RNG (the first n of
a larger fixture are the same n files), and the live state an emulator is seeded with, in
which a chosen share of the organizations differ from their files (a role missing live,
an extra role live, or a role whose actions differ).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import copy
import datetime
import importlib.metadata
import importlib.util
import json
import os
import platform
import pstats
import random
import re
import selectors
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

REPO = Path(__file__).resolve().parent.parent
PROJECT_JSON = REPO / "policies" / "project.json"
ORG_SCHEMA = REPO / "schemas" / "org-policy.schema.json"
DEFAULT_SEED = 20_240_601
LATENCY_MS = 60.0  # a request to Stytch's API from CI, as the targets assume
RUN_TIMEOUT = 600.0  # seconds, any one command
SAMPLE_EVERY = 0.02  # seconds between /proc samples of a memory run


class BenchError(Exception):
    """The benchmark could not run (as opposed to: it ran and missed a target)."""


# --- the fixture ------------------------------------------------------------------------

ROLE_NAMES = (
    *("invoice-approver", "auditor", "contractor", "support-agent", "report-viewer"),
    *("finance-analyst", "document-reviewer", "compliance-officer", "sso-manager"),
    *("scim-operator", "member-manager", "read-only", "external-accountant"),
    *("billing-viewer", "data-exporter", "legal-reviewer", "security-admin", "it-admin"),
    *("team-lead", "intern", "partner-portal-user", "procurement", "hr-coordinator"),
    "ops-on-call",
)
ROLE_SUFFIXES = ("", "", "", "", "-emea", "-us", "-apac", "-tier2", "-temp", "-2024")
ORG_WORDS = (
    *("acme", "globex", "hooli", "initech", "umbrella", "stark", "wayne", "wonka", "tyrell"),
    *("cyberdyne", "soylent", "massive", "vandelay", "pied-piper", "aperture", "oscorp"),
)
VERBS = ("Approves", "Reads", "Manages", "Reviews", "Exports", "Audits", "Edits", "Oversees")
OBJECTS = (
    *("invoices", "customer documents", "analytics reports", "the audit trail"),
    *("SSO connections", "SCIM provisioning", "member accounts", "quarterly statements"),
)
QUALIFIERS = (
    "up to the finance team's limit",
    "for the external auditor",
    "during the onboarding period",
    "on behalf of the regional office",
    "for the compliance programme",
    "as agreed in the master services agreement",
    "without access to payment settings",
    "for incident response; granted for on-call rotations only and reviewed every quarter",
)
KINDS = ("create", "delete", "update")  # a seeded difference, named by what the plan shows


def project_policy() -> dict[str, Any]:
    policy: dict[str, Any] = json.loads(PROJECT_JSON.read_text(encoding="utf-8"))["policy"]
    return policy


def make_org(rng: random.Random, resources: dict[str, list[str]]) -> dict[str, Any]:
    """One valid organization file: 1-6 roles, 1-4 permissions each, 1-5 actions each."""
    custom = [r for r in resources if not r.startswith("stytch.")]
    stytch = [r for r in resources if r.startswith("stytch.")]
    roles: list[dict[str, Any]] = []
    for name in rng.sample(ROLE_NAMES, rng.randint(1, 6)):
        # mostly the project's own resources, sometimes Stytch's defaults
        pool = custom if rng.random() < 0.8 else custom + stytch
        permissions = []
        for resource_id in rng.sample(pool, min(rng.randint(1, 4), len(pool))):
            declared = resources[resource_id]
            if rng.random() < 0.1:
                actions = ["*"]
            else:
                actions = rng.sample(declared, rng.randint(1, min(5, len(declared))))
            permissions.append({"resource_id": resource_id, "actions": actions})
        role: dict[str, Any] = {"role_id": name + rng.choice(ROLE_SUFFIXES)}
        if rng.random() >= 0.15:  # else no description at all
            count = rng.choice((1, 1, 1, 2, 3))
            role["description"] = " ".join(
                f"{rng.choice(VERBS)} {rng.choice(OBJECTS)} {rng.choice(QUALIFIERS)}."
                for _ in range(count)
            )
        role["permissions"] = permissions
        roles.append(role)
    org_uuid = uuid.UUID(int=rng.getrandbits(128), version=4)
    return {
        "$schema": "../../schemas/org-policy.schema.json",
        "organization_id": f"organization-test-{org_uuid}",
        "org_policy": {"roles": roles},
    }


def _other_actions(actions: list[str], declared: list[str]) -> list[str]:
    """Other actions for one permission: a different set in every case."""
    if actions == ["*"]:
        return [declared[0]]
    missing = [a for a in declared if a not in actions]
    if missing:
        return [*actions, missing[0]]
    return actions[:-1] if len(actions) > 1 else ["*"]


def _perturb(
    policy: dict[str, Any], kind: str, rng: random.Random, resources: dict[str, list[str]]
) -> dict[str, Any]:
    live = copy.deepcopy(policy)
    roles = live["roles"]
    if kind == "create":  # a role of the file is missing live
        roles.pop(rng.randrange(len(roles)))
    elif kind == "update":  # a role's actions differ live
        permission = rng.choice(rng.choice(roles)["permissions"])
        permission["actions"] = _other_actions(
            permission["actions"], resources[permission["resource_id"]]
        )
    else:  # "delete": live holds a role the file does not
        taken = {r["role_id"] for r in roles}
        extra: list[dict[str, Any]] = []
        while not extra:
            extra = make_org(rng, resources)["org_policy"]["roles"]
            extra = [r for r in extra if r["role_id"] not in taken]
        roles.append(extra[0])
    return live


@dataclass
class Fixture:
    orgs: list[tuple[str, str]]  # (file name, JSON text)
    docs: list[dict[str, Any]]  # the same, parsed
    live: list[dict[str, Any]]  # the live org_policy of each
    kinds: list[str | None]  # the seeded difference of each; None: live equals the file

    def ids(self, n: int) -> list[str]:
        return [d["organization_id"] for d in self.docs[:n]]

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


def make_fixture(count: int, seed: int, share: float = 0.0) -> Fixture:
    """`count` organization files, and live policies of which `share` differ."""
    rng = random.Random(seed)
    policy = project_policy()
    resources = {r["resource_id"]: list(r["actions"]) for r in policy["resources"]}
    reserved = {r["role_id"] for r in policy["roles"]}
    orgs, docs = [], []
    for i in range(count):
        doc = make_org(rng, resources)
        name = f"{rng.choice(ORG_WORDS)}-{i:05d}.json"
        # both layouts that people (and `policysync export`) write
        text = json.dumps(doc, indent=2 if rng.random() < 0.7 else None) + "\n"
        orgs.append((name, text))
        docs.append(doc)
    kinds: list[str | None] = [None] * count
    rng = random.Random(seed + 1)
    for i in rng.sample(range(count), round(count * share)):
        kinds[i] = rng.choice(KINDS)
    live = [
        _perturb(d["org_policy"], k, rng, resources) if k else d["org_policy"]
        for d, k in zip(docs, kinds, strict=True)
    ]
    assert len({d["organization_id"] for d in docs}) == count
    for p in (*(d["org_policy"] for d in docs), *live):
        ids = [r["role_id"] for r in p["roles"]]
        assert len(set(ids)) == len(ids), ids
        assert not reserved & set(ids), ids
    return Fixture(orgs, docs, live, kinds)


def write_tree(
    root: Path, orgs: Sequence[tuple[str, str]], project_json: Path = PROJECT_JSON
) -> list[Path]:
    """`root/project.json` and `root/orgs/*.json`; the org files' paths from root."""
    (root / "orgs").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(project_json, root / "project.json")
    paths = []
    for name, text in orgs:
        (root / "orgs" / name).write_text(text, encoding="utf-8")
        paths.append(Path("orgs") / name)
    return paths


def seed_document(fixture: Fixture, n: int) -> dict[str, Any]:
    """An emulator seed: project.json's policy, the first n organizations as live."""
    organizations = [
        {
            "organization_id": doc["organization_id"],
            "organization_name": f"Bench {i}",
            "organization_slug": f"bench-{i:05d}",
            "org_policy": live,
        }
        for i, (doc, live) in enumerate(zip(fixture.docs[:n], fixture.live[:n], strict=True))
    ]
    return {"policy": project_policy(), "organizations": organizations}


def write_seed(path: Path, fixture: Fixture, n: int) -> Path:
    path.write_text(json.dumps(seed_document(fixture, n)), encoding="utf-8")
    return path


# --- commands ---------------------------------------------------------------------------


def tool(name: str) -> str:
    """The command next to this interpreter (the venv's), else on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise BenchError(f"{name} not found next to {sys.executable} nor on PATH")
    return found


def policysync(loop: str | None = None) -> list[str]:
    """The command that runs policysync: its console script, as installed (`loop` names
    the event loop in labels only: policysync runs on asyncio's)."""
    return [tool("policysync")]


@dataclass
class Run:
    wall: float
    cpu: float  # user + sys of the process and of the children it waited for
    returncode: int
    stderr: str = ""
    peak_kb: int | None = None  # sampled: the largest VmHWM of the process and its children
    pss_kb: int | None = None  # sampled: peak PSS of the whole process tree
    processes: int | None = None  # sampled: most processes in the tree at once


def run(
    argv: Sequence[str],
    cwd: Path,
    stdout: Path,
    env: dict[str, str] | None = None,
    sample_memory: bool = False,
) -> Run:
    """One command, stdout to a file, waited for with wait4(): its own rusage, not that of
    every child of this benchmark. With `sample_memory`, /proc read meanwhile: the peak is
    the largest VmHWM (which the kernel keeps per process) of the process and its
    children, not wait4's ru_maxrss, which Linux carries over exec() from the process that
    forked (this benchmark, and its fixtures)."""
    errors = stdout.with_suffix(".stderr")
    with stdout.open("wb") as out, errors.open("wb") as err:
        start = time.perf_counter()
        process = subprocess.Popen(
            argv, cwd=cwd, env=env, stdout=out, stderr=err, stdin=subprocess.DEVNULL
        )
    timer = threading.Timer(RUN_TIMEOUT, process.kill)
    timer.start()
    peak = pss = processes = 0
    sampled = sample_memory and Path(f"/proc/{process.pid}/status").exists()
    try:
        if sampled:
            while not (done := os.wait4(process.pid, os.WNOHANG))[0]:
                tree = _process_tree(process.pid)
                processes = max(processes, len(tree))
                peak = max(peak, *(_proc_kb(f"/proc/{p}/status", "VmHWM:") for p in tree))
                pss = max(pss, sum(_proc_kb(f"/proc/{p}/smaps_rollup", "Pss:") for p in tree))
                time.sleep(SAMPLE_EVERY)
        else:
            done = os.wait4(process.pid, 0)
        wall = time.perf_counter() - start
    finally:
        timer.cancel()
    _, status, usage = done
    process.returncode = os.waitstatus_to_exitcode(status)
    if wall >= RUN_TIMEOUT:
        raise BenchError(f"`{' '.join(argv[:2])}` did not finish within {RUN_TIMEOUT:.0f} s")
    result = Run(wall, usage.ru_utime + usage.ru_stime, process.returncode)
    result.stderr = errors.read_text(errors="replace").strip()
    if sampled:
        result.peak_kb, result.pss_kb, result.processes = peak, pss, processes
    return result


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


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a running process, from /proc (Linux); None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_cpu() -> tuple[float, float] | None:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat (Linux)."""
    try:
        first = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    except OSError:
        return None
    ticks = [int(x) for x in first[1:9]]  # user nice system idle iowait irq softirq steal
    tick = os.sysconf("SC_CLK_TCK")
    return (sum(ticks) - ticks[3] - ticks[4]) / tick, sum(ticks) / tick


# --- the emulator -----------------------------------------------------------------------

URL_LINE = re.compile(r" at (http://127\.0\.0\.1:(\d+)/)\s*$")


@dataclass(frozen=True)
class Endpoint:
    url: str
    project_id: str
    secret: str

    def env(self) -> dict[str, str]:
        """This environment, pointed at the emulator."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("STYTCH_")}
        env["STYTCH_BASE_URL"] = self.url
        env["STYTCH_PROJECT_ID"] = self.project_id
        env["STYTCH_SECRET"] = self.secret
        return env


class Emulator:
    """`policysync emulator --port 0` as a process of its own, its URL and credentials
    read from its first lines; stopped with SIGINT. Leaving the `with` block raises
    BenchError when it had exited during the run."""

    def __init__(
        self, seed_file: Path, workdir: Path, latency_ms: float = 0, profile: Path | None = None
    ) -> None:
        args = ["emulator", "--host", "127.0.0.1", "--port", "0", "--seed", str(seed_file)]
        if latency_ms > 0:
            args += ["--latency-ms", f"{latency_ms:g}"]
        if profile is None:
            self.command = [*policysync(), *args]
        else:
            cprofile = [sys.executable, "-m", "cProfile", "-o", str(profile)]
            self.command = [*cprofile, "-m", "policysync", *args]
        workdir.mkdir(parents=True, exist_ok=True)
        self.stderr_path = workdir / "emulator.stderr"
        self.process: subprocess.Popen[bytes] | None = None
        self.endpoint = Endpoint("", "", "")

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def __enter__(self) -> Emulator:
        env = {k: v for k, v in os.environ.items() if not k.startswith("STYTCH_")}
        env["PYTHONUNBUFFERED"] = "1"
        with self.stderr_path.open("wb") as stderr:
            self.process = subprocess.Popen(
                self.command,
                stdout=subprocess.PIPE,
                stderr=stderr,
                stdin=subprocess.DEVNULL,
                env=env,
            )
        try:
            match = URL_LINE.search(self._readline(60.0))
            if match is None:
                raise BenchError(f"the emulator printed no URL; {self.stderr()}")
            values: dict[str, str] = {}
            while "STYTCH_SECRET" not in values:  # the lines after the URL
                key, sep, value = self._readline(10.0).strip().partition("=")
                if not sep:
                    raise BenchError(f"the emulator printed no credentials; {self.stderr()}")
                values[key] = value
        except BaseException:
            self._stop()
            raise
        self.endpoint = Endpoint(match[1], values["STYTCH_PROJECT_ID"], values["STYTCH_SECRET"])
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        alive = self.process is not None and self.process.poll() is None
        self._stop()
        if exc_type is None and not alive:
            raise BenchError(f"the emulator exited during the run: {self.stderr()}")

    def _stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # uvicorn shuts down, cProfile writes
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()

    def stderr(self) -> str:
        """What it printed on stderr, less click's "Aborted." at SIGINT."""
        try:
            text = self.stderr_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(x for x in text.splitlines() if x.strip() not in ("", "Aborted."))

    def cpu_seconds(self) -> float | None:
        return cpu_seconds(self.pid)

    def _readline(self, timeout: float) -> str:
        assert self.process is not None
        assert self.process.stdout is not None
        stream = self.process.stdout
        deadline = time.monotonic() + timeout
        data = b""
        with selectors.DefaultSelector() as selector:
            selector.register(stream, selectors.EVENT_READ)
            while not data.endswith(b"\n"):
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not selector.select(remaining):
                    raise BenchError(f"the emulator printed nothing for {timeout:.0f} s")
                chunk = os.read(stream.fileno(), 1)
                if not chunk:
                    break
                data += chunk
        return data.decode(errors="replace")


def raw_floor(
    endpoint: Endpoint, ids: list[str], parallelism: int, puts: dict[str, bytes] | None = None
) -> float:
    """Seconds the thinnest client there is takes to read every organization (then, for
    one in `puts`, to PUT that body): `parallelism` keep-alive sockets sending bare
    requests and reading answers by their Content-Length, no JSON parsed. What this
    emulator on this machine takes to answer them: the floor of any client, which shows
    how far the emulator itself sits from the bound."""
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

    start = time.perf_counter()
    asyncio.run(main())
    return time.perf_counter() - start


# --- reporting --------------------------------------------------------------------------


@dataclass
class Series:
    """Runs of one command; `requests`: the HTTP requests one run makes (0: none)."""

    label: str
    requests: int = 0
    runs: list[Run] = field(default_factory=list)
    server_cpu: list[float] = field(default_factory=list)  # the emulator's, during each run

    @property
    def walls(self) -> list[float]:
        return [r.wall for r in self.runs]

    @property
    def median(self) -> float:
        return statistics.median(self.walls)

    @property
    def cpu(self) -> float:
        return statistics.median(r.cpu for r in self.runs)

    def spread(self) -> str:
        """The median and the range: 8.123 s (7.950-8.400, 3 runs)."""
        if len(self.runs) == 1:
            return f"{self.median:.3f} s (1 run)"
        low, high = min(self.walls), max(self.walls)
        return f"{self.median:.3f} s ({low:.3f}-{high:.3f}, {len(self.runs)} runs)"

    def cpu_text(self) -> str:
        """The process's CPU, in all and per HTTP request, and the emulator's per request."""
        text = f"CPU {self.cpu:.2f} s"
        if self.requests:
            text += f" = {self.cpu / self.requests * 1000:.3f} ms/request"
            if self.server_cpu:
                server = statistics.median(self.server_cpu) / self.requests * 1000
                text += f" (emulator {server:.3f} ms/request)"
        return text

    def summary(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "median_s": self.median,
            "min_s": min(self.walls),
            "max_s": max(self.walls),
            "wall_s": self.walls,
            "cpu_s": [r.cpu for r in self.runs],
            "requests": self.requests,
            "cpu_ms_per_request": self.cpu / self.requests * 1000 if self.requests else None,
            "emulator_cpu_s": self.server_cpu,
        }


@dataclass
class Target:
    """One figure against its target: `value` <= `limit` (or >= with `at_least`)."""

    label: str
    value: float
    limit: float
    at_least: bool = False
    unit: str = "x"

    @property
    def met(self) -> bool:
        return self.value >= self.limit if self.at_least else self.value <= self.limit

    def row(self) -> tuple[str, str, str, str]:
        sign = ">=" if self.at_least else ("<" if self.unit == " MB" else "<=")
        return (
            self.label,
            f"{self.value:.2f}{self.unit}",
            f"{sign} {self.limit:g}{self.unit}",
            "PASS" if self.met else "MISS",
        )


def table(rows: Sequence[tuple[str, str, str, str]]) -> None:
    width = max(len(r[0]) for r in rows)
    for label, figure, target, mark in rows:
        print(f"  {label:{width}} {figure:>12} {target:>10}  {mark}".rstrip())


def version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "-"


def machine() -> dict[str, Any]:
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "policysync": version("policysync"),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "system": f"{platform.system()} {platform.machine()}",
    }


def header(title: str) -> dict[str, Any]:
    """Print what runs where, and how busy the machine is without the benchmark."""
    m = machine()
    print(
        f"{title}: policysync {m['policysync']}, Python {m['python']}, "
        f"{m['cpus']} CPUs, {m['system']}, {m['date']}"
    )
    start = machine_cpu()
    time.sleep(1.0)
    end = machine_cpu()
    if start is not None and end is not None:
        busy = (end[0] - start[0]) / (end[1] - start[1]) * (os.cpu_count() or 1)
        m["background_cores"] = busy
        warning = ": other processes are running, figures will suffer" if busy > 0.25 else ""
        print(f"background load before the run: {busy:.2f} cores busy{warning}")
    return m


def print_profile(path: Path, limit: int) -> None:
    print(f"\nprofile {path} (the main process only), top {limit} by cumulative time:")
    stats = pstats.Stats(str(path))
    stats.sort_stats("cumulative").print_stats(limit)
    print(f"top {limit} by own time:")
    stats.sort_stats("tottime").print_stats(limit)


def write_json(path: Path | None, document: dict[str, Any]) -> None:
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, default=asdict) + "\n", encoding="utf-8")
    print(f"\nfigures written to {path}")


def int_list(text: str) -> list[int]:
    """For argparse: 16,64 -> [16, 64]."""
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of numbers: {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"positive numbers, comma-separated: {text!r}")
    return values


def latency_parser(
    doc: str | None, command: str, orgs: int, orgs_help: str
) -> argparse.ArgumentParser:
    """The options of the benchmarks timing `policysync COMMAND` against the emulator at
    a latency (plan, apply); each script adds its own, then calls `latency_args`."""
    p = argparse.ArgumentParser(description=doc.split("\n\n")[0] if doc else None)
    p.add_argument("--orgs", type=int, default=orgs, help=f"{orgs_help} ({orgs})")
    p.add_argument("--latency-ms", type=float, default=LATENCY_MS, help="per answer (60)")
    p.add_argument(
        "--parallelism", type=int_list, default=[16, 64], help=f"{command} --parallelism (16,64)"
    )
    p.add_argument("--repeat", type=int, default=5, help=f"rounds of timed {command} runs (5)")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, help="RNG seed of the tree")
    p.add_argument("--profile", type=Path, metavar="FILE", help=f"one more {command}, cProfiled")
    p.add_argument("--json", type=Path, metavar="FILE", help="also write every figure here")
    return p


def latency_args(p: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """`p`'s arguments (`latency_parser`), the shared ones checked."""
    args = p.parse_args(argv)
    if min(args.orgs, args.repeat) < 1 or args.latency_ms <= 0:
        p.error("--orgs, --repeat and --latency-ms must be positive")
    return args


def main(bench: Callable[[argparse.Namespace, Path], bool], args: argparse.Namespace) -> int:
    """Run `bench` in a temporary folder: exit status 0 when it met every target, 1 when
    it missed one, 2 when it could not run."""
    base = Path(tempfile.mkdtemp(prefix="policysync-bench-"))
    try:
        return 0 if bench(args, base) else 1
    except (BenchError, subprocess.TimeoutExpired) as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 2
    finally:
        shutil.rmtree(base, ignore_errors=True)
