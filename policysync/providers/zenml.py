"""ZenML Pro's organization roles, as policysync speaks them (the wire contract:
zenml-pro-api.md): logging in with an API key, organizations by id or by name, roles
listed page by page and changed one at a time, who holds a role, and FastAPI's error
bodies. HTTP itself (slots, retries, the rate limit, redaction) is `http.py`'s.

The core sees a role as one of Stytch's shape under the key `level:name`
(`zenml_models.core_role`); every guess about the wire (zenml-pro-api.md's [G]) is in
the block "ZenML Pro guesses" below, and nowhere else, so that a first look at the real
API corrects them in one place.

A write is a sequence of role operations: updates, then creations (each re-created role
given back to who held it), then deletions; each is reported to the core's `log`, which
journals it before the next is sent. A request whose outcome is unknown (an answer lost,
a 5xx) is checked before it is sent again (`settle`): a role created or deleted by the
first attempt is not created or deleted twice. The key and the bearer token are never
shown: every text that came from elsewhere is scrubbed of both.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, Self, TypeVar
from urllib.parse import urlencode

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, TypeAdapter, ValidationError

from policysync import __version__
from policysync.canonical import grants, same_role
from policysync.errors import ApiError, ConfigError, ProviderError
from policysync.models import (
    Holder,
    Organization,
    OrgPolicy,
    Permission,
    ProjectPolicy,
    Role,
    RoleHolders,
    RoleOperation,
)
from policysync.providers.http import (
    DEFAULT_BACKOFF,
    HttpClient,
    Rejected,
    Site,
    check_base_url,
    check_text,
    json_object,
    segment,
)
from policysync.providers.pacing import Backoff, Clock, Sleep
from policysync.providers.redaction import MIN_SECRET_LENGTH, Redactor
from policysync.zenml_models import ZenmlPermission, ZenmlRole, core_role, role_key, split_key

if TYPE_CHECKING:
    from policysync.config import NamedEnvironment
    from policysync.providers import Pacing
    from policysync.providers.base import Log, Provider

PROVIDER = "ZenML Pro"
DEFAULT_URL = "https://cloudapi.zenml.io"
USER_AGENT = f"policysync/{__version__}"
PAGE = 100  # the largest `limit` the list endpoints take
# A token is used until this long before it expires (or a tenth of its life, if shorter).
TOKEN_MARGIN_SECONDS = 60.0

HINTS = {
    401: "check {api_key} (a service account's API key or a personal access token) and {api_url}",
    402: "the organization's ZenML Pro subscription does not include custom roles: upgrade it",
    403: "ZenML Pro refused the operation: the API key's account must be allowed to manage "
    "the organization's roles, and system-managed roles cannot be changed",
    404: "check the organization's id or name, and {api_url}",
    409: "a role of that level and name exists already (made meanwhile?): make a new plan",
    422: "ZenML Pro refused the request as invalid: if the files validate, this may be one of "
    "policysync's guesses about the API (README, 'ZenML Pro guesses'): report it",
    429: "lower --rate-limit",
}
ERROR_TYPES = {
    401: "unauthorized",
    402: "subscription_required",
    403: "forbidden",
    404: "not_found",
    409: "conflict",
    422: "invalid_input",
    429: "too_many_requests",
}


# ZenML Pro guesses ------------------------------------------------------------------
# What no public source shows (zenml-pro-api.md's [G]); README's "ZenML Pro guesses"
# lists them, as does the emulator's own block (emulator/zenml_app.py):
#   1. POST /roles takes {name, description, organization_id, level, permissions} and
#      answers the role (with its `id`);
#   2. PATCH /roles/{id} takes the fields that change: description, permissions;
#   3. a permission is {"resource": ..., "action": ...}; a listed role may lack its
#      permissions, which GET /roles/{id} carries;
#   4. DELETE /roles/{id} answers 200 (its body is not read); deleting an unknown id
#      answers 404.


def create_body(role: Role, organization_id: str) -> dict[str, Any]:
    level, name = split_key(role.role_id)
    return {
        "name": name,
        "description": role.description,
        "organization_id": organization_id,
        "level": level,
        "permissions": permission_pairs(role.permissions),
    }


def update_body(live: Role, role: Role) -> dict[str, Any]:
    """Only the fields that change."""
    body: dict[str, Any] = {}
    if live.description != role.description:
        body["description"] = role.description
    if grants(live.permissions) != grants(role.permissions):
        body["permissions"] = permission_pairs(role.permissions)
    return body


def permission_pairs(permissions: Sequence[Permission]) -> list[dict[str, str]]:
    pairs = dict.fromkeys((p.resource_id, a) for p in permissions for a in p.actions)
    return [{"resource": r, "action": a} for r, a in pairs]


class _Permission(BaseModel):
    model_config = ConfigDict(frozen=True)

    resource: str
    action: str


# --------------------------------------------------------------------------------------


class _Answer(BaseModel):
    """An answer, of which only the fields named are read (ZenML's models allow extras)."""

    model_config = ConfigDict(frozen=True)


class _Token(_Answer):
    # A bearer is sent in a header: visible ASCII only (RFC 6750's b64token and more).
    access_token: str = Field(pattern=r"^[\x21-\x7e]+$")
    # Seconds; a day at most is believed (a token is used until shortly before then).
    expires_in: float | None = Field(default=None, ge=0, allow_inf_nan=False)


class _Listed(_Answer):
    """An item of a list endpoint, told apart from the others by its id."""

    id: str


class _Organization(_Listed):
    name: str = ""


class _Role(_Listed):
    name: str
    level: str
    description: str | None = ""
    system_managed: bool = False
    permissions: tuple[_Permission, ...] | None = None

    @property
    def key(self) -> str:
        return role_key(self.level, self.name)

    def core(self, permissions: Sequence[_Permission]) -> Role:
        pairs = tuple(ZenmlPermission(resource=p.resource, action=p.action) for p in permissions)
        role = ZenmlRole(
            name=self.name, level=self.level, description=self.description or "", permissions=pairs
        )
        return core_role(role)


class _Assignment(_Answer):
    user: Any = None
    team: Any = None
    invitation: Any = None
    workspace_id: Any = None
    project_id: Any = None

    def holder(self) -> Holder | None:
        for kind in ("user", "team", "invitation"):
            who = _id_of(getattr(self, kind))
            if who is not None:
                return Holder(
                    kind=kind,
                    id=who,
                    workspace_id=_id_of(self.workspace_id),
                    project_id=_id_of(self.project_id),
                )
        return None


def _id_of(value: Any) -> str | None:
    """An id as ZenML sends it: a string, or an object with an `id` (a user, a team)."""
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) and value else None


