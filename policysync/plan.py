"""The planner: desired and live org policies in, the changes `apply` would make out.

Pure: no network, disk, clock or terminal; the caller reads files and Stytch and passes
the time. Roles, permissions and actions are sets to Stytch, so policies are compared in
a canonical form (`normalize`) and only real differences become role changes. The plan
keeps policies as they were written and read: `apply` PUTs what the file says.
Its JSON form (`plan --format json`, `plan --out`) is described by
`schemas/plan.schema.json`, generated from these classes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field

from policysync.canonical import canonical_json, fingerprint, grants, same_role
from policysync.errors import ORGANIZATION_NOT_FOUND, ProviderError
from policysync.models import Holder, OrgPolicy, Role, RoleHolders

_CONFIG = ConfigDict(frozen=True, extra="forbid")

ChangeAction = Literal["create", "update", "delete"]
OrgAction = Literal["no-op", "update", "error", "absent"]
EscalationReason = Literal["wildcard", "stytch-resource", "sensitive"]
# 2 since plans list their escalations, 3 since role changes name their source, 4 since
# plans name their environment and deletions say who depends on the role
FORMAT_VERSION: Literal["4"] = "4"
VERSIONS = (
    "2 since plans list their escalations, 3 since role changes name their source, "
    "4 since plans name their environment and deletions carry in_use."
)


class Rule(BaseModel):
    """A rule of the organization that assigns a role implicitly."""

    model_config = _CONFIG

    kind: str = Field(description="`email_domain`, `sso_connection`, `sso_group` or `scim_group`.")
    detail: str = Field(description="The domain, the connection, or the connection and group.")


class MembersInUse(BaseModel):
    """Who depends on a role a plan deletes, where members hold roles (Stytch)."""

    model_config = ConfigDict(frozen=True, extra="forbid", title="MembersInUse")

    members: int = Field(ge=0, description="Members holding the role, however assigned.")
    rules: tuple[Rule, ...] = Field(description="The rules assigning the role implicitly.")

    @property
    def used(self) -> bool:
        return self.members > 0 or bool(self.rules)

    def describe(self) -> str:
        held = f"held by {self.members} member{'s' * (self.members != 1)}"
        parts = [held] if self.members else []
        parts += [f"assigned by {_RULE_WORDS.get(r.kind, r.kind)} {r.detail}" for r in self.rules]
        return "; ".join(parts)


class AssignmentsInUse(BaseModel):
    """Who depends on a role a plan deletes, where roles are assigned (ZenML Pro)."""

    model_config = ConfigDict(frozen=True, extra="forbid", title="AssignmentsInUse")

    assignments: int = Field(ge=0, description="Its assignments to users, teams, invitations.")

    @property
    def used(self) -> bool:
        return self.assignments > 0

    def describe(self) -> str:
        return f"assigned {self.assignments} time{'s' * (self.assignments != 1)}"


InUse = MembersInUse | AssignmentsInUse
InUseOf = Callable[[Sequence[Holder]], InUse]  # a provider's summary of a role's holders
_RULE_WORDS = {
    "email_domain": "email domain",
    "sso_connection": "SSO connection",
    "sso_group": "SSO group",
    "scim_group": "SCIM group",
}


def members_in_use(holders: Sequence[Holder]) -> MembersInUse:
    """A role's holders as the members holding it and the rules assigning it."""
    rules = sorted(
        {
            Rule(kind=h.kind, detail=h.id if h.detail is None else f"{h.id} {h.detail}")
            for h in holders
            if h.kind != "member"
        },
        key=lambda r: (r.kind, r.detail),
    )
    members = len({h.id for h in holders if h.kind == "member"})
    return MembersInUse(members=members, rules=tuple(rules))


def assignments_in_use(holders: Sequence[Holder]) -> AssignmentsInUse:
    """A role's holders as its assignments."""
    return AssignmentsInUse(assignments=len(holders))


