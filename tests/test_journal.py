"""The apply journal, on real folders: durability, hostile ids, damaged files."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from support.planted import OUTSIDE, plant_links

from policysync import __version__, durable
from policysync.canonical import fingerprint
from policysync.errors import UsageError
from policysync.journal import (
    Journal,
    JournalEntry,
    RunCounts,
    RunKind,
    entry_name,
    list_runs,
    load_run,
    read_run,
)
from policysync.models import OrgPolicy, Permission, Role
from policysync.plan import OrgError

START = datetime(2026, 11, 23, 10, 44, 55, tzinfo=UTC)
PRIOR = OrgPolicy(
    roles=(
        Role(
            role_id="invoice-approver",
            description="Approves invoices",
            permissions=(Permission(resource_id="invoices", actions=("read", "approve")),),
        ),
    )
)
DESIRED = OrgPolicy(roles=())
NOT_FOUND = OrgError(
    status=404,
    error_type="organization_not_found",
    message="Organization could not be found.",
    request_id="request-id-test-1",
)
HOSTILE_IDS = [
    "../x",
    "..",
    ".",
    "a/b",
    "a%2Fb",
    "a_b",
    "a b",
    "/etc/passwd",
    "C:\\windows",
    "run",
    "run.json",
    "",
    "société-générale",
    "日本",
    "emoji-\N{ROCKET}",
    "nul\x00byte",
    "lone-\ud800-surrogate",
    "x" * 5000,
    "x" * 4999 + "y",
    "Acme",
    "acme",
    "ACME",
]


def ticking(start: datetime = START) -> Iterator[datetime]:
    moment = start
    while True:
        yield moment
        moment += timedelta(seconds=1)


def create(
    base: Path, start: datetime = START, kind: RunKind = "apply", rolled_back_run: str | None = None
) -> Journal:
    return Journal.create(
        base,
        kind=kind,
        project_id="project-test-00000000-0000-4000-8000-000000000000",
        git_commit="0123456789abcdef0123456789abcdef01234567",
        git_dirty=False,
        rolled_back_run=rolled_back_run,
        clock=ticking(start).__next__,
    )


def test_round_trip_of_a_finished_run(tmp_path: Path) -> None:
    base = tmp_path / ".policysync" / "journal"
    journal = create(base)
    acme = asyncio.run(
        journal.begin("acme", file="policies/orgs/acme.json", prior=PRIOR, desired=DESIRED)
    )
    applied = asyncio.run(journal.finish_org(acme, "applied"))
    globex = asyncio.run(
        journal.begin("globex", file="policies/orgs/globex.json", prior=DESIRED, desired=PRIOR)
    )
    failed = asyncio.run(journal.finish_org(globex, "failed", NOT_FOUND))
    stale = OrgError(status=None, error_type="stale", message="live changed", request_id=None)
    skipped = asyncio.run(journal.record(
        "hooli", file="policies/orgs/hooli.json", state="skipped", prior=None, desired=PRIOR,
        error=stale,
    ))  # fmt: skip
    closed = journal.close()

    summary, entries = load_run(base, journal.run_id)
    assert summary == closed
    assert entries == [applied, failed, skipped]  # sorted by organization_id
    assert summary.run_id == journal.run_id == journal.path.name
    assert journal.path == base / journal.run_id
    assert summary.kind == "apply"
    assert summary.rolled_back_run is None
    assert summary.policysync_version == __version__
    assert summary.started_at == "2026-11-23T10:44:55Z"
    assert summary.finished_at is not None
    assert summary.finished_at > summary.started_at
    assert summary.counts == RunCounts(applied=1, failed=1, skipped=1, pending=0)
    assert applied.state == "applied"
    assert applied.prior == PRIOR
    assert applied.desired == DESIRED
    assert applied.prior_fingerprint == fingerprint(PRIOR)
    assert applied.error is None
    assert applied.started_at < (applied.finished_at or "")
    assert applied.git_commit == "0123456789abcdef0123456789abcdef01234567"
    assert applied.git_dirty is False
    assert failed.error == NOT_FOUND
    assert skipped.prior_fingerprint is None
    assert sorted(p.name for p in journal.path.iterdir()) == sorted(
        ["run.json", entry_name("acme"), entry_name("globex"), entry_name("hooli")]
    )


def test_rollback_run_names_the_run_it_undoes(tmp_path: Path) -> None:
    undone = create(tmp_path).run_id
    journal = create(tmp_path, kind="rollback", rolled_back_run=undone)
    summary, entries = load_run(tmp_path, journal.run_id)
    assert (summary.kind, summary.rolled_back_run) == ("rollback", undone)
    assert summary.finished_at is None
    assert summary.counts is None
    assert entries == []
    with pytest.raises(ValueError, match="rolled_back_run"):
        create(tmp_path, kind="rollback")
    with pytest.raises(ValueError, match="rolled_back_run"):
        create(tmp_path, kind="apply", rolled_back_run=undone)
    assert len(list_runs(tmp_path)) == 2  # refused before making a folder


def test_pending_entry_is_on_disk_when_begin_returns(tmp_path: Path) -> None:
    journal = create(tmp_path)
    asyncio.run(journal.begin("acme", file="policies/orgs/acme.json", prior=PRIOR, desired=DESIRED))
    on_disk = json.loads((journal.path / entry_name("acme")).read_text())
    assert on_disk["state"] == "pending"
    assert on_disk["finished_at"] is None
    assert OrgPolicy.model_validate(on_disk["prior"]) == PRIOR


CRASHING_RUN = """
import asyncio, os, signal, sys
from pathlib import Path
from policysync.journal import Journal
from policysync.models import OrgPolicy
prior = OrgPolicy.model_validate_json(sys.argv[2])
journal = Journal.create(Path(sys.argv[1]), kind="apply", project_id="project-test-x",
                         git_commit=None, git_dirty=None)
