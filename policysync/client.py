"""The Stytch B2B RBAC API as policysync speaks it (the wire contract: stytch-api.md).

Every attempt of every request first takes one of `parallelism` slots (the size of the
keep-alive pool too, so no request ever waits for a connection), then passes the rate
limiter: the moment it leaves the limiter is the moment it starts. Answers 429 and 5xx,
timeouts and connection faults are retried with backoff; GET, PUT and search are all
safe to send twice (PUT replaces the whole org policy, so a repeat changes nothing).
Success is exactly 200. Whatever failed is raised as a ProviderError naming the
organization, with the secret scrubbed from every text that came from elsewhere.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from types import TracebackType
from typing import Annotated, Any, TypeVar, cast
from urllib.parse import quote

import httpx
import pydantic_core
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from policysync import __version__
from policysync.canonical import same_policy
from policysync.connection import Connection, Lane, TransportLane
from policysync.endpoint import Endpoint
from policysync.errors import ApiError, ProviderError, TransportError, UsageError
from policysync.models import Organization, OrgPolicy, ProjectPolicy
from policysync.pacing import Backoff, Clock, RateLimiter, Sleep

PROVIDER = "Stytch"  # who answered, in messages
USER_AGENT = f"policysync/{__version__}"
POLICY_PATH = "/v1/b2b/rbac/policy"
ORG_POLICY_PATH = "/v1/b2b/rbac/organizations/"
SEARCH_PATH = "/v1/b2b/organizations/search"
DEFAULT_BACKOFF = Backoff()

# Faults that may pass: a refused, reset or dropped connection, a slow answer. Not among
# them: an unsupported URL scheme or a request httpx cannot even write.
RETRYABLE_TRANSPORT = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)

# What to do about an error, by error_type (the default: read Stytch's message).
HINTS = {
    "unauthorized_credentials": "check STYTCH_PROJECT_ID and STYTCH_SECRET (and STYTCH_BASE_URL)",
    "enterprise_endpoint": "org-specific RBAC policies are in private beta: ask Stytch "
    "support to enable them for this project",
    "organization_not_found": "check the organization's id, slug or external id",
    "too_many_requests": "lower --rate-limit",
    "unexpected_response": "check STYTCH_BASE_URL; if it is right, this policysync may be "
    "older than Stytch's API: upgrade it",
    "timeout": "check STYTCH_BASE_URL and the network, or try again later",
    "connection_error": "check STYTCH_BASE_URL and the network, or try again later",
}


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
    twice as fast as with the lenient reading's Python in the way (tried first)."""

    org_policy: OrgPolicy


_TRIED_FIRST: dict[type[_Answer], type[_Answer]] = {_OrgPolicyAnswer: _ExactOrgPolicyAnswer}


class _ResultsMetadata(_Answer):
    next_cursor: str | None = None


class _SearchAnswer(_Answer):
    organizations: tuple[_ListedOrganization, ...]
    results_metadata: _ResultsMetadata


AnswerT = TypeVar("AnswerT", bound=_Answer)
Outcome = httpx.Response | httpx.TransportError


