"""The ZenML Pro emulator's state, in SQLite: organizations, their roles (the predefined
ones, system-managed, and custom ones) and role assignments; and its seed file.

Every write is one transaction, as in the Stytch emulator's store: a killed emulator
restarted on the same file serves the last committed state.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import uuid
from datetime import UTC, datetime
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field

from policysync.emulator.store import transaction

Level = Literal["organization", "workspace", "project"]

# The predefined roles every organization has, system-managed (zenml-pro-api.md [V]).
SYSTEM_ROLES: tuple[tuple[Level, str], ...] = (
    ("organization", "Organization Admin"),
    ("organization", "Organization Manager"),
    ("organization", "Organization Viewer"),
    ("organization", "Billing Admin"),
    ("organization", "Organization Member"),
    ("workspace", "Workspace Admin"),
    ("workspace", "Workspace Developer"),
    ("workspace", "Workspace Contributor"),
    ("workspace", "Workspace Viewer"),
    ("workspace", "Stack Admin"),
    ("project", "Project Admin"),
    ("project", "Project Developer"),
    ("project", "Project Contributor"),
    ("project", "Project Viewer"),
)


# Seed -------------------------------------------------------------------------------


class SeedPermission(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    resource: str = Field(min_length=1)
    action: str = Field(min_length=1)


class SeedAssignment(BaseModel):
    """Who holds a role: exactly one of user, team, invitation; optionally scoped."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    user: uuid.UUID | None = None
    team: uuid.UUID | None = None
    invitation: uuid.UUID | None = None
    workspace_id: uuid.UUID | None = None
    project_id: uuid.UUID | None = None