empty = OrgPolicy(roles=())
entry = asyncio.run(journal.begin("acme", file="acme.json", prior=prior, desired=empty))
globex = asyncio.run(journal.begin("globex", file=None, prior=prior, desired=prior))
asyncio.run(journal.finish_org(globex, "applied"))
print(journal.run_id, flush=True)
os.kill(os.getpid(), signal.SIGKILL)  # between begin and the PUT's outcome
"""


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_a_run_killed_after_begin_leaves_the_entry_pending(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-c", CRASHING_RUN, str(tmp_path), PRIOR.model_dump_json()],
        capture_output=True,
        text=True,
    )
    assert run.returncode == -signal.SIGKILL, run.stderr
    summary, entries = load_run(tmp_path, run.stdout.strip())
    assert summary.finished_at is None  # the run never closed
    assert [(e.organization_id, e.state) for e in entries] == [
        ("acme", "pending"),
        ("globex", "applied"),
    ]
    assert entries[0].prior == PRIOR  # what rollback needs survived the kill


def test_close_counts_entries_left_pending(tmp_path: Path) -> None:
    journal = create(tmp_path)
    asyncio.run(journal.begin("acme", file=None, prior=PRIOR, desired=DESIRED))
    assert journal.close().counts == RunCounts(applied=0, failed=0, skipped=0, pending=1)
    with pytest.raises(ValueError, match="closed"):
        asyncio.run(journal.begin("globex", file=None, prior=PRIOR, desired=DESIRED))
    with pytest.raises(ValueError, match="closed"):
        journal.close()


def test_entries_are_stored_by_durable_replace_off_the_event_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every file goes through the one atomic write (`durable.replace`), private to its
    owner; an entry is stored by a thread, so that the loop is free meanwhile: here a
    slow fsync lets another coroutine run to its end before `begin` returns."""
    from policysync import durable

    calls: list[tuple[str, int, bool]] = []
    real_replace = durable.replace
    loop_thread = threading.get_ident()

    def replace(path: Path, data: bytes, mode: int = 0o666) -> None:
        calls.append((path.name, mode, threading.get_ident() == loop_thread))
        if path.name != "run.json":
            time.sleep(0.2)  # a slow disk
        real_replace(path, data, mode)

    monkeypatch.setattr(durable, "replace", replace)
    journal = create(tmp_path)
    ticks: list[int] = []

    async def ticking() -> None:
        for i in range(5):
            ticks.append(i)
            await asyncio.sleep(0)

    async def go() -> None:
        ticker = asyncio.ensure_future(ticking())
        await journal.begin("acme", file=None, prior=PRIOR, desired=DESIRED)
        assert ticks == [0, 1, 2, 3, 4]  # ran while the entry was being stored
        await ticker

    asyncio.run(go())
    journal.close()
    acme = entry_name("acme")
    assert calls == [("run.json", 0o600, True), (acme, 0o600, False), ("run.json", 0o600, True)]