class RoleChange(BaseModel):
    """One role `apply` creates, updates or deletes in one organization."""

    model_config = _CONFIG

    role_id: str
    action: ChangeAction
    before: Role | None = Field(description="The live role; null when it is created.")
    after: Role | None = Field(description="The role of the file; null when it is deleted.")
    source: str = Field(
        description="The file the desired role comes from: a template, or the organization's "
        "file (always for a deletion)."
    )
    template: str | None = Field(
        description="The template the desired role comes from; null for the organization's "
        "own roles and for deletions."
    )
    in_use: InUse | None = Field(
        default=None,
        description="For a deletion: who depends on the role live (zero and empty when "
        "nothing does). Null for creations and updates, and where it is not known "
        "(plan --against-ref).",
    )


class OrgError(BaseModel):
    """Why an organization could not be planned (Stytch's error, or a connection fault)."""

    model_config = _CONFIG

    status: int | None = Field(description="HTTP status; null when no answer came.")
    error_type: str = Field(description="Stytch's `error_type`, e.g. organization_not_found.")
    message: str
    request_id: str | None = Field(description="Stytch's request id, for its support.")

    @classmethod
    def of(cls, exc: ProviderError) -> OrgError:
        return cls(
            status=exc.status,
            error_type=exc.error_type,
            message=exc.message,
            request_id=exc.request_id,
        )


class OrgPlan(BaseModel):
    """The plan of one managed organization."""

    model_config = _CONFIG

    organization_id: str = Field(description="As written in the file: id, slug or external id.")
    file: str = Field(description="The organization file, as policysync found it.")
    action: OrgAction = Field(
        description="no-op, update; error: it could not be read (see error); absent: it "
        "does not exist in the plan's environment (--env): skipped there, not an error."
    )
    prior_fingerprint: str | None = Field(
        description="Fingerprint of the live policy; `apply` refuses a stale plan by it."
    )
    prior: OrgPolicy | None = Field(description="The live policy; null on error.")
    desired: OrgPolicy = Field(description="The policy of the file, as written.")
    role_changes: tuple[RoleChange, ...] = Field(description="Sorted by role_id.")
    error: OrgError | None = Field(
        description="Why it could not be planned, or was skipped; null otherwise."
    )


class Escalation(BaseModel):
    """A grant a role gains that widens access: `"*"` (as action or resource), an action
    on a Stytch resource (`stytch.*`), or a `resource:action` of the `sensitive` setting."""

    model_config = _CONFIG

    organization_id: str = Field(description="As written in the file.")
    role_id: str
    resource_id: str
    action: str
    reason: EscalationReason = Field(
        description="The first that applies: wildcard, stytch-resource, sensitive."
    )


class EscalationRules(NamedTuple):
    """Which gained grants are escalations. What widens access on its own is the
    provider's to say (its `FileFormat.escalations`); `sensitive` is the settings'."""

    wildcard: str | None = None  # the action (or resource) that grants everything
    reserved_prefix: str | None = None  # the ids of the provider's own resources
    sensitive: frozenset[tuple[str, str]] = frozenset()  # (resource_id, action)

    def reason(self, resource_id: str, action: str) -> EscalationReason | None:
        if self.wildcard is not None and self.wildcard in (resource_id, action):
            return "wildcard"
        if self.reserved_prefix is not None and resource_id.startswith(self.reserved_prefix):
            return "stytch-resource"
        if (resource_id, action) in self.sensitive:
            return "sensitive"
        return None


class PlanSummary(BaseModel):
    model_config = _CONFIG

    add: int = Field(ge=0, description="Roles to create.")
    change: int = Field(ge=0, description="Roles to update.")
    destroy: int = Field(ge=0, description="Roles to delete.")
    organizations: int = Field(ge=0, description="Organizations planned.")
    changed: int = Field(ge=0, description="Organizations whose action is update.")
    failed: int = Field(ge=0, description="Organizations whose action is error.")
    absent: int = Field(
        ge=0,
        description="Organizations whose action is absent: not in the plan's environment, skipped.",
    )


