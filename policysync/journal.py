"""The apply journal: what each run replaced, written to disk before it is replaced.

A PUT replaces all of an organization's roles, so before each PUT the live policy it
replaces (`prior`) is recorded durably, and `rollback RUN_ID` can put it back even after
the run was killed. One folder per run, one file per organization:

    <base>/<run-id>/run.json            the run: kind, project, environment (--env),
                                        git state, counts, and once it finished, its
                                        manifest
    <base>/<run-id>/<org-name>.json     one organization: prior, desired, state, error

Every file is written whole by `durable.replace`: to a temporary file in the same
folder, fsync'ed, renamed over the old one (atomic), then the folder is fsync'ed. A
reader sees the old file or the new one, never half of one.

The states of an organization:

    pending   written before the PUT; left so if the run died: the outcome is unknown
    applied   the PUT succeeded (Stytch echoed the desired policy)
    unknown   the PUT was sent but its outcome is not known (its answer was lost, a 5xx,
              an echo other than the policy sent): it may have landed; or, for a provider
              that writes role by role (ZenML), part of the write landed; `error` says how
    failed    the PUT is known not to have landed (a 4xx, a connection never made), or
              the read before it failed: `error` says how
    skipped   no PUT was sent (e.g. live changed since the plan): `error` says why

A rollback reads live for every entry whose PUT may have landed (pending, unknown,
applied) and puts the prior back where live is what the run wrote, or, role by role,
either that or the prior (a write role by role that stopped half way).

An entry also holds `holders`: who depended on each role the write deletes, read before
it (ZenML: its assignments; Stytch: the members holding it and the rules assigning it):
a rollback that re-creates the role gives it back to them (Stytch: to the members that
held it directly). And `operations`: each role operation that landed, journaled before
the next is sent (ZenML's writes, role by role; Stytch's re-assignments in a rollback).

Integrity. Each entry holds its prior's fingerprint, and its file name is the one
`entry_name` gives its organization. When the run finishes, `run.json` gets a manifest:
every entry file, whose organization, and the sha256 of its bytes as written (written
once, at the end: rewriting it as entries come would cost O(N^2) bytes). `read_run`
checks all of it and names every problem; a run killed before its manifest was written
is checked by file names and fingerprints only.

Entries hold policies, ids and Stytch's error fields, never credentials: callers pass
messages already redacted.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import json
import re
import secrets
import threading
from collections import Counter
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, NamedTuple, Self, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import PydanticSerializationError

from policysync import __version__, durable
from policysync.canonical import fingerprint
from policysync.errors import UsageError
from policysync.models import OrgPolicy, RoleHolders, RoleOperation
from policysync.plan import OrgError

_CONFIG = ConfigDict(frozen=True, extra="forbid")

EntryState = Literal["pending", "applied", "unknown", "failed", "skipped"]
FinalState = Literal["applied", "unknown", "failed", "skipped"]
# States whose PUT was sent, so that live may be what the run wrote.
MAY_HAVE_LANDED: tuple[EntryState, ...] = ("pending", "unknown", "applied")
RunKind = Literal["apply", "rollback"]
Clock = Callable[[], datetime]

RUN_FILE = "run.json"
_RUN_ID = re.compile(r"[0-9A-Za-z_-][0-9A-Za-z._-]{0,99}")  # no leading dot: no `..`
_UNSAFE = re.compile(r"[^0-9A-Za-z_-]+")
_MODEL = TypeVar("_MODEL", bound=BaseModel)
_PRIVATE = 0o600  # journal files hold live policies: for their owner's eyes only
# Threads storing entries: a few, so that an entry a PUT waits for seldom queues behind
# others being fsynced (concurrent fsyncs of one file system share its journal commits).
WRITING_THREADS = 4


class JournalEntry(BaseModel):
    """One organization of a run (see the module docstring for the states)."""

    model_config = _CONFIG

    organization_id: str = Field(description="As the run addressed it: id, slug or external id.")
    file: str | None = Field(description="The organization file; null when none was used.")
    state: EntryState
    prior: OrgPolicy | None = Field(
        description="The live policy the PUT replaces; null when it could not be read."
    )
    prior_fingerprint: str | None = Field(description="Fingerprint of `prior`.")
    desired: OrgPolicy = Field(description="The policy the run PUTs (or would have).")
    error: OrgError | None = Field(description="Why it failed or was skipped; null otherwise.")
    started_at: str = Field(description="ISO 8601, UTC.")
    finished_at: str | None = Field(description="ISO 8601, UTC; null while pending.")
    git_commit: str | None
    git_dirty: bool | None
    holders: tuple[RoleHolders, ...] = Field(
        default=(),
        description="Who depended on each role the write deletes, read before it: a "
        "rollback that re-creates a role gives it back to them.",
    )
    operations: tuple[RoleOperation, ...] = Field(
        default=(),
        description="The role operations that landed, in order, each journaled before the "
        "next was sent (ZenML's writes; a Stytch rollback's re-assignments).",
    )

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        self.check()
        return self

    def check(self) -> None:
        """ValueError unless the fields agree with the state (what validation checks;
        `model_copy` does not)."""
        pending = self.state == "pending"
        if (self.finished_at is None) != pending:
            raise ValueError("finished_at must be null exactly while the state is pending")
        if (self.error is None) != (self.state in ("pending", "applied")):
            raise ValueError(
                "an entry has an error exactly when it failed, was skipped or is unknown"
            )
        if self.prior is None and self.state in MAY_HAVE_LANDED:
            raise ValueError(f"an entry in state {self.state} must have its prior policy")


class RunCounts(BaseModel):
    """Organizations per final state; `pending` ones were left with an unknown outcome."""

    model_config = _CONFIG

    applied: int = Field(ge=0)
    failed: int = Field(ge=0)
    skipped: int = Field(ge=0)
    pending: int = Field(ge=0)
    unknown: int = Field(0, ge=0, description="Absent from journals of format 1.")


class ManifestEntry(BaseModel):
    """One entry file of a finished run, as it was written."""

    model_config = _CONFIG

    file: str = Field(description="The entry's file name in the run folder.")
    organization_id: str
    sha256: str = Field(pattern="^[0-9a-f]{64}$", description="Of the file's bytes.")


class RunSummary(BaseModel):
    """`run.json`: one apply or rollback run."""

    model_config = _CONFIG

    format_version: Literal["1", "2"] = Field(description="2 since runs have a manifest.")
    run_id: str
    kind: RunKind
    rolled_back_run: str | None = Field(description="The run a rollback undoes; else null.")
    policysync_version: str
    project_id: str = Field(description="The Stytch project, or ZenML Pro API URL, written to.")
    environment: str | None = Field(
        None,
        description="The environment of the settings written to (--env NAME); null without "
        "--env, and in runs made before environments (absent).",
    )
    git_commit: str | None = Field(description="Commit of the policy files; null outside git.")
    git_dirty: bool | None
    started_at: str = Field(description="ISO 8601, UTC.")
    finished_at: str | None = Field(description="Null while running, or if the run died.")
    counts: RunCounts | None = Field(description="Null until the run finished.")
    entries: tuple[ManifestEntry, ...] | None = Field(
        None,
        description="The manifest: every entry file the run wrote, sorted by file name. "
        "Null until the run finished, and in format 1.",
    )

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if (self.rolled_back_run is None) != (self.kind == "apply"):
            raise ValueError("rolled_back_run is set for rollback runs, and only for them")
        if (self.finished_at is None) != (self.counts is None):
            raise ValueError("finished_at and counts are set together, when the run finished")
        has_manifest = self.format_version == "2" and self.finished_at is not None
        if (self.entries is not None) != has_manifest:
            raise ValueError("a run of format 2 has its manifest (entries) once it finished")
        return self


def _now() -> datetime:
    return datetime.now(UTC)


def _timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def entry_name(organization_id: str) -> str:
    """The file name of an organization's entry: a readable prefix of the id, then a
    digest of the whole id, so that no two ids share a name (not even ids differing
    only in case, on a file system that ignores case) and no id can leave the folder."""
    digest = hashlib.sha256(organization_id.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    prefix = _UNSAFE.sub("_", organization_id).strip("_-")[:40]
    return f"{prefix}-{digest}.json" if prefix else f"{digest}.json"


def _json_bytes(model: BaseModel) -> bytes:
    """`model` as indented JSON. pydantic's serializer is much faster than the json
    module's indenting one, but refuses what UTF-8 cannot encode (a lone surrogate in an
    id): such a model is written ASCII-only, with escapes, by the json module."""
    try:
        return model.model_dump_json(indent=2).encode() + b"\n"
    except PydanticSerializationError:
        return (json.dumps(model.model_dump(mode="json"), indent=2) + "\n").encode("ascii")


def unwritable(exc: OSError, path: Path | None = None) -> str:
    """`exc`, met writing the journal at `path` (else at the path `exc` names), as a
    user reads it: where, and the OS's own words."""
    where = path or exc.filename or "its folder"
    words = f"[Errno {exc.errno}] {exc.strerror}" if exc.errno is not None else str(exc)
    return f"cannot write the journal at {where}: {words}"


