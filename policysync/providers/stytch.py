"""Stytch B2B RBAC, as policysync speaks it (the wire contract: stytch-api.md): where
Stytch is and the credentials presented there (read from the environment under the
names Stytch's own tools use), the answers' shapes, Stytch's error bodies and what to do
about them. HTTP itself (slots, retries, the rate limit, redaction) is `http.py`'s.

GET, PUT and search are all safe to send twice (PUT replaces the whole org policy, so a
repeat changes nothing). Whatever failed is raised as a ProviderError naming the
organization, with the secret scrubbed from every text that came from elsewhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Annotated, Any, NamedTuple, Self, TypeVar, cast

import httpx
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SecretStr, ValidationError

from policysync import __version__
from policysync.canonical import same_policy
from policysync.errors import ApiError, ConfigError, ProviderError
from policysync.models import (
    Holder,
    Organization,
    OrgPolicy,
    ProjectPolicy,
    RoleHolders,
    RoleOperation,
)
from policysync.providers.http import (
    DEFAULT_BACKOFF,
    HttpClient,
    Rejected,
    Site,
    basic_token,
    check_base_url,
    check_text,
    json_object,
    segment,
)
from policysync.providers.pacing import Backoff, Clock, Sleep
from policysync.providers.redaction import MIN_SECRET_LENGTH, Redactor

if TYPE_CHECKING:
    from policysync.config import NamedEnvironment
    from policysync.providers import Pacing
    from policysync.providers.base import Log, Provider

PROVIDER = "Stytch"  # who answered, in messages
USER_AGENT = f"policysync/{__version__}"
POLICY_PATH = "/v1/b2b/rbac/policy"
ORG_POLICY_PATH = "/v1/b2b/rbac/organizations/"
SEARCH_PATH = "/v1/b2b/organizations/search"
ORGANIZATION_PATH = "/v1/b2b/organizations/"
MEMBER_SEARCH_PATH = "/v1/b2b/organizations/members/search"
SSO_PATH = "/v1/b2b/sso/"
SCIM_PATH = "/v1/b2b/scim/"
MEMBER_PAGE = 1000  # the most members one search returns

# What to do about an error, by error_type (the default: read Stytch's message).
HINTS = {
    "unauthorized_credentials": "check {project_id} and {secret} (and {base_url})",
    "enterprise_endpoint": "org-specific RBAC policies are in private beta: ask Stytch "
    "support to enable them for this project",
    "organization_not_found": "check the organization's id, slug or external id",
    "too_many_requests": "lower --rate-limit",
    "unexpected_response": "check {base_url}; if it is right, this policysync may be "
    "older than Stytch's API: upgrade it",
}


LIVE_URL = "https://api.stytch.com/"
TEST_URL = "https://test.stytch.com/"


class Names(NamedTuple):
    """What messages call the project id, the secret and the base URL: the variables
    they are read from (with --env, those the environment names; a base URL the
    settings give: that setting)."""

    project_id: str = "STYTCH_PROJECT_ID"
    secret: str = "STYTCH_SECRET"
    base_url: str = "STYTCH_BASE_URL"


_STANDARD = Names()


@dataclass(frozen=True)
class Endpoint:
    """A Stytch project and the URL of its API. The secret is a SecretStr, so that a
    repr, a log line or a traceback's locals show `**********` instead of it."""

    project_id: str
    secret: SecretStr
    base_url: str
    names: Names = _STANDARD

    def __post_init__(self) -> None:
        secret = self.secret.get_secret_value()
        names = self.names
        for variable, value in (
            (names.project_id, self.project_id),
            (names.secret, secret),
            (names.base_url, self.base_url),
        ):
            check_text(variable, value)
        if len(secret) < MIN_SECRET_LENGTH:
            raise ConfigError(
                f"{names.secret} is shorter than {MIN_SECRET_LENGTH} characters: a Stytch "
                "secret is about 50 (secret-test-… or secret-live-…); set it to the project's "
                "secret (policysync hides the secret wherever it appears in a message, which a "
                "short one would mangle)"
            )
        check_base_url(self.base_url, names.base_url, TEST_URL)