_T = TypeVar("_T")
_ListedT = TypeVar("_ListedT", bound=_Listed)
_TOKEN = TypeAdapter(_Token)
_ROLE = TypeAdapter(_Role)
_ORGANIZATIONS = TypeAdapter(list[_Organization])
_ROLES = TypeAdapter(list[_Role])
_ASSIGNMENTS = TypeAdapter(list[_Assignment])


Action = Literal["create", "update", "delete", "assign"]


class LiveRole(NamedTuple):
    id: str
    role: Role


class Names(NamedTuple):
    """What messages call the API key and the URL: the variables they are read from
    (with --env, those the environment names; a URL the settings give: that setting)."""

    api_key: str = "ZENML_PRO_API_KEY"
    api_url: str = "ZENML_PRO_API_URL"


_STANDARD = Names()


@dataclass(frozen=True)
class Endpoint:
    """A ZenML Pro control plane and the API key presented there (a SecretStr: a repr or
    a traceback's locals show `**********`)."""

    api_key: SecretStr
    base_url: str
    names: Names = _STANDARD

    def __post_init__(self) -> None:
        key = self.api_key.get_secret_value()
        check_text(self.names.api_key, key)
        check_text(self.names.api_url, self.base_url)
        if len(key) < MIN_SECRET_LENGTH:
            raise ConfigError(
                f"{self.names.api_key} is shorter than {MIN_SECRET_LENGTH} characters: set it "
                "to a service account's API key (ZENPROKEY_…) or a personal access token "
                "(policysync hides the key wherever it appears in a message, which a short "
                "one would mangle)"
            )
        check_base_url(self.base_url, self.names.api_url, DEFAULT_URL + "/")