class StytchClient:
    """An async Stytch client; use it as `async with StytchClient(endpoint) as client:`.

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
        if parallelism < 1:
            raise UsageError(f"parallelism must be at least 1, not {parallelism}")
        if rate_limit is not None and not rate_limit > 0:
            raise UsageError(f"a rate limit must be above 0 requests per second, not {rate_limit}")
        self.project_id = endpoint.project_id
        secret = endpoint.secret.get_secret_value()
        token = base64.b64encode(f"{endpoint.project_id}:{secret}".encode()).decode()
        self._headers = {
            "Authorization": f"Basic {token}",
            "User-Agent": USER_AGENT,
            "Content-Type": "application/json",
        }
        # One keep-alive connection per slot (see connection.py); one TLS context for
        # all (loading the CA bundle takes ~30 ms); plain http, loopback only, needs none.
        base_url = endpoint.base_url
        lanes: list[Lane]
        if transport is None:
            https = base_url.startswith("https://")
            context = httpx.create_ssl_context() if https else None
            lanes = [
                Connection(base_url, self._headers, timeout, context) for _ in range(parallelism)
            ]
        else:
            lanes = [TransportLane(transport, base_url, self._headers, timeout)] * parallelism
        self._connections = tuple(dict.fromkeys(lanes))  # each one once, to close
        self._lanes: asyncio.Queue[Lane] = asyncio.Queue()
        for lane in lanes:
            self._lanes.put_nowait(lane)
        self._base_url = endpoint.base_url
        self._redact = _redactor(endpoint.project_id, secret)
        self._limiter = (
            None if rate_limit is None else RateLimiter.per_second(rate_limit, clock, sleep)
        )
        self._backoff = backoff
        self._rng = rng or random.Random()
        self._sleep = sleep

    async def __aenter__(self) -> StytchClient:
        return self  # connections open when first used

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        for lane in self._connections:
            await lane.aclose()

    # The API --------------------------------------------------------------------------

    async def read_catalog(self) -> ProjectPolicy:
        """GET /v1/b2b/rbac/policy."""
        return (await self._call(_PolicyAnswer, "GET", POLICY_PATH)).policy

    async def read_org(self, organization_id: str) -> OrgPolicy:
        """The org policy of an organization named by its id, slug or external id."""
        path = ORG_POLICY_PATH + _segment(organization_id)
        return (await self._call(_OrgPolicyAnswer, "GET", path, organization_id)).org_policy

    async def write_org(
        self, organization_id: str, policy: OrgPolicy, prior: OrgPolicy | None = None
    ) -> OrgPolicy:
        """Replace every org-specific role of the organization; returns what Stytch stored.
        (One PUT replaces them all: `prior`, what was read before, is not needed.)

        When a PUT may have been carried out but no answer came (a connection dropped
        after sending, a 5xx), live is read before sending it again: if it already
        equals `policy`, the PUT took effect and is not repeated."""
        path = ORG_POLICY_PATH + _segment(organization_id)
        body = {"org_policy": policy.model_dump(mode="json")}

        async def settle() -> _OrgPolicyAnswer | None:
            try:
                live = await self.read_org(organization_id)
            except ProviderError:
                return None  # still unknown: sending the PUT again is safe
            return _OrgPolicyAnswer(org_policy=live) if same_policy(live, policy) else None

        answer = await self._call(_OrgPolicyAnswer, "PUT", path, organization_id, body, settle)
        return answer.org_policy

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

    # Requests, retries, errors --------------------------------------------------------

    async def _call(
        self,
        answer: type[AnswerT],
        method: str,
        path: str,
        organization_id: str | None = None,
        body: dict[str, Any] | None = None,
        settle: Callable[[], Awaitable[AnswerT | None]] | None = None,
    ) -> AnswerT:
        """Send until a 200 comes or retrying is no longer worth it; parse the 200.
        `settle`, for a request that changes state, is called before sending it again
        after an attempt whose outcome is unknown: what it returns, if anything, is the
        answer (the first attempt did take effect)."""
        content = None if body is None else _json_bytes(body)
        failures = throttles = 0
        while True:
            outcome = await self._attempt(method, path, content)
            if isinstance(outcome, httpx.Response) and outcome.status_code == 200:
                return self._parse(answer, outcome, organization_id)
            throttled = isinstance(outcome, httpx.Response) and outcome.status_code == 429
            if throttled:
                throttles += 1
            else:
                failures += 1
            count = throttles if throttled else failures
            delay = self._retry_delay(outcome, count, throttled)
            if delay is None:
                raise self._failure(outcome, method, path, organization_id, failures + throttles)
            await self._sleep(delay)
            if settle is not None and _outcome_unknown(outcome):
                settled = await settle()
                if settled is not None:
                    return settled

    async def _attempt(self, method: str, path: str, content: bytes | None) -> Outcome:
        lane = await self._lanes.get()  # a slot first: a request queued for one has not started
        try:
            if self._limiter is not None:
                await self._limiter.acquire()
            return await lane.send(method, path, content)
        except httpx.TransportError as exc:
            return exc
        finally:
            self._lanes.put_nowait(lane)

    def _retry_delay(self, outcome: Outcome, count: int, throttled: bool) -> float | None:
        if isinstance(outcome, httpx.Response):
            if outcome.status_code != 429 and outcome.status_code < 500:
                return None
            return self._backoff.delay(count, self._rng, _retry_after(outcome), throttled)
        if isinstance(outcome, RETRYABLE_TRANSPORT):
            return self._backoff.delay(count, self._rng, None)
        return None

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
            request_id = _json_object(response).get("request_id")
            raise self._api_error(
                200, "unexpected_response", message, request_id, organization_id
            ) from None

    def _failure(
        self, outcome: Outcome, method: str, path: str, organization_id: str | None, failures: int
    ) -> ProviderError:
        after = f" (gave up after {failures} attempts)" if failures > 1 else ""
        if isinstance(outcome, httpx.Response):
            return self._answer_error(outcome, organization_id, after)
        kind = "timeout" if isinstance(outcome, httpx.TimeoutException) else "connection_error"
        detail = f"{type(outcome).__name__}: {outcome}".rstrip(": ")
        message = f"no answer from {self._base_url} to {method} {path}: {detail}{after}"
        return TransportError(
            None, kind, self._redact(message), None, organization_id, HINTS[kind], PROVIDER
        )

    def _answer_error(
        self, response: httpx.Response, organization_id: str | None, after: str
    ) -> ApiError:
        """Stytch's error body; or, when something else answered, what it said."""
        status, body = response.status_code, _json_object(response)
        error_type, message = body.get("error_type"), body.get("error_message")
        if isinstance(error_type, str) and isinstance(message, str):
            retry_after = _retry_after(response)
            if retry_after is not None and retry_after > self._backoff.max_retry_after:
                after = f" (asked to retry after {retry_after:g} s: too long to wait)"
            request_id = body.get("request_id")
            return self._api_error(status, error_type, message + after, request_id, organization_id)
        text = f"HTTP {status} {response.reason_phrase}, not a Stytch answer"
        if response.headers.get("location"):
            text += f" (redirected to {response.headers['location']})"
        snippet = " ".join(response.text[:200].split())
        text += (f": {snippet!r}" if snippet else "") + after
        return self._api_error(status, "unexpected_response", text, None, organization_id)

    def _api_error(
        self,
        status: int,
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
            HINTS.get(error_type, "server error: try again later" if status >= 500 else ""),
            PROVIDER,
        )