class PlanDocument(BaseModel):
    """What `apply` would change: the JSON document of `policysync plan`."""

    # In memory a plan is a `Plan`, which prints this document piece by piece.

    model_config = ConfigDict(frozen=True, extra="forbid", title="Plan")

    format_version: Literal["4"] = Field(description=VERSIONS)
    policysync_version: str
    created_at: str = Field(description="ISO 8601 date and time.")
    project_id: str = Field(
        description="The Stytch project, or ZenML Pro API URL, planned against."
    )
    environment: str | None = Field(
        description="The environment of the settings planned against (--env NAME); null "
        "without --env. apply refuses the plan in another environment."
    )
    git_commit: str | None = Field(description="Commit of the policy files; null outside git.")
    git_dirty: bool | None = Field(description="Whether the work tree had uncommitted changes.")
    organizations: tuple[OrgPlan, ...] = Field(description="Sorted by organization_id.")
    escalations: tuple[Escalation, ...] = Field(
        description="The grants roles gain that widen access, sorted by organization_id, "
        "role_id, resource_id, action."
    )
    summary: PlanSummary
    checksum: str | None = Field(
        default=None,
        description="In a saved plan (plan --out): sha256 of the plan's canonical JSON "
        "without this field; apply refuses a plan whose checksum fails.",
    )


class PlanEntry(NamedTuple):
    """One organization of a plan in memory: without changes, its OrgPlan as canonical
    JSON; with changes or an error (what the renderers show), the model itself, its JSON
    made when written (an apply never needs it). A model takes several times the memory
    of its JSON, which matters at tens of thousands of organizations."""

    organization_id: str
    action: OrgAction
    json: str | None  # None when `detail` is kept
    detail: OrgPlan | None

    @classmethod
    def of(cls, org: OrgPlan) -> PlanEntry:
        if org.action != "no-op":
            return cls(org.organization_id, org.action, None, org)
        return cls(
            org.organization_id, org.action, canonical_json(org.model_dump(mode="json")), None
        )

    def text(self) -> str:
        """The OrgPlan as canonical JSON."""
        if self.json is not None:
            return self.json
        assert self.detail is not None
        return canonical_json(self.detail.model_dump(mode="json"))

    def org_plan(self) -> OrgPlan:
        if self.detail is not None:
            return self.detail
        assert self.json is not None
        return OrgPlan.model_validate_json(self.json)


@dataclass(frozen=True)
class Plan:
    """A plan in memory (see PlanDocument for the meaning of the fields)."""

    format_version: Literal["4"]
    policysync_version: str
    created_at: str
    project_id: str
    environment: str | None
    git_commit: str | None
    git_dirty: bool | None
    entries: tuple[PlanEntry, ...]  # sorted by organization_id
    escalations: tuple[Escalation, ...]
    summary: PlanSummary

    @property
    def organizations(self) -> Iterator[OrgPlan]:
        """Every organization, in order, as a model (made one at a time)."""
        return (entry.org_plan() for entry in self.entries)

    @property
    def changes(self) -> list[OrgPlan]:
        """The organizations to update or that could not be planned, in order."""
        return [entry.detail for entry in self.entries if entry.detail is not None]

    @classmethod
    def of(cls, document: PlanDocument) -> Plan:
        return cls(
            **{name: getattr(document, name) for name in _HEAD},
            entries=tuple(map(PlanEntry.of, document.organizations)),
            escalations=document.escalations,
            summary=document.summary,
        )

    def document(self) -> PlanDocument:
        """The whole plan as one model (for small plans and tests)."""
        return PlanDocument(
            **{name: getattr(self, name) for name in _HEAD},
            organizations=tuple(self.organizations),
            escalations=self.escalations,
            summary=self.summary,
        )

    def _members(self, checksum: str | None) -> Iterator[tuple[str, Iterator[str]]]:
        """(name, value as canonical JSON in pieces), in the order of the names."""
        values: dict[str, Any] = {name: getattr(self, name) for name in _HEAD}
        values["summary"] = self.summary.model_dump(mode="json")
        values["escalations"] = [e.model_dump(mode="json") for e in self.escalations]
        if checksum is not None:
            values["checksum"] = checksum
        for name in sorted([*values, "organizations"]):
            if name == "organizations":
                yield name, (entry.text() for entry in self.entries)
            else:
                yield name, iter((canonical_json(values[name]),))

    def _pieces(self, checksum: str | None, indent: bool) -> Iterator[str]:
        """The document's JSON in pieces: canonical (`indent` False), or with one member,
        and one organization, per line (which `json.loads` reads the same)."""
        member, item, close = ("\n  ", "\n    ", "\n  ") if indent else ("", "", "")
        colon = ": " if indent else ":"
        yield "{"
        for i, (name, pieces) in enumerate(self._members(checksum)):
            yield ("," if i else "") + member + canonical_json(name) + colon
            if name == "organizations":
                yield "["
                for j, piece in enumerate(pieces):
                    yield ("," if j else "") + item + piece
                yield (close if self.entries else "") + "]"
            else:
                yield from pieces
        yield "\n}" if indent else "}"

    def checksum(self) -> str:
        """sha256 of the plan's canonical JSON without its checksum: what
        `planfile.checksum` computes from the document, without making it whole."""
        digest = hashlib.sha256()
        for piece in self._pieces(None, indent=False):
            digest.update(piece.encode("utf-8", "surrogatepass"))
        return "sha256:" + digest.hexdigest()

    def json_chunks(self, checksum: str | None = None) -> Iterator[str]:
        """The JSON document in pieces, one member and one organization per line."""
        return self._pieces(checksum, indent=True)