def endpoint_from_env(
    environ: Mapping[str, str], environment: NamedEnvironment | None = None
) -> Endpoint:
    """STYTCH_PROJECT_ID, STYTCH_SECRET and, optionally, STYTCH_BASE_URL. With an
    environment (`--env`): the variables it names (project_id_env, secret_env and
    base_url_env), or, naming none, those standard ones; its base_url before any."""
    names, fixed, url_variable, of = Names(), None, "STYTCH_BASE_URL", ""
    if environment is not None:
        own = environment.settings
        fixed, of = own.base_url, f" of environment {environment.name}"
        if own.project_id_env is not None and own.secret_env is not None:
            names = Names(own.project_id_env, own.secret_env)
            url_variable = own.base_url_env or ""
        elif own.base_url_env is not None:
            url_variable = own.base_url_env
        url_setting = environment.setting("base_url")
        names = names._replace(base_url=url_setting if fixed or not url_variable else url_variable)
    project_id = environ.get(names.project_id, "").strip()
    secret = environ.get(names.secret, "").strip()
    missing = [n for n, v in ((names.project_id, project_id), (names.secret, secret)) if not v]
    if missing:
        raise ConfigError(
            f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set: set "
            f"{names.project_id} and {names.secret} to the API credentials of the project{of} "
            "(Stytch dashboard, API keys), or to those `policysync emulator` prints"
        )
    from_variable = environ.get(url_variable, "").strip() if url_variable and not fixed else ""
    base_url = fixed or from_variable or default_base_url(project_id)
    return Endpoint(project_id, SecretStr(secret), base_url.rstrip("/") + "/", names)


def default_base_url(project_id: str) -> str:
    """The host Stytch's SDKs pick: live for live projects, test for all others."""
    return LIVE_URL if project_id.startswith("project-live-") else TEST_URL


def from_env(
    environ: Mapping[str, str], pacing: Pacing, environment: NamedEnvironment | None = None
) -> Provider:
    """The provider, built once by the CLI: credentials and endpoint from `environ`
    (the variables `environment` names, with --env). (Typed as the protocol, so that
    the type checker holds the client to it.)"""
    return StytchClient(
        endpoint_from_env(environ, environment),
        parallelism=pacing.parallelism,
        rate_limit=pacing.rate_limit,
        backoff=Backoff(max_wait=pacing.max_wait),
    )


def _org_policy_input(raw: Any) -> Any:
    """Stytch may omit (or send null for) empty lists and empty descriptions."""
    if raw is None:
        return {"roles": []}
    roles = (raw.get("roles") or []) if isinstance(raw, dict) else None
    if not isinstance(roles, list):
        return raw  # for the model to report
    return {**raw, "roles": [_role_input(role) for role in roles]}


def _custom_roles_input(roles: Any) -> Any:
    """An Organization's `custom_roles` are the roles of its org policy."""
    return _org_policy_input({"roles": roles})


def _role_input(raw: Any) -> Any:
    if not isinstance(raw, dict):
        return raw
    permissions = raw.get("permissions") or []
    if isinstance(permissions, list):
        permissions = [
            {**p, "actions": p.get("actions") or []} if isinstance(p, dict) else p
            for p in permissions
        ]
    return {**raw, "description": raw.get("description") or "", "permissions": permissions}


LenientOrgPolicy = Annotated[OrgPolicy, BeforeValidator(_org_policy_input)]


class _ListedOrganization(BaseModel):
    """An organization as search returns it, reduced to what policysync uses. Unknown
    fields are ignored (an Organization carries dozens of settings); unknown fields in
    its roles are not: a PUT would delete what policysync cannot represent."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    organization_id: str
    organization_name: str = ""
    organization_slug: str
    organization_external_id: str | None = None
    org_policy: Annotated[OrgPolicy, BeforeValidator(_custom_roles_input)] = Field(
        default=OrgPolicy(roles=()), validation_alias="custom_roles"
    )


class _Answer(BaseModel):
    """A success body, of which only the fields named are read (not `request_id`,
    `status_code`, nor whatever Stytch adds to its envelopes later)."""

    model_config = ConfigDict(frozen=True)


class _PolicyAnswer(_Answer):
    policy: ProjectPolicy


class _OrgPolicyAnswer(_Answer):
    org_policy: LenientOrgPolicy


class _ExactOrgPolicyAnswer(_OrgPolicyAnswer):
    """The usual answer, every field there and no null: read by pydantic's core alone,
    without the lenient reading's Python in the way (tried first)."""

    org_policy: OrgPolicy