def _write_json(path: Path, model: BaseModel) -> None:
    """Replace `path` by `model`'s JSON, atomically and durably."""
    durable.replace(path, _json_bytes(model), _PRIVATE)


class _Unreadable(Exception):
    """A journal file that cannot be read as what it should be; its message says why."""


def _parse(data: bytes, model: type[_MODEL]) -> _MODEL:
    """`data` as `model`; _Unreadable saying why not."""
    try:
        return model.model_validate(json.loads(data))
    except (ValueError, RecursionError) as exc:
        if isinstance(exc, ValidationError):
            first = exc.errors()[0]
            where = ".".join(map(str, first["loc"]))
            detail = f"{where}: {first['msg']}" if where else first["msg"]
        else:
            detail = str(exc)
        raise _Unreadable(f"not a readable journal file ({detail})") from None


def _read_json(path: Path, model: type[_MODEL]) -> _MODEL:
    """A journal file as `model`; a damaged one is a UsageError naming it."""
    try:
        return _parse(path.read_bytes(), model)
    except (OSError, _Unreadable) as exc:
        detail = str(exc) if isinstance(exc, _Unreadable) else f"not readable ({exc})"
        raise UsageError(
            f"{path}: {detail}; restore it as policysync wrote it (a rollback needs every "
            "file of the run)"
        ) from None