def _outcome_unknown(outcome: Outcome) -> bool:
    """Whether the server may have carried out a request that failed so: not when the
    connection was never made, nor when it answered 429 (it turned the request away)."""
    if isinstance(outcome, httpx.Response):
        return outcome.status_code >= 500
    return not isinstance(outcome, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)


def _json_bytes(body: dict[str, Any]) -> bytes:
    """A request body as httpx encodes `json=`: compact UTF-8 (bodies hold no floats).
    pydantic's encoder is 2x faster than json's; what UTF-8 cannot carry (a lone
    surrogate) goes to json's, which raises the error it always did."""
    try:
        return pydantic_core.to_json(body)
    except pydantic_core.PydanticSerializationError:
        return json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


def _segment(value: str) -> str:
    """A path segment: percent-encoded with nothing kept safe (`/` is `%2F`). A segment
    of dots is encoded too, or URL normalization would resolve it (`..` is the parent)."""
    if not value:
        raise UsageError("an organization id, slug or external id cannot be empty")
    encoded = quote(value, safe="")
    return encoded.replace(".", "%2E") if encoded in (".", "..") else encoded


def _retry_after(response: httpx.Response) -> float | None:
    """Retry-After in seconds; None when absent or an HTTP date (the backoff applies)."""
    try:
        seconds = float(response.headers.get("retry-after", ""))
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


def _json_object(response: httpx.Response) -> dict[str, Any]:
    """The body as a JSON object; {} for anything else."""
    try:
        body = response.json()
    except (ValueError, RecursionError):  # not JSON, not UTF-8, or nested too deep
        return {}
    return body if isinstance(body, dict) else {}


def _redactor(project_id: str, secret: str) -> Callable[[str], str]:
    """A function removing the secret from a text, raw or as it travels (Basic auth's
    base64, percent-encoding), for texts made elsewhere: server answers, httpx errors."""
    token = base64.b64encode(f"{project_id}:{secret}".encode()).decode()
    # Longest first: a shorter form may be part of a longer one.
    forms = sorted({secret, token, quote(secret, safe=""), quote(token, safe="")}, key=len)[::-1]

    def redact(text: str) -> str:
        for form in forms:
            text = text.replace(form, "***")
        return text

    return redact
