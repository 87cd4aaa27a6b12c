"""`policysync apply` and `rollback` of ZenML Pro organizations under faults, with tokens
that expire mid-run, and through a crash mid-organization: nothing lost, nothing torn.

ZenML writes an organization role by role (updates, then creations, then deletions),
so a run stopped half way leaves organizations half written. The tree is generated from
a seed: every organization differs live from its file by role creations, updates and
deletions, and every deleted role is held (by users and teams, in the whole
organization or in one workspace or project). policysync runs as a process of its own,
bounded in time and killed in any case; the emulator listens on 127.0.0.1 only. The
final state is read with raw HTTP (httpx, the API key as the bearer: no policysync
code) and compared order-insensitively: roles by (level, name), permissions and
assignments as sets.

- Under faults (429 from a rate limit, 500/503, connections dropped before and after
  the request was carried out, from a fixed fault seed) and bearer tokens living one
  second: apply writes every organization, journals every prior with the holders of
  the roles it deletes; rollback puts every prior back exactly, re-created roles given
  back to who held them.
- Killed with SIGKILL while an organization is half written: every organization is,
  role by role, as it was or as its file; everything changed has its prior journaled;
  rollback restores every prior exactly, or the same saved plan applied again finishes
  the job (half-written organizations carried on, not stale) and the plan after is
  empty.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import pytest
from support.processes import clean_env, emulator_process
from support.recording import Recorder

from policysync.emulator.faults import FaultInjector, Faults
from policysync.emulator.server import EmulatorThread
from policysync.emulator.zenml_app import DEFAULT_API_KEY, ZenmlApi, create_app, fault_body
from policysync.emulator.zenml_store import ZenmlSeed, ZenmlStore, seed_problem
from policysync.journal import JournalEntry, list_runs, load_run
from policysync.models import OrgPolicy

ORGS = 48
TREE_SEED = 20_250_311
FAULT_SEED = 11
KEY = DEFAULT_API_KEY
TOKEN_TTL = 1  # seconds: tokens expire many times over in one run
TIMEOUT = 60.0  # seconds, any one policysync process

# What the tree is made of: the built-in workspace and project vocabulary, and an
# organization vocabulary that permissions.json declares.
LEVELS = ("workspace", "project", "organization")
VOCABULARY = {
    "workspace": (
        ("pipeline", "pipeline_run", "stack", "stack_component", "secret"),
        ("read", "create", "update", "delete"),
    ),
    "project": (
        ("model", "model_version", "artifact", "pipeline_run", "run_template"),
        ("read", "create", "update", "promote"),
    ),
    "organization": (("workspace", "team", "member"), ("read", "create", "update")),
}
PERMISSIONS_FILE = {
    "organization": {
        "resources": list(VOCABULARY["organization"][0]),
        "actions": list(VOCABULARY["organization"][1]),
    }
}
SETTINGS = 'provider = "zenml"\npolicies = "policies"\n'

# A role's state: (description, {(resource, action)}, {(kind, id, workspace, project)})
Grant = tuple[str, str]
Assignment = tuple[str, str, str | None, str | None]
RoleState = tuple[str, frozenset[Grant], frozenset[Assignment]]
State = dict[str, RoleState]  # by "level:name"


# --- the tree ------------------------------------------------------------------------


@dataclass(frozen=True)
class Org:
    """One organization: as seeded live, and as its file wants it."""

    id: str
    name: str
    address: str  # how its file names it: its id, or (some) its name
    live: tuple[dict[str, Any], ...]  # seed roles, with ids and assignments
    wanted: tuple[dict[str, Any], ...]  # file roles
    creates: frozenset[str]
    updates: frozenset[str]
    deletes: frozenset[str]

    @property
    def prior(self) -> State:
        return {key(r): role_state(r, r.get("assignments", ())) for r in self.live}

    @property
    def desired(self) -> State:
        held = {key(r): r.get("assignments", ()) for r in self.live}
        return {key(r): role_state(r, held.get(key(r), ())) for r in self.wanted}


def key(role: dict[str, Any]) -> str:
    return f"{role['level']}:{role['name']}"


def role_state(role: dict[str, Any], assignments: Any) -> RoleState:
    grants = frozenset((p["resource"], p["action"]) for p in role.get("permissions") or ())
    return (role.get("description") or "", grants, frozenset(assignment(a) for a in assignments))


def assignment(a: dict[str, Any]) -> Assignment:
    kind = next(k for k in ("user", "team", "invitation") if a.get(k))
    return (kind, str(a[kind]), a.get("workspace_id"), a.get("project_id"))


def make_orgs(count: int, seed: int) -> list[Org]:
    """`count` organizations, each with 1-2 roles kept, 1-2 updated, 1-2 created and
    1-2 deleted: at least three role operations per organization. Every live role is
    held by 1-3 users or teams, some of them only in a workspace or a project."""
    rng = random.Random(seed)

    def new_id() -> str:
        return str(uuid.UUID(int=rng.getrandbits(128), version=4))

    def permissions(level: str) -> list[dict[str, str]]:
        resources, actions = VOCABULARY[level]
        pairs = {(rng.choice(resources), rng.choice(actions)) for _ in range(rng.randint(1, 4))}
        return [{"resource": r, "action": a} for r, a in sorted(pairs)]

    def held(level: str) -> list[dict[str, str]]:
        """Users and teams holding a role: in the whole organization, or (a workspace
        or project role) in one workspace or project."""
        scopes = {"organization": (None,), "workspace": (None, "workspace_id")}
        out = []
        for _ in range(rng.randint(1, 3)):
            a = {rng.choice(("user", "team")): new_id()}
            scope = rng.choice(scopes.get(level, (None, "workspace_id", "project_id")))
            if scope is not None:
                a[scope] = new_id()
            out.append(a)
        return out

    orgs = []
    for i in range(count):
        oid, name = new_id(), f"org-{i:03d}"
        names = iter(rng.sample(range(100), 8))
        roles = {
            kind: [
                {"name": f"Role {kind} {next(names)}", "level": rng.choice(LEVELS)}
                for _ in range(rng.randint(1, 2))
            ]
            for kind in ("keep", "update", "create", "delete")
        }
        for role in (r for rs in roles.values() for r in rs):
            role["description"] = f"{role['name']} of {name}"
            role["permissions"] = permissions(role["level"])
        live, wanted = [], []
        for kind in ("keep", "update", "delete"):
            for role in roles[kind]:
                # kept and updated roles are held too: a write must leave that be
                live.append({**role, "id": new_id(), "assignments": held(role["level"])})
        for kind in ("keep", "update", "create"):
            for role in roles[kind]:
                if kind == "update":
                    changed = permissions(role["level"])
                    while changed == role["permissions"]:
                        changed = permissions(role["level"])
                    role = {**role, "permissions": changed}
                    if rng.random() < 0.5:
                        role["description"] += " (changed)"
                wanted.append(role)
        rng.shuffle(live)
        rng.shuffle(wanted)
        orgs.append(
            Org(
                id=oid,
                name=name,
                address=name if i % 6 == 5 else oid,
                live=tuple(live),
                wanted=tuple(wanted),
                creates=frozenset(key(r) for r in roles["create"]),
                updates=frozenset(key(r) for r in roles["update"]),
                deletes=frozenset(key(r) for r in roles["delete"]),
            )
        )
    return orgs


@pytest.fixture(scope="module")
def orgs() -> list[Org]:
    made = make_orgs(ORGS, TREE_SEED)
    assert all(o.prior != o.desired for o in made)
    assert all(o.creates and o.updates and o.deletes for o in made)
    return made


def seed_document(orgs: list[Org]) -> dict[str, Any]:
    return {
        "organizations": [
            {"id": o.id, "name": o.name, "roles": [dict(r) for r in o.live]} for o in orgs
        ]
    }


def seed_model(orgs: list[Org]) -> ZenmlSeed:
    seed = ZenmlSeed.model_validate(seed_document(orgs))
    assert seed_problem(seed) is None
    return seed


def write_tree(root: Path, orgs: list[Org]) -> Path:
    """policysync.toml, and the policies folder (permissions.json, one file per org)."""
    (root / "policysync.toml").write_text(SETTINGS, encoding="utf-8")
    policies = root / "policies"
    (policies / "orgs").mkdir(parents=True)
    (policies / "permissions.json").write_text(json.dumps(PERMISSIONS_FILE), encoding="utf-8")
    for org in orgs:
        document = {"organization_id": org.address, "roles": list(org.wanted)}
        (policies / "orgs" / f"{org.name}.json").write_text(
            json.dumps(document, indent=2), encoding="utf-8"
        )
    return policies


# --- live, read with raw HTTP ------------------------------------------------------


def read_live(url: str, orgs: list[Org], lanes: int = 48) -> dict[str, State]:
    """Every organization's custom roles with their permissions and assignments, read
    with httpx from the API as documented (the raw key as the bearer: no token to
    expire), `lanes` threads at once."""
    assert url.startswith("http://127.0.0.1:"), url
    headers = {"Authorization": f"Bearer {KEY}"}

    def get(http: httpx.Client, path: str, **params: Any) -> Any:
        answer = http.get(path, params=params)
        assert answer.status_code == 200, (path, answer.status_code, answer.text)
        return answer.json()

    def read(org: Org) -> tuple[str, State]:
        with httpx.Client(base_url=url, headers=headers, timeout=10) as http:
            listed: list[dict[str, Any]] = []
            while True:
                page = get(
                    http,
                    f"organizations/{org.id}/roles",
                    system_managed="false",
                    offset=len(listed),
                    limit=100,
                )
                listed += page
                if len(page) < 100:
                    break
            state: State = {}
            for role in listed:
                full = get(http, f"roles/{role['id']}")
                held = get(http, f"roles/{role['id']}/assignments")
                state[key(full)] = role_state(full, held)
            return org.id, state

    with ThreadPoolExecutor(lanes) as pool:
        return dict(pool.map(read, orgs))


def torn(live: dict[str, State], orgs: list[Org]) -> list[str]:
    """Organizations with a role neither as it was nor as its file wants it."""
    return [
        o.name
        for o in orgs
        if any(
            live[o.id].get(k) not in (o.prior.get(k), o.desired.get(k))
            for k in live[o.id].keys() | o.prior.keys() | o.desired.keys()
        )
    ]


def differing(live: dict[str, State], wanted: dict[str, State]) -> list[str]:
    return sorted(k for k, state in wanted.items() if live.get(k) != state)


# --- policysync in a process of its own --------------------------------------------


def cli_env(url: str) -> dict[str, str]:
    env = clean_env(ZENML_PRO_API_URL=url, ZENML_PRO_API_KEY=KEY)
    return {k: v for k, v in env.items() if not k.startswith("POLICYSYNC_")}


def policysync(*args: str, url: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`policysync ARGS` in a process of its own, killed if it outlives TIMEOUT."""
    return subprocess.run(
        [sys.executable, "-m", "policysync", *args],
        cwd=cwd,
        env=cli_env(url),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )


