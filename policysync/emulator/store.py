"""The emulator's state, in SQLite: one project policy and its organizations.

Every write is one transaction, so a failed or interrupted request changes nothing and
a killed emulator restarted on the same file serves the last committed state. Org
policies are stored as the compact JSON the API returns, so reads need no encoding.
"""

from __future__ import annotations

import base64
import contextlib
import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import NamedTuple

from policysync.emulator.seed import Seed, SeedOrganization
from policysync.models import OrgPolicy, ProjectPolicy

_SCHEMA = """
CREATE TABLE IF NOT EXISTS project (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    policy TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS organizations (
    organization_id TEXT PRIMARY KEY,
    organization_name TEXT NOT NULL,
    organization_slug TEXT NOT NULL UNIQUE,
    organization_external_id TEXT UNIQUE,
    org_policy TEXT NOT NULL,
    org_policy_disabled INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
"""

_COLUMNS = (
    "organization_id, organization_name, organization_slug, organization_external_id, "
    "org_policy, org_policy_disabled, created_at, updated_at"
)


class Organization(NamedTuple):
    organization_id: str
    organization_name: str
    organization_slug: str
    organization_external_id: str | None
    org_policy: str  # compact JSON, as the API returns it
    org_policy_disabled: bool
    created_at: str
    updated_at: str


def compact(policy: OrgPolicy | ProjectPolicy) -> str:
    return policy.model_dump_json()


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Store:
    def __init__(self, path: str = ":memory:") -> None:
        # The emulator serves from one event loop thread; tests may read from another.
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute("PRAGMA synchronous = NORMAL")  # durable when the process dies
        self._db.executescript(_SCHEMA)
        self._policy: ProjectPolicy | None = None

    def close(self) -> None:
        self._db.close()

    def is_empty(self) -> bool:
        return bool(self._db.execute("SELECT count(*) FROM project").fetchone()[0] == 0)

    def load(self, seed: Seed) -> None:
        """Replace the whole state with `seed`, in one transaction."""
        now = _now()
        with self._transaction():
            self._db.execute("DELETE FROM organizations")
            self._db.execute("DELETE FROM project")
            self._db.execute("INSERT INTO project VALUES (1, ?)", (compact(seed.policy),))
            self._db.executemany(
                f"INSERT INTO organizations ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        o.organization_id,
                        o.organization_name,
                        o.organization_slug,
                        o.organization_external_id,
                        compact(o.org_policy),
                        int(o.org_policy_disabled),
                        now,
                        now,
                    )
                    for o in seed.organizations
                ],
            )
        self._policy = seed.policy

    def project_policy(self) -> ProjectPolicy:
        if self._policy is None:
            row = self._db.execute("SELECT policy FROM project").fetchone()
            raw = row[0] if row else '{"roles": [], "resources": [], "scopes": []}'
            self._policy = ProjectPolicy.model_validate_json(raw)
        return self._policy

    def find(self, key: str) -> Organization | None:
        """The organization whose id, slug or external id is `key`."""
        row = self._db.execute(
            f"SELECT {_COLUMNS} FROM organizations WHERE organization_id = ?1 "
            "OR organization_slug = ?1 OR organization_external_id = ?1 LIMIT 1",
            (key,),
        ).fetchone()
        return Organization(*row) if row else None

    def set_org_policy(self, organization_id: str, policy: OrgPolicy) -> str:
        """Replace every org-specific role of one organization; returns the stored JSON."""
        stored = compact(policy)
        with self._transaction():
            self._db.execute(
                "UPDATE organizations SET org_policy = ?, updated_at = ? WHERE organization_id = ?",
                (stored, _now(), organization_id),
            )
        return stored

    def search(self, limit: int, cursor: str | None) -> tuple[list[Organization], int, str | None]:
        """One page of organizations in id order, the total, and the next page's cursor."""
        after = _decode_cursor(cursor) if cursor else ""
        rows = self._db.execute(
            f"SELECT {_COLUMNS} FROM organizations WHERE organization_id > ? "
            "ORDER BY organization_id LIMIT ?",
            (after, limit + 1),
        ).fetchall()
        total = self._db.execute("SELECT count(*) FROM organizations").fetchone()[0]
        page = [Organization(*r) for r in rows[:limit]]
        more = len(rows) > limit
        return page, total, (_encode_cursor(page[-1].organization_id) if more else None)

    def dump(self) -> Seed:
        rows = self._db.execute(
            f"SELECT {_COLUMNS} FROM organizations ORDER BY organization_id"
        ).fetchall()
        organizations = tuple(
            SeedOrganization(
                organization_id=o.organization_id,
                organization_name=o.organization_name,
                organization_slug=o.organization_slug,
                organization_external_id=o.organization_external_id,
                org_policy=OrgPolicy.model_validate_json(o.org_policy),
                org_policy_disabled=bool(o.org_policy_disabled),
            )
            for o in map(Organization._make, rows)
        )
        return Seed(policy=self.project_policy(), organizations=organizations)

    def _transaction(self) -> contextlib.AbstractContextManager[None]:
        return transaction(self._db)


@contextlib.contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[None]:
    """Commit when the block succeeds, roll back when it raises; inside a transaction
    already, the block is part of it (the outer one commits)."""
    if db.in_transaction:
        yield
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def _encode_cursor(organization_id: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([organization_id]).encode()).decode()


def _decode_cursor(cursor: str) -> str:
    try:
        decoded = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, TypeError, RecursionError) as exc:  # RecursionError: nested deep
        raise ValueError("cursor is not one this server issued") from exc
    if not (isinstance(decoded, list) and len(decoded) == 1 and isinstance(decoded[0], str)):
        raise ValueError("cursor is not one this server issued")
    return decoded[0]
