"""One run at a time: `apply` and `rollback` hold the journal folder's lock for their
whole run. A second one is refused at once, naming the holder, and writes nothing; a
lock left by a process that is gone is taken over with a note. The other run is a real
process: a second `policysync apply`, or a small program holding the lock as one."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from support.clirun import run
from support.emulated import PROJECT_ID, SECRET, SEED, Puts
from support.processes import started, wait_for

from policysync.config import Limits
from policysync.emulator.faults import Faults
from policysync.emulator.server import EmulatorThread, build
from policysync.emulator.store import Store
from policysync.journal import list_runs
from policysync.runlock import HOLDER_FILE, hold

JOURNAL = Path(".policysync/journal")
ACME = "organization-test-07971b06-ac8b-4cdb-9c15-63b17e653931"
HOLDER_RUN = "20260102T030405Z-a1b2c3"

# A process holding the lock as an apply does, until its stdin is closed.
HOLD = """
import sys
from pathlib import Path
from policysync.runlock import hold
with hold(Path(sys.argv[1]), sys.argv[2]) as held:
    held.started(sys.argv[3])
    print("held", flush=True)
    sys.stdin.read()
"""


@contextmanager
def emulator(monkeypatch: pytest.MonkeyPatch, latency_ms: float = 0.0) -> Iterator[Puts]:
    store = Store()
    store.load(SEED)
    puts = Puts(build(store, PROJECT_ID, SECRET, Limits(), Faults((latency_ms, latency_ms))))
    with EmulatorThread(puts) as thread:
        monkeypatch.setenv("STYTCH_PROJECT_ID", PROJECT_ID)
        monkeypatch.setenv("STYTCH_SECRET", SECRET)
        monkeypatch.setenv("STYTCH_BASE_URL", thread.url)
        yield puts


@contextmanager
def held_elsewhere(base: Path, command: str = "apply") -> Iterator[subprocess.Popen[str]]:
    """The lock of `base` held by another process, which has named run HOLDER_RUN."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(base), command, HOLDER_RUN],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "held\n"
        yield proc
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        try:
            proc.wait(timeout=10)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
            assert proc.stdout is not None
            proc.stdout.close()


def assert_names(err: str, pid: int, command: str, run_id: str) -> None:
    holder = json.loads((JOURNAL / HOLDER_FILE).read_text())
    assert f"policysync {command}, process {pid} on host {socket.gethostname()}" in err, err
    assert f"run {run_id}, started {holder['started_at']}" in err, err
    assert "nothing was written" in err
    assert "Traceback" not in err