def test_entries_follow_their_states(tmp_path: Path) -> None:
    journal = create(tmp_path)
    entry = asyncio.run(journal.begin("acme", file=None, prior=PRIOR, desired=DESIRED))
    with pytest.raises(ValueError, match="not the journaled entry"):
        asyncio.run(journal.begin("acme", file=None, prior=PRIOR, desired=DESIRED))
    with pytest.raises(ValueError, match="error exactly when"):
        asyncio.run(journal.finish_org(entry, "failed"))  # a failure says why
    with pytest.raises(ValueError, match="error exactly when"):
        asyncio.run(journal.finish_org(entry, "applied", NOT_FOUND))
    done = asyncio.run(journal.finish_org(entry, "applied"))
    with pytest.raises(ValueError, match="not pending"):
        asyncio.run(journal.finish_org(done, "failed", NOT_FOUND))
    with pytest.raises(ValueError, match="not the journaled entry"):
        asyncio.run(
            journal.finish_org(entry, "failed", NOT_FOUND)
        )  # stale copy of the pending entry
    assert load_run(tmp_path, journal.run_id)[1] == [done]


def test_every_write_is_fsynced_then_renamed_then_its_folder_fsynced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An entry (stored by a thread) and run.json alike: the file is synced, renamed,
    then its folder synced; the pending entry before `begin` returns."""
    journal = create(tmp_path)
    events: list[tuple[str, int | str]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        info = os.fstat(fd)
        events.append(("dir" if stat.S_ISDIR(info.st_mode) else "file", info.st_ino))
        real_fsync(fd)

    def replace(src: str, dst: str) -> None:
        events.append(("replace", Path(dst).name))
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    name = entry_name("a/../b")
    asyncio.run(journal.begin("a/../b", file=None, prior=PRIOR, desired=DESIRED))
    folder = [("dir", journal.path.stat().st_ino)] if os.name != "nt" else []
    assert events == [
        ("file", (journal.path / name).stat().st_ino),  # the renamed file is the synced one
        ("replace", name),
        *folder,
    ]
    events.clear()
    journal.close()
    assert events == [
        ("file", (journal.path / "run.json").stat().st_ino),
        ("replace", "run.json"),
        *folder,
    ]


def test_create_makes_the_new_folders_durable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[int] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(os.fstat(fd).st_ino)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    base = tmp_path / ".policysync" / "journal"
    journal = create(base)
    for folder in (tmp_path, tmp_path / ".policysync", base, journal.path):
        assert folder.stat().st_ino in synced, folder
    assert (journal.path / "run.json").stat().st_ino in synced


def test_a_failed_write_leaves_nothing_behind(tmp_path: Path) -> None:
    """The thread's error comes back as the OSError it was (errno kept)."""
    journal = create(tmp_path)
    blocker = journal.path / entry_name("acme")
    blocker.mkdir()  # the entry cannot be written: a folder is in the way
    with pytest.raises(IsADirectoryError):
        asyncio.run(journal.begin("acme", file=None, prior=PRIOR, desired=DESIRED))
    blocker.rmdir()
    assert sorted(p.name for p in journal.path.iterdir()) == ["run.json"]  # no temp file
    entry = asyncio.run(journal.begin("acme", file=None, prior=PRIOR, desired=DESIRED))  # not taken
    assert load_run(tmp_path, journal.run_id)[1] == [entry]


