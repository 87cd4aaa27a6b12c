"""The emulator's state, in SQLite: one project policy, its organizations (with the
rules that assign roles implicitly) and their members.

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

from policysync.emulator.seed import (
    MemberRole,
    OrgRules,
    RoleSource,
    Seed,
    SeedMember,
    SeedOrganization,
)
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
CREATE TABLE IF NOT EXISTS org_rules (
    organization_id TEXT PRIMARY KEY,
    rules TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS members (
    member_id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL,
    member TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS members_of_org ON members (organization_id, member_id);
"""
DIRECT = "direct_assignment"  # the source of a role assigned to a member by name

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
        ids: dict[str, str] = {}
        for o in seed.organizations:
            for key in (o.organization_id, o.organization_slug, o.organization_external_id):
                if key is not None:
                    ids.setdefault(key, o.organization_id)
        with self._transaction():
            self._db.execute("DELETE FROM members")
            self._db.execute("DELETE FROM org_rules")
            self._db.execute("DELETE FROM organizations")
            self._db.execute("DELETE FROM project")
            self._db.executemany(
                "INSERT INTO org_rules VALUES (?, ?)",
                [
                    (o.organization_id, o.rules().model_dump_json())
                    for o in seed.organizations
                    if o.rules() != OrgRules()
                ],
            )
            self._db.executemany(
                "INSERT INTO members VALUES (?, ?, ?)",
                [
                    (m.member_id, ids[m.organization_id], _member_json(m, ids[m.organization_id]))
                    for m in seed.members
                ],
            )
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
        """Replace every org-specific role of one organization; returns the stored JSON.
        A role deleted loses its direct assignments to members; its implicit ones (the
        seeded email, SSO and SCIM sources: the organization's rules, which stay) are
        kept but not served while the role does not exist (`visible`), and come back
        with it."""
        stored = compact(policy)
        kept = {role.role_id for role in policy.roles}
        with self._transaction():
            row = self._db.execute(
                "SELECT org_policy FROM organizations WHERE organization_id = ?",
                (organization_id,),
            ).fetchone()
            before = OrgPolicy.model_validate_json(row[0]) if row else OrgPolicy(roles=())
            deleted = {role.role_id for role in before.roles} - kept
            self._db.execute(
                "UPDATE organizations SET org_policy = ?, updated_at = ? WHERE organization_id = ?",
                (stored, _now(), organization_id),
            )
            if deleted:
                for member in self._members_of([organization_id]):
                    roles = _without_direct(member.roles, deleted)
                    if roles != member.roles:
                        self._put_member(member.model_copy(update={"roles": roles}))
        return stored

    def rules(self, organization_id: str) -> OrgRules:
        """The rules of an organization that assign roles implicitly."""
        row = self._db.execute(
            "SELECT rules FROM org_rules WHERE organization_id = ?", (organization_id,)
        ).fetchone()
        return OrgRules.model_validate_json(row[0]) if row else OrgRules()

    def search_members(
        self,
        organization_ids: list[str],
        role_ids: set[str] | None,
        member_ids: set[str] | None,
        limit: int,
        cursor: str | None,
    ) -> tuple[list[SeedMember], int, str | None]:
        """One page of the members of `organization_ids` (holding one of `role_ids`,
        among `member_ids`, when given) in id order, the total, and the next cursor."""
        after = _decode_cursor(cursor) if cursor else ""
        found = [
            m
            for m in map(self.visible, self._members_of(organization_ids))
            if m.status != "deleted"
            and (role_ids is None or any(r.role_id in role_ids for r in m.roles))
            and (member_ids is None or m.member_id in member_ids)
        ]
        rest = [m for m in found if m.member_id > after]
        page = rest[:limit]
        more = len(rest) > limit
        return page, len(found), (_encode_cursor(page[-1].member_id) if more else None)

    def set_member_roles(
        self, organization_id: str, member_id: str, role_ids: list[str]
    ) -> SeedMember | None:
        """Assign exactly `role_ids` to a member directly (its implicit roles stay), as
        Update Member's `roles` does; None when there is no such member."""
        with self._transaction():
            row = self._db.execute(
                "SELECT member FROM members WHERE member_id = ? AND organization_id = ?",
                (member_id, organization_id),
            ).fetchone()
            if row is None:
                return None
            member = SeedMember.model_validate_json(row[0])
            implicit = _without_direct(member.roles, {r.role_id for r in member.roles})
            roles = {r.role_id: r for r in implicit}
            for role_id in role_ids:
                direct = RoleSource(type=DIRECT)
                held = roles.get(role_id)
                sources = (direct,) if held is None else (direct, *held.sources)
                roles[role_id] = MemberRole(role_id=role_id, sources=sources)
            updated = member.model_copy(update={"roles": tuple(roles.values())})
            self._put_member(updated)
        return self.visible(updated)

    def visible(self, member: SeedMember) -> SeedMember:
        """`member` as served: holding only roles that exist (the project's, its
        organization's own)."""
        row = self._db.execute(
            "SELECT org_policy FROM organizations WHERE organization_id = ?",
            (member.organization_id,),
        ).fetchone()
        own = OrgPolicy.model_validate_json(row[0]).roles if row else ()
        exist = {r.role_id for r in (*self.project_policy().roles, *own)}
        roles = tuple(r for r in member.roles if r.role_id in exist)
        return member if roles == member.roles else member.model_copy(update={"roles": roles})

    def _members_of(self, organization_ids: list[str]) -> list[SeedMember]:
        marks = ", ".join("?" * len(organization_ids))
        rows = self._db.execute(
            f"SELECT member FROM members WHERE organization_id IN ({marks}) ORDER BY member_id",
            organization_ids,
        ).fetchall()
        return [SeedMember.model_validate_json(row[0]) for row in rows]

    def _put_member(self, member: SeedMember) -> None:
        self._db.execute(
            "UPDATE members SET member = ? WHERE member_id = ?",
            (member.model_dump_json(), member.member_id),
        )

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
                **self.rules(o.organization_id).model_dump(),
            )
            for o in map(Organization._make, rows)
        )
        members = tuple(
            SeedMember.model_validate_json(row[0])
            for row in self._db.execute("SELECT member FROM members ORDER BY member_id")
        )
        return Seed(policy=self.project_policy(), organizations=organizations, members=members)

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


def _member_json(member: SeedMember, organization_id: str) -> str:
    return member.model_copy(update={"organization_id": organization_id}).model_dump_json()


def _without_direct(roles: tuple[MemberRole, ...], role_ids: set[str]) -> tuple[MemberRole, ...]:
    """`roles` without the direct assignments of `role_ids` (a role held no other way
    is gone)."""
    kept = []
    for held in roles:
        sources = held.sources
        if held.role_id in role_ids:
            sources = tuple(s for s in sources if s.type != DIRECT)
        if sources:
            kept.append(held.model_copy(update={"sources": sources}))
    return tuple(kept)


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