def test_an_apply_is_refused_while_another_process_holds_the_lock(
    workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with emulator(monkeypatch) as puts, held_elsewhere(JOURNAL) as other:
        started = time.monotonic()
        code, out, err = run(
            ["apply", "--auto-approve", "--allow-delete", "--allow-delete-in-use"], capsys
        )
        assert time.monotonic() - started < 10  # refused at once, not after a wait
        assert code == 1, out + err
        assert_names(err, other.pid, "apply", HOLDER_RUN)
        assert puts.orgs == []
    assert list_runs(JOURNAL) == []


def test_a_rollback_is_refused_while_an_apply_holds_the_lock(
    workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with emulator(monkeypatch) as puts:
        assert (
            run(["apply", "--auto-approve", "--allow-delete", "--allow-delete-in-use"], capsys)[0]
            == 0
        )
        (run_id,) = list_runs(JOURNAL)
        written = len(puts.orgs)
        with held_elsewhere(JOURNAL) as other:
            code, out, err = run(["rollback", run_id, "--auto-approve"], capsys)
            assert code == 1, out + err
            assert_names(err, other.pid, "apply", HOLDER_RUN)
        assert len(puts.orgs) == written  # no write
        assert list_runs(JOURNAL) == [run_id]
        code, out, err = run(["rollback", run_id, "--auto-approve"], capsys)  # lock free
        assert code == 0, out + err


def test_two_applies_of_plans_made_from_the_same_live_state(
    workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The issue's race: plan A and plan B from the same live state; B applied while A
    runs (a process of its own) is refused; applied after A, it finds acme stale
    instead of silently undoing A's write."""
    with emulator(monkeypatch, latency_ms=400) as puts:
        assert run(["plan", "--out", "a.json"], capsys)[0] == 0
        acme = next(p for p in Path("policies/orgs").glob("*.json") if ACME in p.read_text())
        acme.write_text(
            acme.read_text().replace(
                '"Read-only access for the external auditor"', '"Read-only access for auditors"'
            )
        )
        assert run(["plan", "--out", "b.json"], capsys)[0] == 0
        argv = [
            sys.executable,
            "-m",
            "policysync",
            "apply",
            "a.json",
            "--allow-delete",
            "--allow-delete-in-use",
        ]
        with started(argv) as a:
            wait_for(lambda: holder().get("run_id") is not None, a, 30, "apply A holds the lock")
            held = holder()
            code, out, err = run(
                ["apply", "b.json", "--allow-delete", "--allow-delete-in-use"], capsys
            )
            assert a.poll() is None, "apply A ended before B was tried: add latency"
            assert code == 1, out + err
            assert_names(err, a.pid, "apply", held["run_id"])
            a_out, a_err = a.communicate(timeout=60)
        assert a.returncode == 0, a_err
        assert "Apply: 4 applied" in a_out
        assert len(puts.orgs) == 4  # A's writes only
        code, out, err = run(["apply", "b.json", "--allow-delete", "--allow-delete-in-use"], capsys)
        assert code == 1, err
        assert f"stale    {ACME}: stale: live changed since the plan was made" in out
        assert len(puts.orgs) == 4  # A's write to acme is not undone
    assert not (JOURNAL / HOLDER_FILE).exists()


def holder() -> dict[str, Any]:
    try:
        return dict(json.loads((JOURNAL / HOLDER_FILE).read_text()))
    except (OSError, ValueError):
        return {}


def test_a_lock_left_by_a_process_that_is_gone_is_taken_over_with_a_note(
    workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    pid = int(gone.stdout)
    JOURNAL.mkdir(parents=True)
    left = {
        "pid": pid,
        "host": "build-7",
        "command": "rollback",
        "run_id": "20250101T000000Z-dead00",
        "started_at": "2025-01-01T00:00:00Z",
    }
    (JOURNAL / HOLDER_FILE).write_text(json.dumps(left))
    with emulator(monkeypatch) as puts:
        code, out, err = run(
            ["apply", "--auto-approve", "--allow-delete", "--allow-delete-in-use"], capsys
        )
    assert code == 0, out + err
    assert (
        f"note: the lock of the journal folder {JOURNAL} was left by policysync rollback, "
        f"process {pid} on host build-7, run 20250101T000000Z-dead00, started "
        "2025-01-01T00:00:00Z, which has ended without releasing it (killed?): taken over"
    ) in err
    assert len(puts.orgs) == 4
    assert not (JOURNAL / HOLDER_FILE).exists()  # released: no note next time
    with emulator(monkeypatch):
        code, out, err = run(
            ["apply", "--auto-approve", "--allow-delete", "--allow-delete-in-use"], capsys
        )
    assert code == 0, out + err
    assert "note:" not in err


def test_the_holder_file_names_the_run_while_it_is_held(tmp_path: Path) -> None:
    with hold(tmp_path, "apply") as held:
        first = json.loads((tmp_path / HOLDER_FILE).read_text())
        assert first["pid"] == os.getpid()
        assert first["run_id"] is None
        held.started(HOLDER_RUN)
        named = json.loads((tmp_path / HOLDER_FILE).read_text())
        assert named == {**first, "run_id": HOLDER_RUN}
    assert not (tmp_path / HOLDER_FILE).exists()
