"""An apply stopped before its end: by a journal that cannot be written (a full disk,
a folder that cannot be made) or by Ctrl-C. From that moment no organization is
started and no PUT is sent without its prior on disk; the partial result is printed,
with the run id and the command that undoes it; the journal is whole, and rolls back."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from support.clirun import run
from support.emulated import PROJECT_ID, SECRET, Puts
from support.processes import clean_env, emulator_process, started, wait_for

from policysync import durable
from policysync.config import Limits
from policysync.emulator.seed import Seed
from policysync.emulator.server import (
    DEFAULT_PROJECT_ID,
    DEFAULT_SECRET,
    EmulatorThread,
    build,
)
from policysync.emulator.store import Store
from policysync.journal import entry_name, list_runs, load_run

ROOT = Path(__file__).parent.parent.parent
sys.path.insert(0, str(ROOT / "bench"))  # the benchmarks' generators, not a package

from rig import Fixture, make_fixture, seed_document, write_tree  # noqa: E402

ORGS = 40
TREE_SEED = 20_240_717
NO_SPACE = f"[Errno {errno.ENOSPC}] {os.strerror(errno.ENOSPC)}"


@pytest.fixture(scope="module")
def fixture() -> Fixture:
    """Organizations that all differ live from their file."""
    return make_fixture(150, TREE_SEED, 1.0)


@contextmanager
def emulated(fixture: Fixture, monkeypatch: pytest.MonkeyPatch, orgs: int) -> Iterator[Puts]:
    store = Store()
    store.load(Seed.model_validate(seed_document(fixture, orgs)))
    puts = Puts(build(store, PROJECT_ID, SECRET, Limits()))
    with EmulatorThread(puts) as thread:
        monkeypatch.setenv("STYTCH_PROJECT_ID", PROJECT_ID)
        monkeypatch.setenv("STYTCH_SECRET", SECRET)
        monkeypatch.setenv("STYTCH_BASE_URL", thread.url)
        yield puts


def apply_args(journal: Path, *more: str) -> list[str]:
    return [
        "apply",
        "--journal",
        str(journal),
        "--auto-approve",
        "--allow-delete",
        "--allow-delete-in-use",
        "--force",
        "--format",
        "json",
        *more,
    ]


def stopped(result: dict[str, Any]) -> list[str]:
    return [
        org["organization_id"]
        for org in result["organizations"]
        if org["error"] and org["error"]["error_type"] == "run_stopped"
    ]


def test_a_journal_folder_that_cannot_be_made_is_a_message(
    fixture: Fixture,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A file where the journal's folder should be: no folder, whoever runs it (root
    included), and the same OS error as making it by hand."""
    monkeypatch.chdir(tmp_path)
    write_tree(tmp_path / "policies", fixture.orgs[:ORGS], ROOT / "policies" / "project.json")
    Path("state").write_text("a file, not a folder\n")
    with pytest.raises(OSError) as by_hand:  # noqa: PT011 (the error is the platform's)
        os.mkdir("state/journal")
    words = f"[Errno {by_hand.value.errno}] {by_hand.value.strerror}"
    with emulated(fixture, monkeypatch, ORGS) as puts:
        code, out, err = run(apply_args(Path("state/journal")), capsys)
    assert code == 1, out + err
    assert f"error: cannot write the journal at {Path('state', 'journal')}: {words}" in err
    assert "internal error" not in err
    assert puts.orgs == []