def endpoint_from_env(
    environ: Mapping[str, str], environment: NamedEnvironment | None = None
) -> Endpoint:
    """ZENML_PRO_API_KEY and, optionally, ZENML_PRO_API_URL. With an environment
    (`--env`): the variables it names (api_key_env, api_url_env), or, naming no key's,
    those standard ones; its api_url before any."""
    names, fixed, url_variable, of = Names(), None, "ZENML_PRO_API_URL", ""
    if environment is not None:
        own = environment.settings
        fixed, of = own.api_url, f" (environment {environment.name})"
        if own.api_key_env is not None:
            names = names._replace(api_key=own.api_key_env)
            url_variable = own.api_url_env or ""
        elif own.api_url_env is not None:
            url_variable = own.api_url_env
        url_setting = environment.setting("api_url")
        names = names._replace(api_url=url_setting if fixed or not url_variable else url_variable)
    key = environ.get(names.api_key, "").strip()
    if not key:
        raise ConfigError(
            f"{names.api_key} is not set: set it to a ZenML Pro service account's API key "
            f"(or a personal access token){of}, or to the key `policysync emulator "
            "--provider zenml` prints"
        )
    from_variable = environ.get(url_variable, "").strip() if url_variable and not fixed else ""
    base_url = fixed or from_variable or DEFAULT_URL
    return Endpoint(SecretStr(key), base_url.rstrip("/") + "/", names)


def from_env(
    environ: Mapping[str, str], pacing: Pacing, environment: NamedEnvironment | None = None
) -> Provider:
    """The provider, built once by the CLI: the key and the URL from `environ` (the
    variables `environment` names, with --env)."""
    return ZenmlClient(
        endpoint_from_env(environ, environment),
        parallelism=pacing.parallelism,
        rate_limit=pacing.rate_limit,
        backoff=Backoff(max_wait=pacing.max_wait),
    )