_TRIED_FIRST: dict[type[_Answer], type[_Answer]] = {_OrgPolicyAnswer: _ExactOrgPolicyAnswer}


class _ResultsMetadata(_Answer):
    next_cursor: str | None = None


class _SearchAnswer(_Answer):
    organizations: tuple[_ListedOrganization, ...]
    results_metadata: _ResultsMetadata


# Who depends on a role: members (found by member search) and the rules of the
# organization, its SAML connections and its SCIM connection that assign it implicitly.
# Stytch may send null for an empty list.
_NoneEmpty = BeforeValidator(lambda value: () if value is None else value)


class _EmailRule(_Answer):
    domain: str
    role_id: str


class _OrganizationRules(_Answer):
    organization_id: str
    rbac_email_implicit_role_assignments: Annotated[tuple[_EmailRule, ...], _NoneEmpty] = ()


class _OrganizationAnswer(_Answer):
    organization: _OrganizationRules


class _RoleSource(_Answer):
    type: str


class _MemberRole(_Answer):
    role_id: str
    sources: Annotated[tuple[_RoleSource, ...], _NoneEmpty] = ()


class _Member(_Answer):
    member_id: str
    roles: Annotated[tuple[_MemberRole, ...], _NoneEmpty] = ()


class _MemberSearchAnswer(_Answer):
    members: tuple[_Member, ...]
    results_metadata: _ResultsMetadata


class _RoleRule(_Answer):
    role_id: str


class _GroupRule(_Answer):
    role_id: str
    group: str


class _SamlConnection(_Answer):
    connection_id: str
    saml_connection_implicit_role_assignments: Annotated[tuple[_RoleRule, ...], _NoneEmpty] = ()
    saml_group_implicit_role_assignments: Annotated[tuple[_GroupRule, ...], _NoneEmpty] = ()


class _SsoAnswer(_Answer):
    saml_connections: Annotated[tuple[_SamlConnection, ...], _NoneEmpty] = ()


class _ScimGroupRule(_Answer):
    role_id: str
    group_id: str
    group_name: str = ""


class _ScimConnection(_Answer):
    connection_id: str
    scim_group_implicit_role_assignments: Annotated[tuple[_ScimGroupRule, ...], _NoneEmpty] = ()


class _ScimAnswer(_Answer):
    connection: _ScimConnection | None = None


AnswerT = TypeVar("AnswerT", bound=_Answer)