_HEAD = (
    "format_version",
    "policysync_version",
    "created_at",
    "project_id",
    "environment",
    "git_commit",
    "git_dirty",
)


# What the caller read for one organization: its id as written, its file, the policy of
# the file (its templates expanded), the live policy or why it could not be read, and
# optionally the template each desired role comes from.
OrgState = (
    tuple[str, str, OrgPolicy, OrgPolicy | OrgError]
    | tuple[str, str, OrgPolicy, OrgPolicy | OrgError, Mapping[str, "Source"]]
)


def _role_action(before: Role | None, after: Role | None) -> ChangeAction | None:
    if before is None:
        return "create"
    if after is None:
        return "delete"
    return None if same_role(before, after) else "update"


class Source(NamedTuple):
    """A template a desired role comes from."""

    template: str  # its name
    file: str  # its file, as policysync found it


def _role_changes(
    desired: OrgPolicy, live: OrgPolicy, file: str, sources: Mapping[str, Source]
) -> tuple[RoleChange, ...]:
    """The roles that differ, by role_id (role ids are unique in an organization)."""
    before = {role.role_id: role for role in live.roles}
    after = {role.role_id: role for role in desired.roles}
    changes = []
    for role_id in sorted(before.keys() | after.keys()):
        old, new = before.get(role_id), after.get(role_id)
        action = _role_action(old, new)
        if action is not None:
            source = sources.get(role_id) if new is not None else None
            changes.append(
                RoleChange(
                    role_id=role_id,
                    action=action,
                    before=old,
                    after=new,
                    source=file if source is None else source.file,
                    template=None if source is None else source.template,
                )
            )
    return tuple(changes)


def plan_org(
    organization_id: str,
    file: str,
    desired: OrgPolicy,
    live: OrgPolicy | OrgError,
    sources: Mapping[str, Source] | None = None,
    environment: str | None = None,
) -> OrgPlan:
    """The plan of one organization; an unreadable one is planned as an error, so the
    others are still planned and every failure is reported together. `sources` says
    which template each desired role comes from (none: the organization's file). With
    an `environment` (--env), an organization that does not exist there is skipped:
    one policy tree serves several environments, not all holding every organization."""
    if isinstance(live, OrgError):
        absent = environment is not None and live.error_type == ORGANIZATION_NOT_FOUND
        return OrgPlan(
            organization_id=organization_id,
            file=file,
            action="absent" if absent else "error",
            prior_fingerprint=None,
            prior=None,
            desired=desired,
            role_changes=(),
            error=live,
        )
    changes = _role_changes(desired, live, file, sources or {})
    return OrgPlan(
        organization_id=organization_id,
        file=file,
        action="update" if changes else "no-op",
        prior_fingerprint=fingerprint(live),
        prior=live,
        desired=desired,
        role_changes=changes,
        error=None,
    )


def with_in_use(org: OrgPlan, held: Sequence[RoleHolders], in_use: InUseOf) -> OrgPlan:
    """`org` with `in_use` on each deletion: `in_use(holders)` of its role's holders
    (`held`, read live; none listed: nothing depends on it)."""
    holders = {h.role_id: h.holders for h in held}
    changes = tuple(
        change.model_copy(update={"in_use": in_use(holders.get(change.role_id, ()))})
        if change.action == "delete"
        else change
        for change in org.role_changes
    )
    return org.model_copy(update={"role_changes": changes})