class Journal:
    """The journal of one run being made: many organizations at once, from one event
    loop. Its writes are coroutines: the files are stored by threads of the journal's
    own, so that the loop goes on sending requests while a file is fsynced."""

    def __init__(self, path: Path, summary: RunSummary, clock: Clock) -> None:
        self.path = path
        self._summary = summary
        self._clock = clock
        self._entries: dict[str, JournalEntry] = {}  # by organization_id
        self._names: set[str] = set()
        self._written: dict[str, ManifestEntry] = {}  # by file name: what is on disk
        self._lock = threading.Lock()
        # A pool of its own: an entry a PUT waits for never queues behind other work
        # of the loop's default executor (name resolution, say).
        self._disk = ThreadPoolExecutor(WRITING_THREADS, thread_name_prefix="journal")
        self._later: set[asyncio.Task[JournalEntry]] = set()  # finish_later's, until done
        # Why the run takes no new organization (the first write that failed, Ctrl-C).
        self.stopped: str | None = None

    @classmethod
    def create(
        cls,
        base: Path,
        *,
        kind: RunKind,
        project_id: str,
        git_commit: str | None,
        git_dirty: bool | None,
        rolled_back_run: str | None = None,
        clock: Clock = _now,
        environment: str | None = None,
    ) -> Journal:
        """A new run folder under `base` (made if missing) with its `run.json`.

        In a `.policysync` folder, a `.gitignore` of `*` is added if there is none:
        journals hold live policies and belong to no commit.
        """
        if (rolled_back_run is None) != (kind == "apply"):
            raise ValueError("rolled_back_run is given for rollback runs, and only for them")
        durable.make_folders(base)
        ignore = base.parent / ".gitignore"
        if base.parent.name == ".policysync" and not (ignore.exists() or ignore.is_symlink()):
            durable.replace(ignore, b"*\n")  # a link left there is neither followed nor replaced
        started = clock()
        while True:  # two runs started in the same second differ by their random part
            run_id = f"{started.astimezone(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"
            with contextlib.suppress(FileExistsError):
                (base / run_id).mkdir()
                break
        durable.fsync_folder(base)  # the run folder's name is durable too
        summary = RunSummary(
            format_version="2",
            run_id=run_id,
            kind=kind,
            rolled_back_run=rolled_back_run,
            policysync_version=__version__,
            project_id=project_id,
            environment=environment,
            git_commit=git_commit,
            git_dirty=git_dirty,
            started_at=_timestamp(started),
            finished_at=None,
            counts=None,
        )
        journal = cls(base / run_id, summary, clock)
        _write_json(journal.path / RUN_FILE, summary)
        return journal

    def stop(self, reason: str) -> None:
        """Take no new organization from now on (the first reason is kept): the run
        finishes the ones in progress, and starts no other."""
        self.stopped = self.stopped or reason

    @property
    def run_id(self) -> str:
        return self._summary.run_id

    @property
    def summary(self) -> RunSummary:
        return self._summary

    async def _write(self, entry: JournalEntry, replaces: JournalEntry | None) -> JournalEntry:
        """Write `entry`, which replaces the organization's entry `replaces` (None for a
        new one). Checked, recorded and serialized on the event loop; stored durably by
        one of the journal's threads, which the loop does not wait for."""
        organization_id, name = entry.organization_id, entry_name(entry.organization_id)
        with self._lock:
            if self._summary.finished_at is not None:
                raise ValueError(f"run {self.run_id} is closed")
            if self._entries.get(organization_id) != replaces:
                raise ValueError(f"organization {organization_id}: not the journaled entry")
            if replaces is None and name in self._names:  # a 64-bit digest collision
                raise ValueError(f"organization {organization_id}: {name} is taken")
            self._entries[organization_id] = entry
            self._names.add(name)
        try:
            data = _json_bytes(entry)
            store = functools.partial(durable.replace, self.path / name, data, _PRIVATE)
            await asyncio.get_running_loop().run_in_executor(self._disk, store)
            digest = hashlib.sha256(data).hexdigest()
            with self._lock:
                self._written[name] = ManifestEntry(
                    file=name, organization_id=organization_id, sha256=digest
                )
        except BaseException as exc:
            if isinstance(exc, OSError):  # a journal that cannot be written stops the run
                self.stop(unwritable(exc, self.path / name))
            with self._lock:  # what is recorded is what is on disk
                if replaces is None:
                    del self._entries[organization_id]
                    self._names.discard(name)
                else:
                    self._entries[organization_id] = replaces
            raise
        return entry

    def _entry(
        self,
        organization_id: str,
        file: str | None,
        state: EntryState,
        prior: OrgPolicy | None,
        desired: OrgPolicy,
        error: OrgError | None,
        prior_fingerprint: str | None = None,
        holders: tuple[RoleHolders, ...] = (),
    ) -> JournalEntry:
        now = _timestamp(self._clock())
        if prior is not None and prior_fingerprint is None:
            prior_fingerprint = fingerprint(prior)
        return JournalEntry(
            organization_id=organization_id,
            file=file,
            state=state,
            prior=prior,
            prior_fingerprint=prior_fingerprint,
            desired=desired,
            error=error,
            started_at=now,
            finished_at=None if state == "pending" else now,
            git_commit=self._summary.git_commit,
            git_dirty=self._summary.git_dirty,
            holders=holders,
        )

    async def begin(
        self,
        organization_id: str,
        *,
        file: str | None,
        prior: OrgPolicy,
        desired: OrgPolicy,
        prior_fingerprint: str | None = None,
        holders: tuple[RoleHolders, ...] = (),
    ) -> JournalEntry:
        """Record, durably, that `prior` (whose roles to be deleted `holders` hold) is
        about to be replaced by `desired`. Call it before the PUT: when it returns, the
        pending entry is on disk. A caller that has `fingerprint(prior)` at hand passes
        it (it costs as much as the rest)."""
        entry = self._entry(
            organization_id, file, "pending", prior, desired, None, prior_fingerprint, holders
        )
        return await self._write(entry, None)

    async def progress(self, entry: JournalEntry, operation: RoleOperation) -> JournalEntry:
        """Rewrite the pending `entry` with one more role operation that landed; the
        entry as written (pass it on to the next call)."""
        if entry.state != "pending":
            raise ValueError(f"organization {entry.organization_id}: not pending")
        more = entry.model_copy(update={"operations": (*entry.operations, operation)})
        return await self._write(more, entry)

    async def finish_org(
        self, entry: JournalEntry, state: FinalState, error: OrgError | None = None
    ) -> JournalEntry:
        """Rewrite the pending `entry` with the outcome of its PUT (an error unless
        applied)."""
        if entry.state != "pending":
            raise ValueError(f"organization {entry.organization_id}: not pending")
        finished = {"state": state, "error": error, "finished_at": _timestamp(self._clock())}
        outcome = entry.model_copy(update=finished)  # its policies are validated already
        outcome.check()
        return await self._write(outcome, entry)

    def finish_later(
        self, entry: JournalEntry, state: FinalState, error: OrgError | None = None
    ) -> None:
        """`finish_org` without waiting for the disk: once the PUT's outcome is known,
        nothing hangs on its entry being durable (if the run dies first, the entry stays
        pending, which means "outcome unknown"). `settle()` waits for them all."""
        task = asyncio.get_running_loop().create_task(self.finish_org(entry, state, error))
        self._later.add(task)
        task.add_done_callback(_forget_if_written(self._later))

    async def settle(self) -> None:
        """Wait for every `finish_later` entry to be on disk; raise the first failure
        (once all are done: the journal can be closed then)."""
        done = await asyncio.gather(*self._later, return_exceptions=True)
        self._later.clear()
        for failure in (outcome for outcome in done if isinstance(outcome, BaseException)):
            raise failure

    async def record(
        self,
        organization_id: str,
        *,
        file: str | None,
        state: Literal["failed", "skipped"],
        prior: OrgPolicy | None,
        desired: OrgPolicy,
        error: OrgError,
    ) -> JournalEntry:
        """Record an organization the run did not write (no PUT was sent), and why."""
        entry = self._entry(organization_id, file, state, prior, desired, error)
        return await self._write(entry, None)

    def close(self) -> RunSummary:
        """Finish `run.json` with the counts of what was journaled (entries still pending,
        their PUT never finished, count as pending) and the manifest of the entry files
        as written. The journal takes no entry after."""
        if self._later:
            raise ValueError(f"run {self.run_id}: entries are still being written: settle() first")
        with self._lock:
            if self._summary.finished_at is not None:
                raise ValueError(f"run {self.run_id} is closed")
            tally = Counter[str](entry.state for entry in self._entries.values())
            counts = RunCounts(**{state: tally[state] for state in RunCounts.model_fields})
            manifest = tuple(self._written[name] for name in sorted(self._written))
            finished: dict[str, Any] = {
                "finished_at": _timestamp(self._clock()),
                "counts": counts,
                "entries": manifest,
            }
            self._summary = RunSummary.model_validate({**dict(self._summary), **finished})
        self._disk.shutdown()  # nothing is left to write: settle() came first
        _write_json(self.path / RUN_FILE, self._summary)
        return self._summary