@pytest.mark.skipif(sys.platform == "win32", reason="symbolic links need privileges there")
def test_an_entry_is_never_written_through_a_planted_link(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal = create(tmp_path / "journal")
    planted = plant_links(monkeypatch, tmp_path / "outside.txt")
    with pytest.raises(FileExistsError):
        asyncio.run(journal.begin("acme", file=None, prior=PRIOR, desired=DESIRED))
    assert [link.name for link in planted] == [f".{entry_name('acme')}.guessed.tmp"]
    assert (tmp_path / "outside.txt").read_bytes() == OUTSIDE
    assert not (journal.path / entry_name("acme")).exists()


def test_entry_names_are_distinct_safe_and_stable() -> None:
    names = [entry_name(organization_id) for organization_id in HOSTILE_IDS]
    assert len({name.casefold() for name in names}) == len(HOSTILE_IDS)
    for name in names:
        assert re.fullmatch(r"[0-9A-Za-z_-][0-9A-Za-z._-]*\.json", name), name
        assert ".." not in name
        assert len(name) <= 80
        assert name != "run.json"
    assert entry_name("acme") == entry_name("acme")
    assert entry_name("organization-test-07971b06/x") == (
        # a digest of the id, never Python's per-process hash()
        "organization-test-07971b06_x-2447eea5bcae9623.json"
    )


def test_hostile_ids_stay_in_the_run_folder_and_round_trip(tmp_path: Path) -> None:
    base = tmp_path / "journal"
    journal = create(base)
    for organization_id in HOSTILE_IDS:
        asyncio.run(journal.begin(organization_id, file=None, prior=PRIOR, desired=DESIRED))
    journal.close()
    inside = {str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")}
    assert inside == {
        "journal",
        f"journal/{journal.run_id}",
        f"journal/{journal.run_id}/run.json",
        *(f"journal/{journal.run_id}/{entry_name(i)}" for i in HOSTILE_IDS),
    }
    _, entries = load_run(base, journal.run_id)
    assert [entry.organization_id for entry in entries] == sorted(HOSTILE_IDS)


def test_run_ids_sort_by_start_time_and_never_collide(tmp_path: Path) -> None:
    runs = [create(tmp_path).run_id for _ in range(5)]  # all in the same second
    assert len(set(runs)) == 5
    for run_id in runs:
        assert re.fullmatch(r"20261123T104455Z-[0-9a-f]{6}", run_id)
    later = create(tmp_path, START + timedelta(seconds=1)).run_id
    earlier = create(tmp_path, START - timedelta(days=400)).run_id
    assert list_runs(tmp_path)[0] == later
    assert list_runs(tmp_path)[-1] == earlier


def test_list_runs_newest_first(tmp_path: Path) -> None:
    assert list_runs(tmp_path / "missing") == []
    offsets = [3, 0, 7, 1]
    runs = {offset: create(tmp_path, START + timedelta(hours=offset)).run_id for offset in offsets}
    (tmp_path / "notes.txt").write_text("not a run")
    (tmp_path / ".hidden").mkdir()
    assert list_runs(tmp_path) == [runs[7], runs[3], runs[1], runs[0]]


@pytest.mark.parametrize(
    "run_id", ["..", ".", "", "../outside", "a/b", "/etc", "x\x00", ".hidden", "run id", "é"]
)
def test_a_run_id_that_is_not_a_folder_name_is_refused(tmp_path: Path, run_id: str) -> None:
    base = tmp_path / "journal"
    kept = create(base).run_id
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "run.json").write_text("{}")
    with pytest.raises(UsageError, match="is not a run id") as caught:
        load_run(base, run_id)
    assert str(base) in str(caught.value)
    assert kept in str(caught.value)  # it says which runs there are


def test_an_unknown_run_lists_the_newest_ten(tmp_path: Path) -> None:
    runs = [create(tmp_path, START + timedelta(minutes=m)).run_id for m in range(12)]
    with pytest.raises(UsageError) as caught:
        load_run(tmp_path, "20250101T000000Z-000000")
    message = str(caught.value)
    assert f"no run 20250101T000000Z-000000 in {tmp_path}" in message
    assert ", ".join(reversed(runs[2:])) in message
    assert runs[0] not in message
    assert runs[1] not in message
    assert "and 2 older" in message


def test_an_unknown_run_in_an_empty_journal(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="holds no run"):
        load_run(tmp_path / "journal", "20250101T000000Z-000000")


def test_a_folder_without_run_json_is_no_run(tmp_path: Path) -> None:
    (tmp_path / "20250101T000000Z-000000").mkdir()
    with pytest.raises(UsageError, match=r"no run\.json"):
        load_run(tmp_path, "20250101T000000Z-000000")


@pytest.mark.parametrize(
    ("damage", "detail"),
    [
        (lambda text: text[: len(text) // 2], "Expecting|Unterminated"),
        (lambda text: "", "Expecting value"),
        (lambda text: "[]", "valid dictionary"),
        (lambda text: text.replace('"pending"', '"done"'), "state"),
        (lambda text: text.replace('"state"', '"status": 1, "state"'), "status"),
        (lambda text: text.replace('"finished_at": null', '"finished_at": "x"'), "finished_at"),
    ],
)
def test_a_damaged_entry_is_a_usage_error_naming_the_file(
    tmp_path: Path, damage: Callable[[str], str], detail: str
) -> None:
    journal = create(tmp_path)
    asyncio.run(journal.begin("acme", file=None, prior=PRIOR, desired=DESIRED))
    path = journal.path / entry_name("acme")
    path.write_text(damage(path.read_text()))
    with pytest.raises(UsageError, match=detail) as caught:
        load_run(tmp_path, journal.run_id)
    assert f"\n  {path}: not a readable journal file" in str(caught.value)


def test_a_damaged_run_json_is_a_usage_error_naming_it(tmp_path: Path) -> None:
    journal = create(tmp_path)
    (journal.path / "run.json").write_bytes(b"\xff\xfe{")
    with pytest.raises(UsageError, match=r"run\.json: not a readable journal file"):
        load_run(tmp_path, journal.run_id)


def test_an_organization_journaled_twice_is_refused(tmp_path: Path) -> None:
    journal = create(tmp_path)
    asyncio.run(journal.begin("acme", file=None, prior=PRIOR, desired=DESIRED))
    copy = journal.path / "copy.json"
    copy.write_text((journal.path / entry_name("acme")).read_text())
    with pytest.raises(UsageError, match="copied or renamed") as caught:
        load_run(tmp_path, journal.run_id)
    assert f"{copy}: holds the entry of organization acme, whose file is " in str(caught.value)
    assert entry_name("acme") in str(caught.value)


def test_temporary_and_hidden_files_are_ignored(tmp_path: Path) -> None:
    journal = create(tmp_path)
    entry = asyncio.run(journal.begin("acme", file=None, prior=PRIOR, desired=DESIRED))
    (journal.path / f".{entry_name('acme')}.x1y2.tmp").write_text('{"trunc')  # a killed write
    (journal.path / f"._{entry_name('acme')}").write_bytes(b"\x00\x05\x16\x07")  # macOS copy
    assert load_run(tmp_path, journal.run_id)[1] == [entry]


def test_gitignore_in_a_policysync_folder(tmp_path: Path) -> None:
    create(tmp_path / ".policysync" / "journal")
    assert (tmp_path / ".policysync" / ".gitignore").read_text() == "*\n"
    (tmp_path / ".policysync" / ".gitignore").write_text("journal/\n")
    create(tmp_path / ".policysync" / "journal")
    assert (tmp_path / ".policysync" / ".gitignore").read_text() == "journal/\n"  # kept
    create(tmp_path / "elsewhere" / "journal")
    assert not (tmp_path / "elsewhere" / ".gitignore").exists()


def test_entries_reject_inconsistent_states() -> None:
    fields: dict[str, object] = {
        "organization_id": "acme",
        "file": None,
        "prior": PRIOR,
        "prior_fingerprint": fingerprint(PRIOR),
        "desired": DESIRED,
        "started_at": "2026-11-23T10:44:55Z",
        "git_commit": None,
        "git_dirty": None,
    }
    later = "2026-11-23T10:44:56Z"
    JournalEntry.model_validate({**fields, "state": "pending", "error": None, "finished_at": None})
    bad: list[tuple[dict[str, object], str]] = [
        ({"state": "pending", "error": None, "finished_at": later}, "finished_at must be null"),
        ({"state": "applied", "error": None, "finished_at": None}, "finished_at must be null"),
        ({"state": "skipped", "error": None, "finished_at": later}, "error exactly when"),
        ({"state": "applied", "error": NOT_FOUND, "finished_at": later}, "error exactly when"),
        ({"state": "pending", "error": None, "finished_at": None, "prior": None}, "prior policy"),
    ]
    for changes, message in bad:
        with pytest.raises(ValueError, match=message):
            JournalEntry.model_validate({**fields, **changes})


def test_finish_later_is_on_disk_once_settled(tmp_path: Path) -> None:
    base = tmp_path / "journal"
    journal = create(base)

    async def go() -> None:
        acme = await journal.begin("acme", file=None, prior=PRIOR, desired=DESIRED)
        globex = await journal.begin("globex", file=None, prior=PRIOR, desired=DESIRED)
        journal.finish_later(acme, "applied")
        journal.finish_later(globex, "failed", NOT_FOUND)
        with pytest.raises(ValueError, match="still being written"):
            journal.close()  # not before they are on disk
        await journal.settle()

    asyncio.run(go())
    journal.close()
    _, entries = load_run(base, journal.run_id)
    assert [(e.organization_id, e.state) for e in entries] == [
        ("acme", "applied"),
        ("globex", "failed"),
    ]


def test_settle_raises_a_finish_that_could_not_be_written(tmp_path: Path) -> None:
    journal = create(tmp_path / "journal")

    async def go() -> None:
        entry = await journal.begin("acme", file=None, prior=PRIOR, desired=DESIRED)
        for path in journal.path.iterdir():
            path.unlink()
        journal.path.rmdir()  # the run folder is gone: the final entry cannot be written
        journal.finish_later(entry, "applied")
        with pytest.raises(FileNotFoundError):
            await journal.settle()

    asyncio.run(go())


# --- unknown outcomes ------------------------------------------------------------------

LOST = OrgError(
    status=None,
    error_type="connection_error",
    message="no answer from http://127.0.0.1/ to PUT …: RemoteProtocolError",
    request_id=None,
)


def test_an_unknown_outcome_is_a_state_of_its_own(tmp_path: Path) -> None:
    journal = create(tmp_path)
    entry = asyncio.run(journal.begin("acme", file=None, prior=PRIOR, desired=DESIRED))
    unknown = asyncio.run(journal.finish_org(entry, "unknown", LOST))
    assert (unknown.state, unknown.error, unknown.prior) == ("unknown", LOST, PRIOR)
    assert journal.close().counts == RunCounts(applied=0, failed=0, skipped=0, pending=0, unknown=1)
    assert load_run(tmp_path, journal.run_id)[1] == [unknown]
    fields = unknown.model_dump()
    with pytest.raises(ValueError, match="error exactly when"):
        JournalEntry.model_validate({**fields, "error": None})
    with pytest.raises(ValueError, match="prior policy"):
        JournalEntry.model_validate({**fields, "prior": None, "prior_fingerprint": None})


# --- integrity -------------------------------------------------------------------------

ORGS = ("acme", "globex", "hooli", "initech")


def finished_run(base: Path) -> Journal:
    """A finished run of four organizations: three applied, one failed."""
    journal = create(base)

    async def go() -> None:
        for organization_id in ORGS:
            entry = await journal.begin(organization_id, file=None, prior=PRIOR, desired=DESIRED)
            failed = organization_id == "initech"
            await journal.finish_org(
                entry, "failed" if failed else "applied", NOT_FOUND if failed else None
            )

    asyncio.run(go())
    journal.close()
    return journal


def edit(path: Path, change: Callable[[dict[str, object]], None]) -> None:
    document = json.loads(path.read_text())
    change(document)
    path.write_text(json.dumps(document, indent=2))


def problems(base: Path, run_id: str) -> list[str]:
    return [
        f"{problem.path.name}: {problem.message}" for problem in read_run(base, run_id).problems
    ]


def granting_everything(entry: dict[str, object]) -> None:
    prior = entry["prior"]
    assert isinstance(prior, dict)
    everything = {"resource_id": "stytch.member", "actions": ["*"]}
    prior["roles"].append({"role_id": "backdoor", "description": "", "permissions": [everything]})


def test_a_finished_run_has_a_manifest_of_its_entry_files(tmp_path: Path) -> None:
    journal = finished_run(tmp_path)
    run = read_run(tmp_path, journal.run_id)
    assert run.problems == []
    assert run.has_manifest
    assert run.summary.format_version == "2"
    assert run.summary.entries is not None
    listed = {m.file: (m.organization_id, m.sha256) for m in run.summary.entries}
    assert listed == {
        entry_name(o): (o, hashlib.sha256((journal.path / entry_name(o)).read_bytes()).hexdigest())
        for o in ORGS
    }
    assert [m.file for m in run.summary.entries] == sorted(listed)


def test_a_hand_edited_prior_is_refused(tmp_path: Path) -> None:
    journal = finished_run(tmp_path)
    acme = journal.path / entry_name("acme")
    edit(acme, granting_everything)
    assert problems(tmp_path, journal.run_id) == [
        f"{acme.name}: its prior does not match its prior_fingerprint: edited since the run "
        "wrote it"
    ]
    with pytest.raises(UsageError, match="does not add up") as caught:
        load_run(tmp_path, journal.run_id)
    assert str(acme) in str(caught.value)
    run = read_run(tmp_path, journal.run_id)
    assert [e.organization_id for e in run.entries] == ["globex", "hooli", "initech"]
    assert run.problems_of(["globex", "hooli"]) == []  # --org can restore the intact ones
    assert len(run.problems_of(["acme"])) == 1


def test_an_edit_with_its_fingerprint_recomputed_breaks_the_manifest(tmp_path: Path) -> None:
    journal = finished_run(tmp_path)
    acme = journal.path / entry_name("acme")

    def forge(entry: dict[str, object]) -> None:
        granting_everything(entry)
        entry["prior_fingerprint"] = fingerprint(OrgPolicy.model_validate(entry["prior"]))

    edit(acme, forge)
    assert problems(tmp_path, journal.run_id) == [
        f"{acme.name}: changed since the run wrote it (its sha256 is not run.json's)"
    ]


def test_a_deleted_entry_is_missing(tmp_path: Path) -> None:
    journal = finished_run(tmp_path)
    (journal.path / entry_name("globex")).unlink()
    assert problems(tmp_path, journal.run_id) == [
        f"{entry_name('globex')}: missing: run.json lists it as the entry of globex"
    ]
    run = read_run(tmp_path, journal.run_id)
    assert run.problems_of(["acme"]) == []
    assert len(run.problems_of(["globex"])) == 1


def test_an_entry_copied_under_another_organizations_name_is_refused(tmp_path: Path) -> None:
    journal = finished_run(tmp_path)
    acme, globex = (journal.path / entry_name(o) for o in ("acme", "globex"))
    globex.write_bytes(acme.read_bytes())  # acme's prior would be written into globex
    assert problems(tmp_path, journal.run_id) == [
        f"{globex.name}: holds the entry of organization acme, whose file is {acme.name}: "
        "copied or renamed"
    ]
    run = read_run(tmp_path, journal.run_id)
    assert "globex" not in [e.organization_id for e in run.entries]
    assert run.problems_of(["acme"]) == []  # acme's own entry is intact
    assert len(run.problems_of(["globex"])) == 1


def test_a_renamed_entry_is_refused(tmp_path: Path) -> None:
    journal = finished_run(tmp_path)
    hooli = journal.path / entry_name("hooli")
    hooli.rename(journal.path / "hooli.json")
    assert problems(tmp_path, journal.run_id) == [
        f"{hooli.name}: missing: run.json lists it as the entry of hooli",
        f"hooli.json: holds the entry of organization hooli, whose file is {hooli.name}: "
        "copied or renamed",
    ]


def test_the_manifest_must_match_the_folder(tmp_path: Path) -> None:
    journal = finished_run(tmp_path)
    run_json = journal.path / "run.json"

    def other_digest(summary: dict[str, object]) -> None:
        entries = summary["entries"]
        assert isinstance(entries, list)
        entries[0]["sha256"] = "0" * 64

    edit(run_json, other_digest)
    first = sorted(entry_name(o) for o in ORGS)[0]
    assert problems(tmp_path, journal.run_id) == [
        f"{first}: changed since the run wrote it (its sha256 is not run.json's)"
    ]

    # an entry the run did not write (made by another run) is not in the manifest
    other = create(tmp_path)
    asyncio.run(other.begin("umbrella", file=None, prior=PRIOR, desired=DESIRED))
    (journal.path / entry_name("umbrella")).write_bytes(
        (other.path / entry_name("umbrella")).read_bytes()
    )
    assert (
        f"{entry_name('umbrella')}: not in the manifest of run.json: the run did not write it"
        in problems(tmp_path, journal.run_id)
    )


def test_counts_that_do_not_add_up_are_refused(tmp_path: Path) -> None:
    journal = finished_run(tmp_path)

    def one_more(summary: dict[str, object]) -> None:
        counts = summary["counts"]
        assert isinstance(counts, dict)
        counts["applied"] += 1

    edit(journal.path / "run.json", one_more)
    assert problems(tmp_path, journal.run_id) == [
        "run.json: its counts add up to 5 entries, but its manifest lists 4"
    ]
    assert read_run(tmp_path, journal.run_id).problems_of(["acme"]) == []


def test_a_run_of_format_1_is_checked_against_its_counts(tmp_path: Path) -> None:
    """Journals written before the manifest: file names, fingerprints and counts."""
    journal = finished_run(tmp_path)

    def older(summary: dict[str, object]) -> None:
        summary["format_version"] = "1"
        del summary["entries"]
        counts = summary["counts"]
        assert isinstance(counts, dict)
        del counts["unknown"]

    edit(journal.path / "run.json", older)
    run = read_run(tmp_path, journal.run_id)
    assert (run.problems, run.has_manifest) == ([], False)
    (journal.path / entry_name("globex")).unlink()
    assert problems(tmp_path, journal.run_id) == [
        "run.json: its counts add up to 4 entries, but its folder holds 3"
    ]


def test_a_killed_run_is_checked_by_names_and_fingerprints(tmp_path: Path) -> None:
    journal = create(tmp_path)

    async def go() -> None:
        for organization_id in ORGS:
            entry = await journal.begin(organization_id, file=None, prior=PRIOR, desired=DESIRED)
            if organization_id != "initech":  # killed before its PUT's outcome was journaled
                await journal.finish_org(entry, "applied")

    asyncio.run(go())  # and never closed: no manifest
    run = read_run(tmp_path, journal.run_id)
    assert (run.problems, run.has_manifest) == ([], False)
    assert [(e.organization_id, e.state) for e in run.entries] == [
        ("acme", "applied"),
        ("globex", "applied"),
        ("hooli", "applied"),
        ("initech", "pending"),
    ]
    edit(journal.path / entry_name("initech"), granting_everything)
    (journal.path / "copy.json").write_bytes((journal.path / entry_name("acme")).read_bytes())
    assert problems(tmp_path, journal.run_id) == [
        f"copy.json: holds the entry of organization acme, whose file is {entry_name('acme')}: "
        "copied or renamed",
        f"{entry_name('initech')}: its prior does not match its prior_fingerprint: edited "
        "since the run wrote it",
    ]


def test_writing_the_manifest_costs_one_run_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """run.json is written twice per run, whatever the number of entries: bytes written
    grow linearly with the organizations, not with their square."""
    written: list[str] = []
    replace = durable.replace

    def counting(path: Path, data: bytes, mode: int = 0o666) -> None:
        written.append(path.name)
        replace(path, data, mode)

    monkeypatch.setattr(durable, "replace", counting)
    journal = finished_run(tmp_path)
    assert written.count("run.json") == 2  # created, then finished with its manifest
    assert len(written) == 2 + 2 * len(ORGS)  # each entry: pending, then its outcome
    assert read_run(tmp_path, journal.run_id).problems == []
