"""`policysync apply` of 500 organizations under faults and through a crash: nothing lost.

Every organization of the tree differs live from its file (bench/rig.py's fixture:
a role missing live, an extra live role to delete, or a role whose actions differ), so
every run writes all of them and needs --allow-delete and --force. policysync runs as a
process of its own, as in CI, bounded in time and killed in any case; the emulator
listens on 127.0.0.1 only. The final live state is read with the official `stytch` SDK,
never with policysync's own client, and compared order-insensitively (roles by id,
actions per resource as sets).

- Under faults (429 from a rate limit, 500/503, connections dropped before and after the
  request was carried out, from a fixed fault seed), one apply must still write every
  organization, journal every prior, and leave live equal to the files.
- Killed with SIGKILL mid-run, an apply must leave each organization either untouched
  or fully written, with a journaled prior for every one it wrote; a second apply
  finishes the job and the plan after it is empty.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import stytch
from support.processes import emulator_process
from support.recording import Recorder

from policysync.canonical import fingerprint
from policysync.config import Limits
from policysync.emulator.app import Api, create_app
from policysync.emulator.faults import FaultInjector, Faults
from policysync.emulator.seed import Seed
from policysync.emulator.server import DEFAULT_PROJECT_ID, DEFAULT_SECRET, EmulatorThread
from policysync.emulator.store import Store
from policysync.journal import JournalEntry, list_runs, load_run
from policysync.models import OrgPolicy

ROOT = Path(__file__).parent.parent.parent
sys.path.insert(0, str(ROOT / "bench"))  # the benchmarks' generators, not a package

from rig import Fixture, make_fixture, seed_document, write_tree  # noqa: E402

# The SDK's own deprecations (pydantic `.dict()`) are not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

ORGS = 500
TREE_SEED = 20_240_717
FAULT_SEED = 7
PROJECT_ID, SECRET = DEFAULT_PROJECT_ID, DEFAULT_SECRET
APPLY_TIMEOUT = 120.0  # seconds, any one policysync process
MIN_ENTRIES_BEFORE_KILL = 50

Canonical = dict[str, tuple[str, dict[str, frozenset[str]]]]


@pytest.fixture(scope="module")
def fixture() -> Fixture:
    """500 organizations, every one differing live from its file."""
    made = make_fixture(ORGS, TREE_SEED, 1.0)
    assert all(kind is not None for kind in made.kinds)
    assert "delete" in made.kinds, "the fixture must need --allow-delete"
    return made


def canonical(roles: Any) -> Canonical:
    """Roles as Stytch treats them: by id; description; actions per resource as a set."""
    out: Canonical = {}
    for role in roles or []:
        role = role if isinstance(role, dict) else role.model_dump()
        grants: dict[str, set[str]] = {}
        for permission in role.get("permissions") or []:
            grants.setdefault(permission["resource_id"], set()).update(
                permission.get("actions") or []
            )
        out[role["role_id"]] = (
            role.get("description") or "",
            {r: frozenset(a) for r, a in grants.items()},
        )
    return out


def ids(fixture: Fixture) -> list[str]:
    return [doc["organization_id"] for doc in fixture.docs]


def desired(fixture: Fixture) -> dict[str, Canonical]:
    return {d["organization_id"]: canonical(d["org_policy"]["roles"]) for d in fixture.docs}


def seeded(fixture: Fixture) -> dict[str, Canonical]:
    return {
        d["organization_id"]: canonical(live["roles"])
        for d, live in zip(fixture.docs, fixture.live, strict=True)
    }


def seeded_fingerprints(fixture: Fixture) -> dict[str, str]:
    return {
        d["organization_id"]: fingerprint(OrgPolicy.model_validate(live))
        for d, live in zip(fixture.docs, fixture.live, strict=True)
    }


def sdk_live(url: str, organization_ids: list[str], lanes: int = 16) -> dict[str, Canonical]:
    """Every organization's live roles, read with the official SDK (`lanes` clients
    reading at once, each in a thread of its own, so that added latency costs little)."""
    assert url.startswith("http://127.0.0.1:"), url
    chunks = [organization_ids[i::lanes] for i in range(lanes)]

    def read(chunk: list[str]) -> dict[str, Canonical]:
        client = stytch.B2BClient(project_id=PROJECT_ID, secret=SECRET, environment=url)
        out = {}
        for organization_id in chunk:
            answer = client.rbac.organizations.get_org_policy(organization_id=organization_id)
            assert answer.status_code == 200, (organization_id, answer)
            assert answer.org_policy is not None
            out[organization_id] = canonical(answer.org_policy.roles)
        return out

    live: dict[str, Canonical] = {}
    with ThreadPoolExecutor(lanes) as pool:
        for part in pool.map(read, chunks):
            live.update(part)
    return live


def cli_env(url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STYTCH_", "POLICYSYNC_"))}
    env.update(STYTCH_BASE_URL=url, STYTCH_PROJECT_ID=PROJECT_ID, STYTCH_SECRET=SECRET)
    return env


def policysync(*args: str, url: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`policysync ARGS` in a process of its own, killed if it outlives APPLY_TIMEOUT."""
    return subprocess.run(
        [sys.executable, "-m", "policysync", *args],
        cwd=cwd,
        env=cli_env(url),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=APPLY_TIMEOUT,
    )