def apply_args(journal: Path, *more: str) -> list[str]:
    return [
        "apply",
        *more,
        "--journal",
        str(journal),
        "--auto-approve",
        "--allow-delete",
        "--allow-delete-in-use",
        "--force",
        "--format",
        "json",
    ]


def outcome(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """A run's JSON result, with the organizations not applied listed for messages."""
    try:
        result: dict[str, Any] = json.loads(done.stdout)
    except ValueError:
        pytest.fail(f"exited {done.returncode} with no result:\n{done.stderr[-3000:]}")
    result["problems"] = [
        f"{o['organization_id']}: {o['result']}: {o['error']}"
        for o in result["organizations"]
        if o["result"] not in ("applied", "unchanged")
    ]
    return result


# --- the journal ---------------------------------------------------------------------


def policy_state(policy: OrgPolicy) -> dict[str, tuple[str, frozenset[Grant]]]:
    """A journaled policy (the core's shape) as (description, grants) by role key."""
    return {
        r.role_id: (
            r.description,
            frozenset((p.resource_id, a) for p in r.permissions for a in p.actions),
        )
        for r in policy.roles
    }


def without_holders(state: State) -> dict[str, tuple[str, frozenset[Grant]]]:
    return {k: (description, grants) for k, (description, grants, _) in state.items()}


def check_prior(entry: JournalEntry, org: Org) -> None:
    """The entry holds the seeded roles as its prior, the file's as desired, and who
    held each role the write deletes."""
    assert entry.prior is not None, org.name
    assert policy_state(entry.prior) == without_holders(org.prior), org.name
    assert policy_state(entry.desired) == without_holders(org.desired), org.name
    holders = {
        h.role_id: {(x.kind, x.id, x.workspace_id, x.project_id) for x in h.holders}
        for h in entry.holders
    }
    assert holders == {k: set(org.prior[k][2]) for k in org.deletes}, org.name


def the_run(journal: Path) -> tuple[str, dict[str, JournalEntry], bool]:
    """The one run in `journal`: its id, its entries by organization, whether it finished."""
    runs = list_runs(journal)
    assert len(runs) == 1, runs
    summary, entries = load_run(journal, runs[0])
    return runs[0], {e.organization_id: e for e in entries}, summary.finished_at is not None


# --- faults --------------------------------------------------------------------------


class Faulty(NamedTuple):
    url: str
    clean_url: str
    injector: FaultInjector
    handled: Recorder  # requests that reached the API, by how the API answered
    answered: Recorder  # every request, by how it ended as the client saw it


@pytest.fixture
def faulty(orgs: list[Org]) -> Iterator[Faulty]:
    """The emulator in a thread, seeded, misbehaving from a fixed fault seed: 2 ms
    latency, 429 past 400 requests in a second, 4% answered 500/503, 3% of
    connections dropped (half of them after the request was carried out), tokens
    living TOKEN_TTL seconds. A second app serves the same store without faults, for
    reading the outcome."""
    store = ZenmlStore()
    store.load(seed_model(orgs))
    handled = Recorder(create_app(ZenmlApi(store, KEY, TOKEN_TTL)))
    faults = Faults(
        latency_ms=(2.0, 2.0), rate_limit=400, error_rate=0.04, drop_rate=0.03, seed=FAULT_SEED
    )
    injector = FaultInjector(handled, faults, fault_body)
    answered = Recorder(injector)
    try:
        with (
            EmulatorThread(answered) as running,
            EmulatorThread(create_app(ZenmlApi(store, KEY))) as clean,
        ):
            yield Faulty(running.url, clean.url, injector, handled, answered)
    finally:
        store.close()


def test_faults_and_expiring_tokens_lose_nothing(
    faulty: Faulty, orgs: list[Org], tmp_path: Path
) -> None:
    url, clean_url, injector, handled, answered = faulty
    policies, journal = write_tree(tmp_path, orgs), tmp_path / "journal"
    prior = {o.id: o.prior for o in orgs}
    desired = {o.id: o.desired for o in orgs}
    assert read_live(clean_url, orgs) == prior

    started = time.monotonic()
    done = policysync(*apply_args(journal, "--policies", str(policies)), url=url, cwd=tmp_path)
    seconds = time.monotonic() - started
    applied_logins = handled.count("POST", "/auth/login", "200")
    print(f"\napply under faults: {seconds:.1f} s; {sorted(answered.outcomes.items())}")
    result = outcome(done)
    assert done.returncode == 0, f"apply exited {done.returncode}: {result['problems'][:5]}"
    assert (result["applied"], result["failed"], result["stale"], result["unknown"]) == (
        ORGS, 0, 0, 0,
    )  # fmt: skip

    # the faults did happen, to role writes too; tokens expired and were renewed
    assert injector.stats["429"] > 0
    assert injector.stats["5xx"] > 0
    assert injector.stats["dropped_before"] > 0
    assert injector.stats["dropped_after"] > 0
    writes = (("POST", "/roles"), ("PATCH", "/roles/{id}"), ("DELETE", "/roles/{id}"))
    assert sum(answered.count(m, p, s) for m, p in writes for s in ("500", "503")) > 0
    assert sum(answered.count(m, p, "dropped") for m, p in writes) > 0
    assert applied_logins > 1, "one token lasted the whole run"

    live = read_live(clean_url, orgs)
    assert not torn(live, orgs)
    wrong = differing(live, desired)
    assert not wrong, f"{len(wrong)} organizations differ from their file, e.g. {wrong[:3]}"

    # one run, finished, every organization applied with its prior and holders journaled
    run_id, entries, finished = the_run(journal)
    assert finished
    by_address = {o.address: o for o in orgs}
    assert sorted(entries) == sorted(by_address)
    for address, entry in entries.items():
        org = by_address[address]
        assert entry.state == "applied", (org.name, entry.state, entry.error)
        check_prior(entry, org)
        ops = sorted((op.action, op.role_id) for op in entry.operations)
        expected = [("create", k) for k in org.creates] + [("delete", k) for k in org.deletes]
        expected += [("update", k) for k in org.updates]
        assert ops == sorted(expected), org.name

    # rollback, under the same faults: every prior back, deleted roles to their holders
    started = time.monotonic()
    undo = policysync(
        "rollback", run_id, "--journal", str(journal), "--auto-approve", "--format", "json",
        url=url, cwd=tmp_path,
    )  # fmt: skip
    seconds = time.monotonic() - started
    result = outcome(undo)
    assert undo.returncode == 0, f"rollback exited {undo.returncode}: {result['problems'][:5]}"
    assert result["applied"] == ORGS
    live = read_live(clean_url, orgs)
    wrong = differing(live, prior)
    assert not wrong, f"{len(wrong)} organizations not rolled back exactly, e.g. {wrong[:3]}"
    logins = handled.count("POST", "/auth/login", "200")
    print(f"rollback: {seconds:.1f} s; logins: {applied_logins} in the apply, {logins} in all")
    assert logins > applied_logins + 1


# --- a crash -------------------------------------------------------------------------

LATENCY_MS = 40  # every answer: an organization's role operations take a while each
PARALLELISM = 4  # 8 organizations in progress: written in waves, the kill comes mid-run
KILL_AFTER = 4  # organizations applied


def half_written(journal: Path, operations: dict[str, int]) -> str | None:
    """Once KILL_AFTER organizations are journaled as applied, the organization of an
    entry still pending whose write is half done: some role operations landed and were
    journaled, and at least two of its `operations` were not (the next one may land
    before the kill, but not the one after it: it waits for the next one's answer).
    (An entry whose operations are all journaled may stay pending for a while: its
    final state is written after the write ended.)"""
    entries = [
        json.loads(path.read_bytes())  # written whole (renamed into place): never half
        for path in journal.glob("*/*.json")
        if path.name != "run.json" and not path.name.startswith(".")
    ]
    if sum(entry["state"] == "applied" for entry in entries) < KILL_AFTER:
        return None
    return next(
        (
            e["organization_id"]
            for e in entries
            if e["state"] == "pending"
            and 0 < len(e["operations"]) <= operations[e["organization_id"]] - 2
        ),
        None,
    )


def kill_half_way(
    argv: list[str], url: str, cwd: Path, journal: Path, orgs: list[Org]
) -> tuple[str, int]:
    """Start `policysync ARGV`; SIGKILL it (its whole process group) as soon as one of
    `orgs` is half written; (that organization, the exit status)."""
    operations = {o.address: len(o.creates | o.updates | o.deletes) for o in orgs}
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
        deadline = time.monotonic() + TIMEOUT
        while (seen := half_written(journal, operations)) is None:
            if proc.poll() is not None:
                pytest.fail(
                    f"apply finished (exit {proc.returncode}) before an organization was "
                    "seen half written\n" + log.read_text()[-2000:]
                )
            if time.monotonic() > deadline:
                pytest.fail(f"no organization half written in {TIMEOUT:.0f} s")
            time.sleep(0.002)
        os.killpg(proc.pid, signal.SIGKILL)
        return seen, proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def changed_roles(live: State, org: Org) -> set[str]:
    """The roles a write changed: each is one role operation that landed."""
    return {k for k in live.keys() | org.prior.keys() if live.get(k) != org.prior.get(k)}


@pytest.mark.parametrize("then", ["rollback", "the same plan again"])
def test_a_kill_mid_organization_leaves_every_role_as_it_was_or_as_its_file(
    orgs: list[Org], tmp_path: Path, then: str
) -> None:
    policies, journal = write_tree(tmp_path, orgs), tmp_path / "journal"
    seed, saved = tmp_path / "seed.json", tmp_path / "reviewed.plan.json"
    seed.write_text(json.dumps(seed_document(orgs)), encoding="utf-8")
    prior = {o.id: o.prior for o in orgs}
    desired = {o.id: o.desired for o in orgs}
    by_address = {o.address: o for o in orgs}
    args = ("--provider", "zenml", "--seed", str(seed), "--db", str(tmp_path / "zenml.db"))

    with emulator_process(*args, "--latency-ms", str(LATENCY_MS), cwd=tmp_path) as emulator:
        url = emulator.url
        planned = policysync(
            "plan", "--policies", str(policies), "--out", str(saved), url=url, cwd=tmp_path
        )
        assert planned.returncode == 0, planned.stderr[-2000:]
        argv = apply_args(journal, str(saved), "--parallelism", str(PARALLELISM))
        seen, status = kill_half_way(argv, url, tmp_path, journal, orgs)
        assert status == -signal.SIGKILL

        # every role as it was or as its file wants it; some organizations half written
        live = read_live(url, orgs)
        assert not torn(live, orgs), f"roles neither as seeded nor as the file: {torn(live, orgs)}"
        done = {o.id for o in orgs if live[o.id] == desired[o.id]}
        untouched = {o.id for o in orgs if live[o.id] == prior[o.id]}
        half = {o.id for o in orgs} - done - untouched
        assert by_address[seen].id in half, "the organization seen half written is not"
        assert len(done) >= KILL_AFTER
        assert untouched, "killed after every organization was written"

        # the killed run: not finished; every organization changed has its prior and
        # the holders of its deleted roles journaled, and every role operation that
        # landed was journaled, but for the one in flight at the kill
        run_id, entries, finished = the_run(journal)
        assert not finished
        for org in orgs:
            landed = changed_roles(live[org.id], org)
            entry = entries.get(org.address)
            if entry is None:
                assert not landed, f"{org.name}: written without a journaled prior"
                continue
            check_prior(entry, org)
            journaled = [op.role_id for op in entry.operations]
            assert len(journaled) == len(set(journaled)), org.name
            assert set(journaled) <= landed, f"{org.name}: journaled, yet not live"
            assert len(landed - set(journaled)) <= 1, f"{org.name}: landed, not journaled"
            if entry.state == "applied":
                assert org.id in done, f"{org.name}: journaled as applied, yet not live"
            else:
                assert entry.state == "pending", (org.name, entry.state)
        print(
            f"\nkilled with {len(entries)} entries journaled: {len(done)} organizations "
            f"written, {len(half)} half written, {len(untouched)} untouched"
        )

        if then == "rollback":
            # every organization the run changed gets its prior back, exactly: deleted
            # roles re-created and given back to who held them, created ones deleted
            undo = policysync(
                "rollback", run_id, "--journal", str(journal), "--auto-approve", "--format",
                "json", url=url, cwd=tmp_path,
            )  # fmt: skip
            result = outcome(undo)
            assert undo.returncode == 0, f"rollback exited {undo.returncode}: {result['problems']}"
            assert "has no manifest (it did not finish)" in undo.stderr
            assert result["applied"] == len(done | half)
            live = read_live(url, orgs)
            wrong = differing(live, prior)
            assert not wrong, f"{len(wrong)} organizations not rolled back exactly: {wrong[:3]}"
        else:
            # the reviewed plan, applied again, finishes the job: half-written
            # organizations are carried on, not stale, their half-written state
            # journaled as the prior; the plan after is empty
            at_kill = live
            again = policysync(*apply_args(journal, str(saved)), url=url, cwd=tmp_path)
            result = outcome(again)
            assert again.returncode == 0, f"apply exited {again.returncode}: {result['problems']}"
            assert (result["applied"], result["unchanged"]) == (ORGS - len(done), len(done))
            assert result["stale"] == result["failed"] == result["unknown"] == 0
            _, second = load_run(journal, result["run_id"])
            carried = {e.organization_id: e for e in second}
            for org in (o for o in orgs if o.id in half):
                entry = carried[org.address]
                assert entry.prior is not None
                assert policy_state(entry.prior) == without_holders(at_kill[org.id])
                still = {k for k in org.deletes if k in at_kill[org.id]}
                assert {h.role_id for h in entry.holders} == still, org.name
            live = read_live(url, orgs)
            wrong = differing(live, desired)
            assert not wrong, f"{len(wrong)} organizations differ from their file: {wrong[:3]}"
            plan = policysync(
                "plan", "--policies", str(policies), "--detailed-exitcode", url=url, cwd=tmp_path
            )
            assert plan.returncode == 0, f"plan exited {plan.returncode}:\n{plan.stdout[-2000:]}"
        assert emulator.proc.poll() is None, "the emulator died during the test"