def test_a_full_disk_stops_the_run_before_its_next_write(
    fixture: Fixture,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The disk fills after a few entries: no PUT is sent but for an organization whose
    prior was on disk before; the organizations not started are listed; the run rolls
    back once there is room again."""
    monkeypatch.chdir(tmp_path)
    write_tree(tmp_path / "policies", fixture.orgs[:ORGS], ROOT / "policies" / "project.json")
    journal = tmp_path / "journal"
    real_replace = durable.replace
    stored: list[str] = []  # the entry files written before the disk was full
    room = 6

    def replace(path: Path, data: bytes, mode: int = 0o666) -> None:
        entry = path.parent.parent == journal and path.name != "run.json"
        if entry and len(stored) >= room:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        real_replace(path, data, mode)
        if entry:
            stored.append(path.name)

    monkeypatch.setattr(durable, "replace", replace)
    with emulated(fixture, monkeypatch, ORGS) as puts:
        code, out, err = run(apply_args(journal, "--parallelism", "2"), capsys)
        assert code == 1, err
        (run_id,) = list_runs(journal)
        assert "internal error" not in err
        assert f"error: cannot write the journal at {journal / run_id}" in err
        assert f"{NO_SPACE}: run {run_id} stopped before its end" in err
        assert f"policysync rollback {run_id} --journal {journal}" in err

        # no PUT without its prior on disk first; the others were not started
        by_name = {entry_name(org): org for org in fixture.ids(ORGS)}
        journaled = {by_name[name] for name in stored}
        assert puts.orgs, "nothing was written before the disk filled"
        assert set(puts.orgs) <= journaled
        assert len(puts.orgs) <= room
        result = json.loads(out)
        assert result["applied"] + result["failed"] == ORGS
        assert set(stopped(result)) >= set(fixture.ids(ORGS)) - journaled
        applied = {
            o["organization_id"] for o in result["organizations"] if o["result"] == "applied"
        }
        assert applied == set(puts.orgs)

        # the journal is whole: the run is finished, and rolls back what it wrote
        summary, entries = load_run(journal, run_id)
        assert summary.counts is not None
        assert {e.organization_id for e in entries} == journaled
        monkeypatch.setattr(durable, "replace", real_replace)
        code, out, err = run(
            ["rollback", run_id, "--journal", str(journal), "--auto-approve", "--format", "json"],
            capsys,
        )
        assert code == 0, err
        undone = json.loads(out)
        assert undone["applied"] == len(set(puts.orgs))


def test_ctrl_c_before_the_run_exits_130(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(*_: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("policysync.cli._provider", interrupted)
    code, _out, err = run(["apply", "--auto-approve"], capsys)
    assert (code, err.strip()) == (130, "Interrupted.")


# A policysync process whose Ctrl-C is Python's own, even when this test runs where
# SIGINT is ignored (a background job inherits SIG_IGN, which Python keeps).
INTERRUPTIBLE = (
    "import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "sys.argv[0] = 'policysync'; from policysync.cli import entry; entry()"
)


def entry_files(journal: Path) -> list[Path]:
    return [
        path
        for run in (journal.iterdir() if journal.is_dir() else [])
        if run.is_dir()
        for path in run.iterdir()
        if path.suffix == ".json" and path.name != "run.json" and not path.name.startswith(".")
    ]


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT cannot be sent to a process there")
def test_ctrl_c_during_an_apply_exits_130_naming_the_run(fixture: Fixture, tmp_path: Path) -> None:
    orgs = len(fixture.docs)
    tree, journal = tmp_path / "policies", tmp_path / "journal"
    write_tree(tree, fixture.orgs, ROOT / "policies" / "project.json")
    seed = tmp_path / "seed.json"
    seed.write_text(json.dumps(seed_document(fixture, orgs)), encoding="utf-8")
    args = ["--policies", str(tree), "--parallelism", "4"]
    with emulator_process("--seed", str(seed), "--latency-ms", "20", cwd=tmp_path) as emulator:
        env = clean_env(
            STYTCH_BASE_URL=emulator.url,
            STYTCH_PROJECT_ID=DEFAULT_PROJECT_ID,
            STYTCH_SECRET=DEFAULT_SECRET,
        )
        argv = [sys.executable, "-c", INTERRUPTIBLE, *apply_args(journal, *args)]
        with started(argv, tmp_path, env) as proc:
            wait_for(lambda: len(entry_files(journal)) >= 10, proc, 60, "10 entries journaled")
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err
        (run_id,) = list_runs(journal)
        assert f"Interrupted: run {run_id} stopped before its end" in err
        assert f"policysync rollback {run_id} --journal {journal}" in err
        result = json.loads(out)
        assert result["run_id"] == run_id
        assert 0 < result["applied"] < orgs
        assert result["applied"] + result["failed"] == orgs
        assert len(stopped(result)) == result["failed"]

        # the journal is whole and finished: every write it made is journaled as applied
        summary, _ = load_run(journal, run_id)
        assert summary.counts is not None
        assert summary.counts.pending == 0
        assert summary.counts.applied == result["applied"]
        # ... and is what was written: the next apply writes exactly the others
        again = subprocess.run(
            [sys.executable, "-m", "policysync", *apply_args(journal, *args)],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert again.returncode == 0, again.stderr
        finished = json.loads(again.stdout)
        assert (finished["applied"], finished["unchanged"]) == (
            orgs - result["applied"],
            result["applied"],
        )