class SeedRole(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: uuid.UUID | None = None  # None: a new one
    name: str = Field(min_length=1)
    level: Level
    description: str = ""
    permissions: tuple[SeedPermission, ...] = ()
    assignments: tuple[SeedAssignment, ...] = ()


class SeedOrganization(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: uuid.UUID
    name: str = Field(min_length=1)
    description: str | None = None
    roles: tuple[SeedRole, ...] = ()  # custom roles only: the predefined ones are added


class ZenmlSeed(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    organizations: tuple[SeedOrganization, ...] = ()


# Store ------------------------------------------------------------------------------

_SCHEMA = """
CREATE TABLE IF NOT EXISTS seeded (id INTEGER PRIMARY KEY CHECK (id = 1));
CREATE TABLE IF NOT EXISTS organizations (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    description TEXT,
    created TEXT NOT NULL,
    updated TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS roles (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations(id),
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    level TEXT NOT NULL,
    system_managed INTEGER NOT NULL,
    type TEXT NOT NULL,
    permissions TEXT NOT NULL,
    created TEXT NOT NULL,
    updated TEXT NOT NULL,
    UNIQUE (organization_id, level, name)
);
CREATE TABLE IF NOT EXISTS assignments (
    role_id TEXT NOT NULL REFERENCES roles(id),
    user TEXT, team TEXT, invitation TEXT, workspace_id TEXT, project_id TEXT
);
"""

_ROLE_COLUMNS = (
    "id, organization_id, name, description, level, system_managed, type, permissions, "
    "created, updated"
)
_ASSIGNMENT_KEYS = ("user", "team", "invitation", "workspace_id", "project_id")


class Role(NamedTuple):
    id: str
    organization_id: str
    name: str
    description: str
    level: str
    system_managed: bool
    type: str
    permissions: list[dict[str, str]]
    created: str
    updated: str


class Duplicate(Exception):
    """A role with the same (level, name) already exists in the organization."""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "")


def system_role_id(organization_id: str, name: str) -> str:
    """The predefined role's id: the same on every start for the same organization."""
    return str(uuid.uuid5(uuid.UUID(organization_id), name))


def _role(row: tuple[Any, ...]) -> Role:
    values = list(row)
    values[5] = bool(values[5])
    values[7] = json.loads(values[7])
    return Role(*values)


class ZenmlStore:
    def __init__(self, path: str = ":memory:") -> None:
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute("PRAGMA synchronous = NORMAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def is_empty(self) -> bool:
        return bool(self._db.execute("SELECT count(*) FROM seeded").fetchone()[0] == 0)

    def load(self, seed: ZenmlSeed) -> None:
        """Replace the whole state with `seed`, in one transaction; every organization
        gets the predefined roles."""
        now = _now()
        with self._transaction():
            for table in ("assignments", "roles", "organizations", "seeded"):
                self._db.execute(f"DELETE FROM {table}")
            self._db.execute("INSERT INTO seeded VALUES (1)")
            for org in seed.organizations:
                oid = str(org.id)
                self._db.execute(
                    "INSERT INTO organizations VALUES (?, ?, ?, ?, ?)",
                    (oid, org.name, org.description, now, now),
                )
                for level, name in SYSTEM_ROLES:
                    self._insert(system_role_id(oid, name), oid, name, "", level, True, [], now)
                for role in org.roles:
                    rid = str(role.id or uuid.uuid4())
                    perms = [p.model_dump() for p in role.permissions]
                    self._insert(
                        rid, oid, role.name, role.description, role.level, False, perms, now
                    )
                    for a in role.assignments:
                        self.assign(rid, {k: v and str(v) for k, v in a.model_dump().items()})

    def _insert(
        self,
        rid: str,
        oid: str,
        name: str,
        description: str,
        level: str,
        system: bool,
        permissions: list[dict[str, str]],
        now: str,
    ) -> None:
        try:
            self._db.execute(
                f"INSERT INTO roles ({_ROLE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, 'normal', ?, ?, ?)",
                (
                    rid,
                    oid,
                    name,
                    description,
                    level,
                    int(system),
                    json.dumps(permissions),
                    now,
                    now,
                ),
            )
        except sqlite3.IntegrityError as exc:
            raise Duplicate(f"a {level} role named {name!r} already exists") from exc

    def organizations(self) -> list[dict[str, Any]]:
        rows = self._db.execute(
            "SELECT id, name, description, created, updated FROM organizations ORDER BY created, id"
        ).fetchall()
        return [
            dict(zip(("id", "name", "description", "created", "updated"), r, strict=True))
            for r in rows
        ]

    def organization(self, id_or_name: str) -> dict[str, Any] | None:
        return next((o for o in self.organizations() if id_or_name in (o["id"], o["name"])), None)

    def roles(self, organization_id: str) -> list[Role]:
        rows = self._db.execute(
            f"SELECT {_ROLE_COLUMNS} FROM roles WHERE organization_id = ? ORDER BY rowid",
            (organization_id,),
        ).fetchall()
        return [_role(r) for r in rows]

    def role(self, role_id: str) -> Role | None:
        row = self._db.execute(
            f"SELECT {_ROLE_COLUMNS} FROM roles WHERE id = ?", (role_id,)
        ).fetchone()
        return _role(row) if row else None

    def create_role(
        self, oid: str, name: str, description: str, level: str, permissions: list[dict[str, str]]
    ) -> Role:
        rid = str(uuid.uuid4())
        with self._transaction():
            self._insert(rid, oid, name, description, level, False, permissions, _now())
        role = self.role(rid)
        assert role is not None
        return role

    def update_role(self, role_id: str, changes: dict[str, Any]) -> Role:
        """`changes`: any of name, description, permissions."""
        columns = {k: json.dumps(v) if k == "permissions" else v for k, v in changes.items()}
        columns["updated"] = _now()
        assignments = ", ".join(f"{k} = ?" for k in columns)
        try:
            with self._transaction():
                self._db.execute(
                    f"UPDATE roles SET {assignments} WHERE id = ?",
                    (*columns.values(), role_id),
                )
        except sqlite3.IntegrityError as exc:
            raise Duplicate(f"a role named {changes.get('name')!r} already exists") from exc
        role = self.role(role_id)
        assert role is not None
        return role

    def delete_role(self, role_id: str) -> None:
        with self._transaction():
            self._db.execute("DELETE FROM assignments WHERE role_id = ?", (role_id,))
            self._db.execute("DELETE FROM roles WHERE id = ?", (role_id,))

    def assignments(self, role_id: str) -> list[dict[str, str | None]]:
        rows = self._db.execute(
            f"SELECT {', '.join(_ASSIGNMENT_KEYS)} FROM assignments WHERE role_id = ? "
            "ORDER BY rowid",
            (role_id,),
        ).fetchall()
        return [dict(zip(_ASSIGNMENT_KEYS, r, strict=True)) for r in rows]

    def assign(self, role_id: str, assignment: dict[str, str | None]) -> None:
        values = tuple(assignment.get(k) for k in _ASSIGNMENT_KEYS)
        if any(values == tuple(a.values()) for a in self.assignments(role_id)):
            return  # assigning twice holds it once
        self._db.execute(
            f"INSERT INTO assignments (role_id, {', '.join(_ASSIGNMENT_KEYS)}) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (role_id, *values),
        )

    def revoke(self, role_id: str, assignment: dict[str, str | None]) -> None:
        where = " AND ".join(f"{k} IS ?" for k in _ASSIGNMENT_KEYS)
        self._db.execute(
            f"DELETE FROM assignments WHERE role_id = ? AND {where}",
            (role_id, *(assignment.get(k) for k in _ASSIGNMENT_KEYS)),
        )

    def dump(self) -> ZenmlSeed:
        organizations = []
        for org in self.organizations():
            roles = [
                SeedRole(
                    id=uuid.UUID(r.id),
                    name=r.name,
                    level=r.level,
                    description=r.description,
                    permissions=tuple(SeedPermission(**p) for p in r.permissions),
                    assignments=tuple(
                        SeedAssignment.model_validate(a) for a in self.assignments(r.id)
                    ),
                )
                for r in self.roles(org["id"])
                if not r.system_managed
            ]
            organizations.append(
                SeedOrganization(
                    id=uuid.UUID(org["id"]),
                    name=org["name"],
                    description=org["description"],
                    roles=tuple(roles),
                )
            )
        return ZenmlSeed(organizations=tuple(organizations))

    def _transaction(self) -> contextlib.AbstractContextManager[None]:
        return transaction(self._db)


def seed_problem(seed: ZenmlSeed) -> str | None:
    """What makes `seed` a state ZenML Pro would never hold, or None."""
    system = {name for _, name in SYSTEM_ROLES}
    seen: dict[str, int] = {}
    for i, org in enumerate(seed.organizations):
        for key in (str(org.id), org.name):
            other = seen.setdefault(key, i)
            if other != i:
                return f"organizations/{other} and organizations/{i} are both named {key!r}"
        roles: set[tuple[str, str]] = set()
        for j, role in enumerate(org.roles):
            where = f"organizations/{i}/roles/{j}"
            if role.name in system:
                return f"{where}: {role.name!r} is a predefined role (every organization has it)"
            if (role.level, role.name) in roles:
                return f"{where}: a second {role.level} role named {role.name!r}"
            roles.add((role.level, role.name))
            for k, a in enumerate(role.assignments):
                if sum(x is not None for x in (a.user, a.team, a.invitation)) != 1:
                    return f"{where}/assignments/{k}: give exactly one of user, team, invitation"
    return None