def in_use_deletions(plan: Plan) -> list[tuple[OrgPlan, RoleChange]]:
    """The deletions of roles something depends on, as the plan saw them."""
    return [
        (org, change)
        for org in plan.changes
        for change in org.role_changes
        if change.action == "delete" and change.in_use is not None and change.in_use.used
    ]


def escalations(org: OrgPlan, rules: EscalationRules) -> list[Escalation]:
    """The grants each role of `org` gains that `rules` count as escalations: the
    wildcard replacing explicit actions is gained; an action where the role had the
    wildcard is not."""
    found = []
    for change in org.role_changes:
        if change.after is None:
            continue
        old = grants(change.before.permissions) if change.before else {}
        for resource_id, actions in sorted(grants(change.after.permissions).items()):
            had = old.get(resource_id, frozenset())
            for action in sorted(actions - had if rules.wildcard not in had else ()):
                reason = rules.reason(resource_id, action)
                if reason is not None:
                    found.append(
                        Escalation(
                            organization_id=org.organization_id,
                            role_id=change.role_id,
                            resource_id=resource_id,
                            action=action,
                            reason=reason,
                        )
                    )
    return found


def _summarize(changes: list[OrgPlan], organizations: int) -> PlanSummary:
    def count(action: ChangeAction) -> int:
        return sum(change.action == action for org in changes for change in org.role_changes)

    return PlanSummary(
        add=count("create"),
        change=count("update"),
        destroy=count("delete"),
        organizations=organizations,
        changed=sum(org.action == "update" for org in changes),
        failed=sum(org.action == "error" for org in changes),
        absent=sum(org.action == "absent" for org in changes),
    )


def assemble(
    entries: Iterable[PlanEntry],
    *,
    project_id: str,
    environment: str | None = None,
    created_at: str,
    policysync_version: str,
    git_commit: str | None,
    git_dirty: bool | None,
    rules: EscalationRules,
) -> Plan:
    """The plan of the organizations planned (`PlanEntry.of(plan_org(...))` each), with
    the escalations `rules` find in them."""
    ordered = tuple(sorted(entries, key=lambda entry: entry.organization_id))
    changes = [entry.detail for entry in ordered if entry.detail is not None]
    return Plan(
        format_version=FORMAT_VERSION,
        policysync_version=policysync_version,
        created_at=created_at,
        project_id=project_id,
        environment=environment,
        git_commit=git_commit,
        git_dirty=git_dirty,
        entries=ordered,
        escalations=tuple(e for org in changes for e in escalations(org, rules)),
        summary=_summarize(changes, len(ordered)),
    )


def plan_is_empty(plan: Plan) -> bool:
    """No organization to update. Errors are not changes: the CLI reports them apart."""
    return not any(entry.action == "update" for entry in plan.entries)


class ResourceChange(NamedTuple):
    """How a role's grant on one resource changes."""

    resource_id: str
    action: ChangeAction  # create: newly granted; delete: no longer granted at all
    added: tuple[str, ...]
    removed: tuple[str, ...]


class RoleDiff(NamedTuple):
    """What differs between two versions of one role, for the renderers."""

    description: tuple[str, str] | None  # (before, after) when it changed
    resources: tuple[ResourceChange, ...]  # sorted by resource_id


def _resource_change(
    resource_id: str, old: frozenset[str] | None, new: frozenset[str] | None
) -> ResourceChange:
    if old is None:
        return ResourceChange(resource_id, "create", tuple(sorted(new or ())), ())
    if new is None:
        return ResourceChange(resource_id, "delete", (), tuple(sorted(old)))
    return ResourceChange(resource_id, "update", tuple(sorted(new - old)), tuple(sorted(old - new)))


def role_diff(before: Role, after: Role) -> RoleDiff:
    old, new = grants(before.permissions), grants(after.permissions)
    resources = tuple(
        _resource_change(resource, old.get(resource), new.get(resource))
        for resource in sorted(old.keys() | new.keys())
        if old.get(resource) != new.get(resource)
    )
    description = (
        (before.description, after.description) if before.description != after.description else None
    )
    return RoleDiff(description, resources)