class StytchClient:
    """An async Stytch client; use it as `async with StytchClient(endpoint) as client:`.
    It may be entered again once exited, in another event loop too.

    `rate_limit` is a ceiling in requests per second (None: none); `transport`, `rng`,
    `sleep` and `clock` are for tests (an in-process ASGI app, reproducible jitter, a
    fake clock).
    """

    def __init__(
        self,
        endpoint: Endpoint,
        *,
        parallelism: int = 16,
        rate_limit: float | None = None,
        backoff: Backoff = DEFAULT_BACKOFF,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
        rng: random.Random | None = None,
        sleep: Sleep = asyncio.sleep,
        clock: Clock = time.monotonic,
    ) -> None:
        self.project_id = endpoint.project_id
        self._names = endpoint.names
        secret = endpoint.secret.get_secret_value()
        token = basic_token(endpoint.project_id, secret)
        self._redact = Redactor(secret, token)
        headers = {
            "Authorization": f"Basic {token}",
            "User-Agent": USER_AGENT,
            "Content-Type": "application/json",
        }
        self._http = HttpClient(
            endpoint.base_url,
            headers,
            self._redact,
            Site(PROVIDER, endpoint.names.base_url),
            parallelism=parallelism,
            rate_limit=rate_limit,
            backoff=backoff,
            timeout=timeout,
            transport=transport,
            rng=rng,
            sleep=sleep,
            clock=clock,
        )

    async def __aenter__(self) -> Self:
        await self._http.__aenter__()
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self._http.__aexit__(kind, value, traceback)

    # The API --------------------------------------------------------------------------

    async def read_catalog(self) -> ProjectPolicy:
        """GET /v1/b2b/rbac/policy."""
        return (await self._call(_PolicyAnswer, "GET", POLICY_PATH)).policy

    async def read_org(self, organization_id: str) -> OrgPolicy:
        """The org policy of an organization named by its id, slug or external id."""
        path = ORG_POLICY_PATH + segment(organization_id)
        return (await self._call(_OrgPolicyAnswer, "GET", path, organization_id)).org_policy

    async def holders(
        self, organization_id: str, role_ids: Sequence[str]
    ) -> tuple[RoleHolders, ...]:
        """Who depends on each of the roles `role_ids`: the members holding it, however
        assigned (member search, `member_roles`), and the rules assigning it implicitly:
        the organization's email domains, its SAML connections' and its SCIM
        connection's groups. Roles nothing depends on are left out."""
        if not role_ids:
            return ()
        path = ORGANIZATION_PATH + segment(organization_id)
        answer = await self._call(_OrganizationAnswer, "GET", path, organization_id)
        org = answer.organization
        members, sso, scim = await asyncio.gather(
            self._members(org.organization_id, role_ids, organization_id),
            self._call(_SsoAnswer, "GET", SSO_PATH + segment(org.organization_id), organization_id),
            self._scim(org.organization_id, organization_id),
        )
        found: dict[str, list[Holder]] = {role_id: [] for role_id in role_ids}

        def add(role_id: str, holder: Holder) -> None:
            if role_id in found:
                found[role_id].append(holder)

        for member in members:
            for held in member.roles:
                types = sorted({source.type for source in held.sources})
                add(
                    held.role_id,
                    Holder(kind="member", id=member.member_id, detail=", ".join(types)),
                )
        for rule in org.rbac_email_implicit_role_assignments:
            add(rule.role_id, Holder(kind="email_domain", id=rule.domain))
        for saml in sso.saml_connections:
            for by_connection in saml.saml_connection_implicit_role_assignments:
                add(by_connection.role_id, Holder(kind="sso_connection", id=saml.connection_id))
            for by_group in saml.saml_group_implicit_role_assignments:
                holder = Holder(kind="sso_group", id=saml.connection_id, detail=by_group.group)
                add(by_group.role_id, holder)
        if scim is not None:
            for group in scim.scim_group_implicit_role_assignments:
                name = group.group_name or group.group_id
                holder = Holder(kind="scim_group", id=scim.connection_id, detail=name)
                add(group.role_id, holder)
        return tuple(
            RoleHolders(role_id=role_id, holders=tuple(holders))
            for role_id, holders in found.items()
            if holders
        )

    async def _members(
        self, oid: str, role_ids: Sequence[str], organization_id: str
    ) -> list[_Member]:
        """The members of organization `oid` holding any of `role_ids`, page by page."""
        query = {
            "operator": "AND",
            "operands": [{"filter_name": "member_roles", "filter_value": list(role_ids)}],
        }
        members: list[_Member] = []
        cursor: str | None = None
        seen: set[str] = set()
        while True:
            body: dict[str, Any] = {"organization_ids": [oid], "limit": MEMBER_PAGE, "query": query}
            if cursor:
                body["cursor"] = cursor
            answer = await self._call(
                _MemberSearchAnswer, "POST", MEMBER_SEARCH_PATH, organization_id, body
            )
            members += answer.members
            cursor = answer.results_metadata.next_cursor
            if not cursor:
                return members
            if cursor in seen:  # a server bug would otherwise be an endless loop
                message = "member search returned a cursor a second time"
                raise self._api_error(200, "unexpected_response", message, None, organization_id)
            seen.add(cursor)

    async def _scim(self, oid: str, organization_id: str) -> _ScimConnection | None:
        """The organization's SCIM connection; None when it has none (a null connection,
        or a 404)."""
        path = f"{SCIM_PATH}{segment(oid)}/connection"
        try:
            return (await self._call(_ScimAnswer, "GET", path, organization_id)).connection
        except ApiError as error:
            if error.status == 404 and error.error_type != "route_not_found":
                return None
            raise

    async def write_org(
        self,
        organization_id: str,
        policy: OrgPolicy,
        prior: OrgPolicy | None = None,
        *,
        holders: Sequence[RoleHolders] = (),
        log: Log | None = None,
    ) -> OrgPolicy:
        """Replace every org-specific role of the organization; returns what Stytch stored.
        One PUT replaces them all. A role `prior` (what was read before) lacks is given
        back to the members of `holders` that held it directly (a rollback re-creating a
        deleted role), each reported to `log`.

        When a PUT may have been carried out but no answer came (a connection dropped
        after sending, a 5xx), live is read before sending it again: if it already
        equals `policy`, the PUT took effect and is not repeated."""
        path = ORG_POLICY_PATH + segment(organization_id)
        body = {"org_policy": policy.model_dump(mode="json")}

        async def settle() -> bool:
            try:
                live = await self.read_org(organization_id)
            except ProviderError:
                return False  # still unknown: sending the PUT again is safe
            return same_policy(live, policy)

        try:
            response = await self._http.send("PUT", path, body, organization_id, settle)
        except Rejected as rejected:
            error = self._answer_error(rejected.response, organization_id, rejected.after)
            error.outcome_unknown = rejected.outcome_unknown
            raise error from None
        if response is None:  # an earlier attempt took effect: live is `policy`
            stored = policy
        else:
            try:
                stored = self._parse(_OrgPolicyAnswer, response, organization_id).org_policy
            except ApiError as unreadable:  # a 200: carried out, what was stored is unknown
                unreadable.outcome_unknown = True
                raise
        before = {role.role_id for role in prior.roles} if prior is not None else set()
        created = {role.role_id for role in policy.roles} - before
        given = [h for h in holders if h.role_id in created]
        if given:
            try:
                await self._reassign(organization_id, given, log)
            except ProviderError as error:  # the PUT landed: what follows is half done
                error.outcome_unknown = True
                raise
        return stored

    async def _reassign(
        self, organization_id: str, given: Sequence[RoleHolders], log: Log | None
    ) -> None:
        """Give each re-created role back to the members that held it directly (Stytch
        takes a deleted role from them); the rules assigning it implicitly are the
        organization's settings, which a role's deletion leaves alone."""
        path = ORGANIZATION_PATH + segment(organization_id)
        oid = (await self._call(_OrganizationAnswer, "GET", path, organization_id)).organization
        wanted: dict[str, list[str]] = {}  # member -> the roles to give back
        for held in given:
            for holder in held.holders:
                if holder.kind == "member" and "direct_assignment" in (holder.detail or ""):
                    wanted.setdefault(holder.id, []).append(held.role_id)
        for member_id, role_ids in sorted(wanted.items()):
            member = await self._member(oid.organization_id, member_id, organization_id)
            if member is None:  # gone since: nobody to give the role back to
                continue
            direct = [
                r.role_id
                for r in member.roles
                if any(s.type == "direct_assignment" for s in r.sources)
            ]
            missing = [role_id for role_id in role_ids if role_id not in direct]
            if missing:
                member_path = f"{path}/members/{segment(member_id)}"
                body = {"roles": [*direct, *missing]}
                await self._call(_Answer, "PUT", member_path, organization_id, body)
            if log is not None:
                for role_id in role_ids:
                    operation = RoleOperation(
                        action="assign", role_id=role_id, detail=f"member {member_id}"
                    )
                    await log(operation)

    async def _member(self, oid: str, member_id: str, organization_id: str) -> _Member | None:
        """One member of organization `oid` (member search by id), None if it is gone."""
        query = {
            "operator": "AND",
            "operands": [{"filter_name": "member_ids", "filter_value": [member_id]}],
        }
        body = {"organization_ids": [oid], "limit": 1, "query": query}
        answer = await self._call(
            _MemberSearchAnswer, "POST", MEMBER_SEARCH_PATH, organization_id, body
        )
        return next((m for m in answer.members if m.member_id == member_id), None)

    async def list_orgs(self, limit: int = 1000) -> AsyncIterator[Organization]:
        """Every organization of the project, `limit` per page, in Stytch's order."""
        cursor: str | None = None
        seen: set[str] = set()
        while True:
            body: dict[str, Any] = {"limit": limit} | ({"cursor": cursor} if cursor else {})
            answer = await self._call(_SearchAnswer, "POST", SEARCH_PATH, body=body)
            for o in answer.organizations:
                yield Organization(
                    o.organization_id,
                    o.organization_name,
                    o.organization_slug,
                    o.organization_external_id,
                    o.org_policy,
                )
            cursor = answer.results_metadata.next_cursor
            if not cursor:
                return
            if cursor in seen:  # a server bug would otherwise be an endless loop
                message = "organization search returned a cursor a second time"
                raise self._api_error(200, "unexpected_response", message, None, None)
            seen.add(cursor)

    # Answers and errors ---------------------------------------------------------------

    async def _call(
        self,
        answer: type[AnswerT],
        method: str,
        path: str,
        organization_id: str | None = None,
        body: dict[str, Any] | None = None,
    ) -> AnswerT:
        """The request's 200, read as `answer`; Stytch's error otherwise."""
        try:
            response = await self._http.send(method, path, body, organization_id)
        except Rejected as rejected:
            raise self._answer_error(rejected.response, organization_id, rejected.after) from None
        assert response is not None  # nothing to settle: no answer is None
        return self._parse(answer, response, organization_id)

    def _parse(
        self, answer: type[AnswerT], response: httpx.Response, organization_id: str | None
    ) -> AnswerT:
        exact = _TRIED_FIRST.get(answer)
        if exact is not None:
            with contextlib.suppress(ValidationError):
                return cast(AnswerT, exact.model_validate_json(response.content))
        try:
            return answer.model_validate_json(response.content)
        except ValidationError as exc:
            error = exc.errors(include_url=False, include_input=False)[0]
            where = ".".join(str(part) for part in error["loc"]) or "the body"
            message = f"a 200 answer policysync cannot read: {where}: {error['msg']}"
            request_id = json_object(response).get("request_id")
            raise self._api_error(
                200, "unexpected_response", message, request_id, organization_id
            ) from None

    def _answer_error(
        self, response: httpx.Response, organization_id: str | None, after: str
    ) -> ApiError:
        """Stytch's error body; or, when something else answered, what it said."""
        status, body = response.status_code, json_object(response)
        error_type, message = body.get("error_type"), body.get("error_message")
        if isinstance(error_type, str) and isinstance(message, str):
            request_id = body.get("request_id")
            return self._api_error(status, error_type, message + after, request_id, organization_id)
        text = f"HTTP {status} {response.reason_phrase}, not a Stytch answer"
        if response.headers.get("location"):
            text += f" (redirected to {response.headers['location']})"
        snippet = self._redact.snippet(response.text, 200)  # scrubbed before it is cut
        text += (f": {snippet!r}" if snippet else "") + after
        return self._api_error(status, "unexpected_response", text, None, organization_id)

    def _api_error(
        self,
        status: int | None,
        error_type: str,
        message: str,
        request_id: Any,
        organization_id: str | None,
    ) -> ApiError:
        """The error, with every text that came from the server scrubbed of the secret."""
        return ApiError(
            status,
            self._redact(error_type),
            self._redact(message),
            self._redact(request_id) if isinstance(request_id, str) else None,
            organization_id,
            HINTS.get(
                error_type, "server error: try again later" if (status or 0) >= 500 else ""
            ).format(**self._names._asdict()),
            PROVIDER,
        )