def _forget_if_written(
    tasks: set[asyncio.Task[JournalEntry]],
) -> Callable[[asyncio.Task[JournalEntry]], None]:
    """A done callback keeping only the tasks whose failure `settle` must raise."""

    def forget(task: asyncio.Task[JournalEntry]) -> None:
        if not task.cancelled() and task.exception() is None:
            tasks.discard(task)

    return forget


def list_runs(base: Path) -> list[str]:
    """The run ids under `base`, newest first (run ids sort by their start time)."""
    if not base.is_dir():
        return []
    runs = (p.name for p in base.iterdir() if p.is_dir() and _RUN_ID.fullmatch(p.name))
    return sorted(runs, reverse=True)


def _available(base: Path) -> str:
    runs = list_runs(base)
    if not runs:
        return f"{base} holds no run: policysync apply journals each run there"
    more = f" (and {len(runs) - 10} older)" if len(runs) > 10 else ""
    return f"runs in {base}, newest first: {', '.join(runs[:10])}{more}"


class Problem(NamedTuple):
    """Something wrong with a run's journal: the file (an organization's entry file
    concerns that organization alone) and what is wrong with it."""

    path: Path
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


@dataclass(frozen=True)
class JournaledRun:
    """A run as read back (`read_run`): its summary, its intact entries (sorted by
    organization_id), and the problems that kept the others out."""

    summary: RunSummary
    entries: list[JournalEntry]
    problems: list[Problem]

    @property
    def has_manifest(self) -> bool:
        """Whether the entries were checked against the run's manifest (else the run
        died before writing it, or is of format 1: file names and fingerprints only)."""
        return self.summary.entries is not None

    def problems_of(self, only: Collection[str]) -> list[Problem]:
        """The problems that concern the organizations `only`: those of their own entry
        files (every problem when `only` is empty)."""
        if not only:
            return list(self.problems)
        names = {entry_name(organization_id) for organization_id in only}
        return [problem for problem in self.problems if problem.path.name in names]