class ZenmlClient:
    """An async ZenML Pro client; use it as `async with ZenmlClient(endpoint) as client:`.
    Its `project_id` is the API's URL: plans and journals made against one control plane
    are refused by another."""

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
        self.project_id = endpoint.base_url.rstrip("/")
        self._variables = endpoint.names
        self._key = endpoint.api_key  # a SecretStr: ********** in a repr or a traceback
        # Every token this client was given is hidden too: a token replaced may still be
        # good (it is replaced before it expires), and an answer may echo it after that.
        self._given_tokens: list[str] = []
        self._redact = Redactor(self._key.get_secret_value())
        self._clock = clock
        self._http = HttpClient(
            endpoint.base_url,
            {"User-Agent": USER_AGENT, "Accept": "application/json"},
            lambda text: self._redact(text),
            Site(PROVIDER, endpoint.names.api_url),
            parallelism=parallelism,
            rate_limit=rate_limit,
            backoff=backoff,
            timeout=timeout,
            transport=transport,
            rng=rng,
            sleep=sleep,
            clock=clock,
        )
        self._token: tuple[str, float] | None = None  # the bearer, and when to stop using it
        self._login_lock: asyncio.Lock | None = None
        self._names: dict[str, list[str]] | None = None  # organization name -> ids
        self._names_lock: asyncio.Lock | None = None

    async def __aenter__(self) -> Self:
        self._login_lock, self._names_lock = asyncio.Lock(), asyncio.Lock()  # this loop's
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
        """ZenML has no project policy: the files are checked against the permission
        vocabulary (built in, and `permissions.json`) instead. The login is checked."""
        await self._bearer()
        return ProjectPolicy(roles=(), resources=())

    async def read_org(self, organization_id: str) -> OrgPolicy:
        """The custom roles of an organization named by its id or its name."""
        oid = await self._resolve(organization_id)
        live = await self._live(oid, organization_id)
        return OrgPolicy(roles=tuple(r.role for r in live))

    async def holders(
        self, organization_id: str, role_ids: Sequence[str]
    ) -> tuple[RoleHolders, ...]:
        """Who holds each of the custom roles `role_ids` (GET /roles/{id}/assignments)."""
        oid = await self._resolve(organization_id)
        ids = {r.key: r.id for r in await self._listed(oid, organization_id)}

        async def of(key: str) -> RoleHolders:
            path = f"/roles/{segment(ids[key])}/assignments"
            found = self._read(_ASSIGNMENTS, await self._call("GET", path, organization_id))
            held = tuple(h for h in (a.holder() for a in found) if h is not None)
            return RoleHolders(role_id=key, holders=held)

        return tuple(await asyncio.gather(*(of(key) for key in role_ids if key in ids)))

    async def write_org(
        self,
        organization_id: str,
        policy: OrgPolicy,
        prior: OrgPolicy | None = None,
        *,
        holders: Sequence[RoleHolders] = (),
        log: Log | None = None,
    ) -> OrgPolicy:
        """Make the organization's custom roles `policy`, one role at a time (live is read
        again for the roles' ids), then read them back. Roles are updated, then created
        (and given to their `holders`), then deleted: a run stopped half way has taken
        no access away before it gave what it gives."""
        oid = await self._resolve(organization_id)
        live = {r.role.role_id: r for r in await self._live(oid, organization_id)}
        wanted = {role.role_id: role for role in policy.roles}
        given = {h.role_id: h.holders for h in holders}

        async def landed(action: Action, key: str, detail: str = "") -> None:
            if log is not None:
                await log(RoleOperation(action=action, role_id=key, detail=detail))

        for key, role in wanted.items():
            current = live.get(key)
            if current is not None and not same_role(current.role, role):
                path = f"/roles/{segment(current.id)}"
                await self._call("PATCH", path, organization_id, update_body(current.role, role))
                await landed("update", key)
        for key, role in wanted.items():
            if key not in live:
                new_id = await self._create(oid, organization_id, role)
                await landed("create", key, new_id)
                for holder in given.get(key, ()):
                    await self._assign(new_id, holder, organization_id)
                    await landed("assign", key, f"{holder.kind} {holder.id}")
        for key, current in live.items():
            if key not in wanted:
                await self._delete(current.id, organization_id)
                await landed("delete", key)
        return await self.read_org(organization_id)

    async def list_orgs(self, limit: int = 1000) -> AsyncIterator[Organization]:
        """Every organization the key sees, with its custom roles (`limit` is the
        organizations asked for at once: their roles are read together)."""
        batch: list[_Organization] = []
        async for org in self._organizations():
            batch.append(org)
            if len(batch) >= max(1, min(limit, PAGE)):
                for listed in await self._with_roles(batch):
                    yield listed
                batch = []
        for listed in await self._with_roles(batch):
            yield listed

    # Reading --------------------------------------------------------------------------

    async def _with_roles(self, batch: list[_Organization]) -> list[Organization]:
        async def one(org: _Organization) -> Organization:
            live = await self._live(org.id, org.id)
            policy = OrgPolicy(roles=tuple(r.role for r in live))
            return Organization(org.id, org.name, org.name, None, policy)

        return list(await asyncio.gather(*(one(org) for org in batch)))

    def _organizations(self) -> AsyncIterator[_Organization]:
        """GET /organizations, page by page."""
        return self._paged(_ORGANIZATIONS, "/organizations", {})

    async def _paged(
        self,
        adapter: TypeAdapter[list[_ListedT]],
        path: str,
        query: dict[str, str],
        organization_id: str | None = None,
    ) -> AsyncIterator[_ListedT]:
        """The items of a list endpoint, `PAGE` at a time (`offset`, `limit`) until a short
        page, or a page of nothing new: a server that ignores `offset` would otherwise be
        asked forever."""
        seen: set[str] = set()
        offset = 0
        while True:
            paging = urlencode({**query, "offset": offset, "limit": PAGE})
            page = self._read(adapter, await self._call("GET", f"{path}?{paging}", organization_id))
            new = [item for item in page if item.id not in seen]
            seen.update(item.id for item in new)
            for item in new:
                yield item
            if len(page) < PAGE or not new:
                return
            offset += PAGE

    async def _resolve(self, organization_id: str) -> str:
        """The id of an organization named by its id (a uuid) or by its name."""
        try:
            return str(uuid.UUID(organization_id))
        except ValueError:
            pass
        assert self._names_lock is not None, "use the client as `async with client:`"
        async with self._names_lock:  # listed once per run, by whoever asks first
            if self._names is None:
                names: dict[str, list[str]] = {}
                async for org in self._organizations():
                    names.setdefault(org.name, []).append(org.id)
                self._names = names
        ids = self._names.get(organization_id, [])
        if len(ids) == 1:
            return ids[0]
        message = (
            f"no organization named {organization_id!r} is visible to this API key"
            if not ids
            else f"{len(ids)} organizations are named {organization_id!r}: name it by its id"
        )
        raise self._api_error(404, "organization_not_found", message, organization_id)

    async def _listed(self, oid: str, organization_id: str) -> list[_Role]:
        """The organization's custom roles as listed (their permissions may be missing).
        A 404 here is the organization's: no organization has that id (organization ids
        differ between control planes, so an environment may well lack one)."""
        path = f"/organizations/{segment(oid)}/roles"
        query = {"system_managed": "false"}
        roles = self._paged(_ROLES, path, query, organization_id)
        try:
            return [role async for role in roles if not role.system_managed]
        except ApiError as exc:
            if exc.status != 404:
                raise
            message = f"no organization with id {oid} is visible to this API key: {exc.message}"
            raise self._api_error(404, "organization_not_found", message, organization_id) from None

    async def _live(self, oid: str, organization_id: str) -> list[LiveRole]:
        """The organization's custom roles, each with its permissions."""
        listed = await self._listed(oid, organization_id)

        async def full(role: _Role) -> LiveRole:
            if role.permissions is not None:
                return LiveRole(role.id, role.core(role.permissions))
            response = await self._call("GET", f"/roles/{segment(role.id)}", organization_id)
            detailed = self._read(_ROLE, response)
            return LiveRole(role.id, role.core(detailed.permissions or ()))

        return list(await asyncio.gather(*(full(role) for role in listed)))

    # Writing --------------------------------------------------------------------------

    async def _create(self, oid: str, organization_id: str, role: Role) -> str:
        """POST /roles; the new role's id. An attempt whose outcome is unknown is checked
        by listing the roles of that name: one found was created by it."""
        level, name = split_key(role.role_id)
        found: list[str] = []

        async def settle() -> bool:
            query = urlencode({"name": name, "level": level, "system_managed": "false"})
            path = f"/organizations/{segment(oid)}/roles?{query}"
            try:
                page = self._read(_ROLES, await self._call("GET", path, organization_id))
            except ProviderError:
                return False
            found.extend(r.id for r in page if r.key == role.role_id)
            return bool(found)

        body = create_body(role, oid)
        response = await self._call("POST", "/roles", organization_id, body, settle)
        if response is None:
            return found[0]
        return self._read(_ROLE, response).id

    async def _delete(self, role_id: str, organization_id: str) -> None:
        """DELETE /roles/{id}; an attempt whose outcome is unknown is checked by reading
        the role: gone means deleted."""
        path = f"/roles/{segment(role_id)}"

        async def settle() -> bool:
            try:
                await self._call("GET", path, organization_id)
            except ProviderError as exc:
                return exc.status == 404
            return False

        await self._call("DELETE", path, organization_id, settle=settle)

    async def _assign(self, role_id: str, holder: Holder, organization_id: str) -> None:
        """POST /roles/{id}/assignments (query parameters; assigning twice holds once)."""
        query = {f"{holder.kind}_id": holder.id}
        if holder.workspace_id:
            query["workspace_id"] = holder.workspace_id
        if holder.project_id:
            query["project_id"] = holder.project_id
        path = f"/roles/{segment(role_id)}/assignments?{urlencode(query)}"
        await self._call("POST", path, organization_id)

    # Requests, tokens and errors ------------------------------------------------------

    async def _bearer(self, stale: str | None = None) -> str:
        """A token that is not `stale`: the cached one, or a new one from POST /auth/login."""
        assert self._login_lock is not None, "use the client as `async with client:`"
        async with self._login_lock:
            if self._token is not None:
                token, until = self._token
                if token != stale and self._clock() < until:
                    return token
            try:
                response = await self._http.send(
                    "POST", "/auth/login", form={"password": self._key.get_secret_value()}
                )
            except Rejected as rejected:
                raise self._answer_error(rejected.response, None, rejected.after) from None
            assert response is not None
            answer = self._read(_TOKEN, response)
            life = 3600.0 if answer.expires_in is None else min(answer.expires_in, 86400.0)
            until = self._clock() + max(0.0, life - min(TOKEN_MARGIN_SECONDS, life / 10))
            token = answer.access_token
            if len(token) >= MIN_SECRET_LENGTH and token not in self._given_tokens:
                self._given_tokens.append(token)
                self._redact = Redactor(self._key.get_secret_value(), *self._given_tokens)
            self._token = (token, until)
            return token

    async def _call(
        self,
        method: str,
        path: str,
        organization_id: str | None = None,
        body: dict[str, Any] | None = None,
        settle: Callable[[], Awaitable[bool]] | None = None,
    ) -> httpx.Response | None:
        """The request's 200 (None when `settle` found an earlier attempt took effect);
        ZenML's error otherwise. Every attempt carries the token cached then (one that
        expired while the request waited to be retried is renewed first); a 401 logs in
        again, once, and the request is sent again. The error says `outcome_unknown` when
        any attempt, before the 401 or after, may have been carried out."""
        used: list[str] = []  # the token of each attempt
        stale: str | None = None  # the token a 401 refused: logged in again instead

        async def bearer() -> dict[str, str]:
            used.append(await self._bearer(stale))
            return {"Authorization": f"Bearer {used[-1]}"}

        unknown = False
        for last in (False, True):
            try:
                return await self._http.send(
                    method, path, body, organization_id, settle, auth=bearer
                )
            except Rejected as rejected:
                unknown = unknown or rejected.outcome_unknown
                if rejected.response.status_code == 401 and not last:
                    stale = used[-1]  # the next attempt logs in again first
                    continue
                error = self._answer_error(rejected.response, organization_id, rejected.after)
                error.outcome_unknown = unknown
                raise error from None
            except ProviderError as error:
                error.outcome_unknown = error.outcome_unknown or unknown
                raise
        raise AssertionError("unreachable")

    def _read(self, adapter: TypeAdapter[_T], response: httpx.Response | None) -> _T:
        """A 200's body as `adapter` reads it."""
        assert response is not None
        try:
            return adapter.validate_json(response.content)
        except ValidationError as exc:
            error = exc.errors(include_url=False, include_input=False)[0]
            where = ".".join(str(part) for part in error["loc"]) or "the body"
            message = f"a 200 answer policysync cannot read: {where}: {error['msg']}"
            raise self._api_error(200, "unexpected_response", message, None) from None

    def _answer_error(
        self, response: httpx.Response, organization_id: str | None, after: str
    ) -> ApiError:
        """FastAPI's error body (`detail`: a string, ["Class", "message"], or 422's list of
        {loc, msg}); or, when something else answered, what it said."""
        status = response.status_code
        detail = json_object(response).get("detail")
        error_type = ERROR_TYPES.get(status, "server_error" if status >= 500 else "error")
        message: str | None = None
        if isinstance(detail, str):
            message = detail
        elif (
            isinstance(detail, list)
            and len(detail) == 2
            and all(isinstance(d, str) for d in detail)
        ):
            error_type, message = detail[0], detail[1]
        elif isinstance(detail, list) and detail and all(isinstance(d, dict) for d in detail):
            message = "; ".join(_field_error(d) for d in detail)
        if message is None:
            message = f"HTTP {status} {response.reason_phrase}, not a {PROVIDER} answer"
            snippet = self._redact.snippet(response.text, 200)
            message += f": {snippet!r}" if snippet else ""
            error_type = "unexpected_response"
        return self._api_error(status, error_type, message + after, organization_id)

    def _api_error(
        self, status: int | None, error_type: str, message: str, organization_id: str | None
    ) -> ApiError:
        hint = HINTS.get(
            status or 0, "server error: try again later" if (status or 0) >= 500 else ""
        ).format(**self._variables._asdict())
        if error_type == "unexpected_response" and status == 200:
            hint = f"check {self._variables.api_url}; if it is right, this may be one of "
            hint += "policysync's guesses about the API (README, 'ZenML Pro guesses'): report it"
        return ApiError(
            status,
            self._redact(error_type),
            self._redact(message),
            None,
            organization_id,
            hint,
            PROVIDER,
        )


def _field_error(error: dict[str, Any]) -> str:
    """One error of a 422's list: where (without FastAPI's leading `body`/`query`), what."""
    loc = error.get("loc")
    parts = [str(p) for p in loc] if isinstance(loc, list) else []
    where = ".".join(parts[1:] if parts[:1] in (["body"], ["query"]) else parts)
    return f"{where}: {error.get('msg', '')}" if where else str(error.get("msg", ""))