def apply_args(tree: Path, journal: Path) -> list[str]:
    # --force: every organization changes, far above apply.max_change_share
    return [
        "apply",
        "--policies",
        str(tree),
        "--journal",
        str(journal),
        "--auto-approve",
        "--allow-delete",
        "--allow-delete-in-use",
        "--force",
        "--parallelism",
        "16",
        "--format",
        "json",
    ]


def entry_files(journal: Path) -> list[Path]:
    """The organization entries of every run in `journal` (not run.json, not the
    temporary files of writes in progress)."""
    if not journal.is_dir():
        return []
    return [
        path
        for run in journal.iterdir()
        if run.is_dir()
        for path in run.iterdir()
        if path.suffix == ".json" and path.name != "run.json" and not path.name.startswith(".")
    ]


def outcome(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """An apply's JSON result, with the organizations not applied, for messages."""
    try:
        result: dict[str, Any] = json.loads(done.stdout)
    except ValueError:
        pytest.fail(f"apply exited {done.returncode} with no result:\n{done.stderr[-3000:]}")
    result["problems"] = [
        f"{o['organization_id']}: {o['result']}: {o['error']}"
        for o in result["organizations"]
        if o["result"] in ("stale", "failed")
    ]
    return result


def differences(live: dict[str, Canonical], wanted: dict[str, Canonical]) -> list[str]:
    return sorted(k for k in wanted if live.get(k) != wanted[k])


# --- faults -------------------------------------------------------------------------


class Faulty(NamedTuple):
    store: Store
    emulator: EmulatorThread
    injector: FaultInjector
    handled: Recorder  # requests that reached the API, by how the API answered
    answered: Recorder  # every request, by how it ended as the client saw it


@pytest.fixture
def faulty(fixture: Fixture) -> Iterator[Faulty]:
    """The emulator in a thread, seeded with the fixture, misbehaving from a fixed fault
    seed: 2 ms latency; 429 past 120 requests in a second (policysync, given no
    --rate-limit, goes much faster: hundreds of 429s in a run); 5% answered 500/503; 3%
    of connections dropped, half of them after the request was carried out.

    Why no more 5xx and drops: policysync tries a failing request 6 times, and a run
    sends about 1,650 requests (plan, then GET and PUT per organization). At 8% of
    attempts failing, some request fails 6 times in a row in about 1 run in 2,500
    (1,650 x 0.08^6); at 11%, 1 in 400. 429s have a budget of their own (20), so the
    rate limit can be as tight as this."""
    store = Store()
    store.load(Seed.model_validate(seed_document(fixture, ORGS)))
    handled = Recorder(create_app(Api(store, PROJECT_ID, SECRET, Limits())))
    faults = Faults(
        latency_ms=(2.0, 2.0), rate_limit=120, error_rate=0.05, drop_rate=0.03, seed=FAULT_SEED
    )
    injector = FaultInjector(handled, faults)
    answered = Recorder(injector)
    try:
        with EmulatorThread(answered) as running:
            yield Faulty(store, running, injector, handled, answered)
    finally:
        store.close()


def test_faults_lose_no_organization(faulty: Faulty, fixture: Fixture, tmp_path: Path) -> None:
    store, running, injector, handled, answered = faulty
    tree, journal = tmp_path / "policies", tmp_path / "journal"
    write_tree(tree, fixture.orgs, ROOT / "policies" / "project.json")

    started = time.monotonic()
    done = policysync(*apply_args(tree, journal), url=running.url, cwd=tmp_path)
    seconds = time.monotonic() - started
    print(f"\napply of {ORGS} under faults: {seconds:.1f} s; {sorted(answered.outcomes.items())}")
    result = outcome(done)
    assert done.returncode == 0, f"apply exited {done.returncode}: {result['problems'][:5]}"
    assert (result["applied"], result["failed"], result["stale"]) == (ORGS, 0, 0)

    # the faults did happen, to writes too
    assert injector.stats["429"] > 0
    assert injector.stats["5xx"] > 0
    assert injector.stats["dropped_before"] > 0
    assert injector.stats["dropped_after"] > 0
    assert answered.count("PUT", status="500") + answered.count("PUT", status="503") > 0
    assert answered.count("PUT", status="dropped") > 0
    # PUTs carried out whose answer was lost: the client cannot tell them from the outside
    assert handled.count("PUT", status="200") > answered.count("PUT", status="200")

    # live, read with the SDK through the same store without faults, is the files
    with EmulatorThread(create_app(Api(store, PROJECT_ID, SECRET, Limits()))) as clean:
        live = sdk_live(clean.url, ids(fixture))
    wrong = differences(live, desired(fixture))
    assert not wrong, f"{len(wrong)} organizations differ from their file, e.g. {wrong[:3]}"

    # one run, finished, holding an applied entry and the seeded prior for every one
    runs = list_runs(journal)
    assert len(runs) == 1, runs
    summary, entries = load_run(journal, runs[0])
    assert summary.finished_at is not None
    assert summary.counts is not None
    assert (summary.counts.applied, summary.counts.pending) == (ORGS, 0)
    by_id = {e.organization_id: e for e in entries}
    assert sorted(by_id) == sorted(ids(fixture))
    assert {e.state for e in entries} == {"applied"}
    check_priors(by_id, fixture)


def check_priors(entries: dict[str, JournalEntry], fixture: Fixture) -> None:
    """Each entry's prior is the seeded live policy; its desired, the file's policy."""
    live, fingerprints, wanted = seeded(fixture), seeded_fingerprints(fixture), desired(fixture)
    for organization_id, entry in entries.items():
        assert entry.prior is not None, organization_id
        assert canonical(entry.prior.model_dump()["roles"]) == live[organization_id]
        assert entry.prior_fingerprint == fingerprints[organization_id], organization_id
        assert canonical(entry.desired.model_dump()["roles"]) == wanted[organization_id]


# --- a crash ------------------------------------------------------------------------


def kill_when_journaled(
    argv: list[str], url: str, cwd: Path, journal: Path, entries: int
) -> tuple[int, int]:
    """Start `policysync ARGV`, SIGKILL it (its whole process group) once `journal`
    holds `entries` organization entries; (entries seen at the kill, exit status)."""
    log = cwd / "killed-apply.log"
    with log.open("w") as output:
        proc = subprocess.Popen(
            [sys.executable, "-m", "policysync", *argv],
            cwd=cwd,
            env=cli_env(url),
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: nothing it starts survives
        )
    try:
        deadline = time.monotonic() + APPLY_TIMEOUT
        while len(seen := entry_files(journal)) < entries:
            if proc.poll() is not None:
                pytest.fail(
                    f"apply finished (exit {proc.returncode}) before {entries} organizations "
                    f"were journaled ({len(seen)}): add latency so it can be killed mid-run\n"
                    + log.read_text()[-2000:]
                )
            if time.monotonic() > deadline:
                pytest.fail(f"{entries} organizations not journaled in {APPLY_TIMEOUT:.0f} s")
            time.sleep(0.005)
        os.killpg(proc.pid, signal.SIGKILL)
        return len(seen), proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def test_a_killed_apply_leaves_no_organization_half_written(
    fixture: Fixture, tmp_path: Path
) -> None:
    tree, journal = tmp_path / "policies", tmp_path / "journal"
    write_tree(tree, fixture.orgs, ROOT / "policies" / "project.json")
    seed = tmp_path / "seed.json"
    seed.write_text(json.dumps(seed_document(fixture, ORGS)), encoding="utf-8")
    wanted, before = desired(fixture), seeded(fixture)

    with emulator_process("--seed", str(seed), "--latency-ms", "20", cwd=tmp_path) as emulator:
        url = emulator.url
        at_kill, status = kill_when_journaled(
            apply_args(tree, journal), url, tmp_path, journal, MIN_ENTRIES_BEFORE_KILL
        )
        assert status == -signal.SIGKILL

        # every organization is as seeded or as its file, never anything else
        live = sdk_live(url, ids(fixture))
        written = sorted(k for k in wanted if live[k] == wanted[k])
        torn = sorted(k for k in wanted if live[k] not in (before[k], wanted[k]))
        assert not torn, f"{len(torn)} organizations are neither seeded nor desired: {torn[:3]}"
        assert 0 < len(written) < ORGS, f"killed after {len(written)} writes: not mid-run"

        # the killed run: not finished; a prior journaled for every organization written
        runs = list_runs(journal)
        assert len(runs) == 1, runs
        summary, entries = load_run(journal, runs[0])
        assert summary.finished_at is None
        assert len(entries) >= at_kill
        by_id = {e.organization_id: e for e in entries}
        unjournaled = [k for k in written if k not in by_id]
        assert not unjournaled, f"written without a journaled prior: {unjournaled[:3]}"
        states = {by_id[k].state for k in written}
        assert states <= {"pending", "applied"}, states
        claimed = [e.organization_id for e in entries if e.state == "applied"]
        assert set(claimed) <= set(written), "journaled as applied, yet not live"
        check_priors(by_id, fixture)
        print(
            f"killed with {at_kill} entries journaled, {len(written)} organizations written; "
            f"states: { {s: sum(e.state == s for e in entries) for s in ('pending', 'applied')} }"
        )

        # a second apply finishes the job; the plan after it is empty
        again = policysync(*apply_args(tree, journal), url=url, cwd=tmp_path)
        result = outcome(again)
        assert again.returncode == 0, f"apply exited {again.returncode}: {result['problems'][:5]}"
        assert result["applied"] == ORGS - len(written)
        assert result["failed"] == result["stale"] == 0
        live = sdk_live(url, ids(fixture))
        wrong = differences(live, wanted)
        assert not wrong, f"{len(wrong)} organizations differ from their file, e.g. {wrong[:3]}"
        plan = policysync(
            "plan", "--policies", str(tree), "--detailed-exitcode", url=url, cwd=tmp_path
        )
        assert plan.returncode == 0, f"plan exited {plan.returncode}:\n{plan.stdout[-2000:]}"

        # the killed run, which has no manifest, can still be rolled back: every
        # organization it journaled (now as its file: it or the second apply wrote it)
        # gets its prior back, the others keep their file's policy
        undo = policysync(
            "rollback", runs[0], "--journal", str(journal), "--auto-approve", "--format",
            "json", url=url, cwd=tmp_path,
        )  # fmt: skip
        assert undo.returncode == 0, f"rollback exited {undo.returncode}:\n{undo.stderr[-2000:]}"
        assert "has no manifest (it did not finish)" in undo.stderr
        assert json.loads(undo.stdout)["applied"] == len(entries)
        live = sdk_live(url, ids(fixture))
        wrong = differences(live, {k: before[k] if k in by_id else wanted[k] for k in wanted})
        assert not wrong, f"{len(wrong)} organizations not as rolled back, e.g. {wrong[:3]}"
        assert emulator.proc.poll() is None, "the emulator died during the test"