def _entry_problem(path: Path, entry: JournalEntry) -> str | None:
    """What is wrong with the entry `entry`, read from `path`, by itself."""
    own = entry_name(entry.organization_id)
    if path.name != own:
        return (
            f"holds the entry of organization {entry.organization_id}, whose file is {own}: "
            "copied or renamed"
        )
    if entry.prior is None:
        edited = entry.prior_fingerprint is not None
    else:
        edited = fingerprint(entry.prior) != entry.prior_fingerprint
    if edited:
        return "its prior does not match its prior_fingerprint: edited since the run wrote it"
    return None


def read_run(base: Path, run_id: str) -> JournaledRun:
    """A run's summary, its intact entries and what is wrong with the others. An entry
    is intact when it can be read, its file name is its organization's `entry_name`, its
    prior matches its fingerprint and, once the run finished, its bytes are those the
    manifest records. A file the manifest lists but the folder lacks, one it does not
    list, and counts that do not add up are problems too. An id that names no run folder
    of `base`, or a `run.json` that cannot be read, is a UsageError."""
    if not _RUN_ID.fullmatch(run_id):
        raise UsageError(
            f"{run_id!r} is not a run id (the name of a folder in {base}: letters, digits, "
            f"'.', '_' and '-'); {_available(base)}"
        )
    folder = base / run_id
    if not folder.is_dir():
        raise UsageError(f"no run {run_id} in {base}; {_available(base)}")
    if not (folder / RUN_FILE).is_file():
        raise UsageError(
            f"{folder}: no {RUN_FILE}: not a run policysync journaled, or one killed as it "
            f"started, before it wrote anything; {_available(base)}"
        )
    summary = _read_json(folder / RUN_FILE, RunSummary)
    manifest = None if summary.entries is None else {m.file: m for m in summary.entries}
    problems: list[Problem] = []
    entries: list[JournalEntry] = []
    files = 0
    for path in sorted(folder.iterdir()):
        if path.name == RUN_FILE or path.name.startswith(".") or path.suffix != ".json":
            continue  # dot files: a killed write's temporary file, macOS's `._` copies
        files += 1
        try:
            data = path.read_bytes()
            entry = _parse(data, JournalEntry)
        except (OSError, _Unreadable) as exc:
            problems.append(Problem(path, str(exc)))
            continue
        listed = None if manifest is None else manifest.get(path.name)
        wrong = _entry_problem(path, entry)
        if wrong is None and manifest is not None:
            if listed is None:
                wrong = f"not in the manifest of {RUN_FILE}: the run did not write it"
            elif hashlib.sha256(data).hexdigest() != listed.sha256:
                wrong = f"changed since the run wrote it (its sha256 is not {RUN_FILE}'s)"
        if wrong is not None:
            problems.append(Problem(path, wrong))
        else:
            entries.append(entry)
    present = {path.name for path in folder.iterdir()}
    for listed in (manifest or {}).values():
        if listed.file not in present:
            message = f"missing: {RUN_FILE} lists it as the entry of {listed.organization_id}"
            problems.append(Problem(folder / listed.file, message))
    if summary.counts is not None:
        counted = sum(summary.counts.model_dump().values())
        holds = files if manifest is None else len(manifest)
        if counted != holds:
            where = "folder holds" if manifest is None else "manifest lists"
            message = f"its counts add up to {counted} entries, but its {where} {holds}"
            problems.append(Problem(folder / RUN_FILE, message))
    problems.sort(key=lambda problem: problem.path.name)
    entries.sort(key=lambda entry: entry.organization_id)
    return JournaledRun(summary, entries, problems)


def refusal(run: JournaledRun, problems: list[Problem]) -> UsageError:
    """The error refusing a run whose journal does not add up: every problem, and what
    to do."""
    lines = "".join(f"\n  {problem}" for problem in problems)
    return UsageError(
        f"run {run.summary.run_id}: its journal does not add up, so it is not rolled back "
        f"(nothing was written):{lines}\nRestore those files as policysync wrote them "
        "(e.g. from the run's journal artifact), or name the intact organizations with --org"
    )


def load_run(base: Path, run_id: str) -> tuple[RunSummary, list[JournalEntry]]:
    """A run's summary and entries (sorted by organization_id), all intact (`read_run`);
    a UsageError naming every problem otherwise."""
    run = read_run(base, run_id)
    if run.problems:
        raise refusal(run, run.problems)
    return run.summary, run.entries
