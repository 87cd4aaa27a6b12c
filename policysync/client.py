"""The Stytch B2B RBAC API as policysync speaks it (the wire contract: stytch-api.md).

Every attempt of every request first takes one of `parallelism` slots, then passes the
rate limiter: the moment it leaves the limiter is the moment it starts. A slot is an
httpx client of its own holding one keep-alive connection, so no request ever waits for
a connection nor searches a shared pool for a free one (httpcore scans its whole pool on
every request, which costs more the more connections it holds). Each is set up from the
environment as httpx does it: HTTP_PROXY, HTTPS_PROXY, ALL_PROXY and NO_PROXY choose a
proxy per URL, SSL_CERT_FILE or SSL_CERT_DIR the CA bundle.

Answers 429 and 5xx, timeouts and connection faults are retried with backoff; GET, PUT
and search are all safe to send twice (PUT replaces the whole org policy, so a repeat
changes nothing). A certificate that cannot be verified and a name that does not
resolve are not: another attempt would meet them again. Answers are read up to
MAX_ANSWER_BYTES, and a longer one is an error, not retried. Success is exactly 200.
Whatever failed is raised as a ProviderError naming the organization, with the secret
scrubbed from every text that came from elsewhere.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import http.client
import http.cookiejar
import json
import os
import random
import socket
import ssl
import time
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from types import TracebackType
from typing import Annotated, Any, TypeVar, cast
from urllib.parse import quote

import httpx
import pydantic_core
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from policysync import __version__
from policysync.canonical import same_policy
from policysync.endpoint import Endpoint
from policysync.errors import ApiError, ConfigError, ProviderError, TransportError, UsageError
from policysync.models import Organization, OrgPolicy, ProjectPolicy
from policysync.pacing import Backoff, Clock, RateLimiter, Sleep

PROVIDER = "Stytch"  # who answered, in messages
USER_AGENT = f"policysync/{__version__}"
POLICY_PATH = "/v1/b2b/rbac/policy"
ORG_POLICY_PATH = "/v1/b2b/rbac/organizations/"
SEARCH_PATH = "/v1/b2b/organizations/search"
DEFAULT_BACKOFF = Backoff()
# The longest body read. An org policy is a few KiB; a search page of 1,000 organizations
# with their roles stays well under it; what is longer is not an answer to read.
MAX_ANSWER_BYTES = 16 * 1024 * 1024

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


class AnswerTooLarge(Exception):
    """An answer longer than policysync reads: its body past MAX_ANSWER_BYTES (`status`
    known), or its head past what httpcore buffers (`status` None: not yet parsed)."""

    def __init__(self, status: int | None) -> None:
        super().__init__(status)
        self.status = status


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


AnswerT = TypeVar("AnswerT", bound=_Answer)
Outcome = httpx.Response | httpx.TransportError | AnswerTooLarge


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
        # Exactly these (httpx adds Host and Content-Length): requests are built here, not
        # by the clients, whose default headers (Accept-Encoding among them) stay out.
        self._headers = httpx.Headers(
            {
                "Authorization": f"Basic {token}",
                "User-Agent": USER_AGENT,
                "Content-Type": "application/json",
            }
        )
        self._url = endpoint.base_url.rstrip("/")
        try:  # what httpx refuses (a control character) it would refuse on every request
            httpx.URL(self._url)
        except httpx.InvalidURL as exc:
            message = f"base URL {self._url!r}: {exc}; set STYTCH_BASE_URL to a URL"
            raise ConfigError(message) from None
        self._pacing = (parallelism, timeout, transport, rate_limit, clock, sleep)
        self._clients: tuple[httpx.AsyncClient, ...] = ()
        self._slots: asyncio.Queue[httpx.AsyncClient] = asyncio.Queue()
        self._limiter: RateLimiter | None = None
        self._base_url = endpoint.base_url
        self._redact = _redactor(endpoint.project_id, secret)
        self._backoff = backoff
        self._rng = rng or random.Random()
        self._sleep = sleep

    async def __aenter__(self) -> StytchClient:
        """Open the slots (their connections open when first used). A client may be
        entered again once exited, in another event loop too (apply plans in one run of
        the loop, asks, then writes in another)."""
        parallelism, timeout, transport, rate_limit, clock, sleep = self._pacing
        slots = _slots(parallelism, timeout, transport)
        self._clients = tuple(dict.fromkeys(slots))  # each one once, to close
        self._slots = asyncio.Queue()
        for slot in slots:
            self._slots.put_nowait(slot)
        if rate_limit is not None:
            self._limiter = RateLimiter.per_second(rate_limit, clock, sleep)
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        clients, self._clients = self._clients, ()
        for client in clients:
            await client.aclose()

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
        if not self._clients:
            raise RuntimeError("use the client as `async with StytchClient(...) as client:`")
        slot = await self._slots.get()  # a slot first: a request queued for one has not started
        try:
            if self._limiter is not None:
                await self._limiter.acquire()
            return await self._send(slot, method, path, content)
        except httpx.RemoteProtocolError as exc:
            return AnswerTooLarge(None) if _head_too_long(exc) else exc
        except (httpx.TransportError, AnswerTooLarge) as exc:
            return exc
        finally:
            self._slots.put_nowait(slot)

    async def _send(
        self, slot: httpx.AsyncClient, method: str, path: str, content: bytes | None
    ) -> httpx.Response:
        """One request on `slot`; its answer read whole, as long as it is not too long."""
        request = httpx.Request(method, self._url + path, headers=self._headers, content=content)
        response = await slot.send(request, stream=True)
        try:
            if _length_known_within_cap(response):
                await response.aread()  # httpcore reads no more than the length declared
                return response
            body = await _read_body(response)
        finally:
            await response.aclose()
        # The body is decoded already: its Content-Encoding would have it decoded twice.
        headers = [(k, v) for k, v in response.headers.raw if k.lower() != b"content-encoding"]
        return httpx.Response(
            response.status_code,
            headers=headers,
            content=body,
            request=request,
            extensions=response.extensions,
        )

    def _retry_delay(self, outcome: Outcome, count: int, throttled: bool) -> float | None:
        if isinstance(outcome, httpx.Response):
            if outcome.status_code != 429 and outcome.status_code < 500:
                return None
            return self._backoff.delay(count, self._rng, _retry_after(outcome), throttled)
        if isinstance(outcome, RETRYABLE_TRANSPORT) and not _lasting(outcome):
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
        if isinstance(outcome, AnswerTooLarge):
            part = "head" if outcome.status is None else f"body is over {MAX_ANSWER_BYTES} bytes"
            message = (
                f"the answer from {self._base_url} to {method} {path} is too long "
                f"(its {part}), so policysync did not read it"
            )
            return self._api_error(
                outcome.status, "unexpected_response", message, None, organization_id
            )
        kind, hint = self._transport_fault(outcome)
        detail = f"{type(outcome).__name__}: {outcome}".rstrip(": ")
        message = f"no answer from {self._base_url} to {method} {path}: {detail}{after}"
        return TransportError(
            None, kind, self._redact(message), None, organization_id, hint, PROVIDER
        )

    def _transport_fault(self, fault: httpx.TransportError) -> tuple[str, str]:
        """The error type of a fault, and what to do about it."""
        if _caused_by(fault, ssl.SSLCertVerificationError):
            return "certificate_error", (
                "the server's certificate could not be verified against the CA bundle in "
                f"use ({_ca_bundle()}); if a CA of your own signs it (a company proxy's), "
                "set SSL_CERT_FILE (a file) or SSL_CERT_DIR (a folder) to its bundle"
            )
        if _caused_by(fault, socket.gaierror):
            host = httpx.URL(self._base_url).host
            proxied = " (or the proxy's, when one is set)" if _env_proxies() else ""
            return "name_resolution_error", (
                f"the name {host}{proxied} does not resolve: check STYTCH_BASE_URL and DNS"
            )
        kind = "timeout" if isinstance(fault, httpx.TimeoutException) else "connection_error"
        return kind, HINTS[kind]

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
            HINTS.get(error_type, "server error: try again later" if (status or 0) >= 500 else ""),
            PROVIDER,
        )


def _slots(
    parallelism: int, timeout: float, transport: httpx.AsyncBaseTransport | None
) -> list[httpx.AsyncClient]:
    """One client per slot, each with a pool of one connection (and one per proxy it may
    use); or, for tests, one client over `transport` for every slot."""
    if transport is not None:
        return [httpx.AsyncClient(transport=transport, timeout=timeout)] * parallelism
    # One TLS context for all: each client would load the CA bundle again otherwise.
    # httpx reads SSL_CERT_FILE and SSL_CERT_DIR here, and proxies per client.
    context = httpx.create_ssl_context(trust_env=True)
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    return [
        httpx.AsyncClient(
            verify=context,
            limits=limits,
            timeout=timeout,
            trust_env=True,
            cookies=_NoCookies(),
        )
        for _ in range(parallelism)
    ]


class _NoCookies(http.cookiejar.CookieJar):
    """A jar that keeps nothing: the API sets no cookie policysync needs, and requests are
    built without the clients' cookies anyway; httpx would parse every answer for them."""

    def extract_cookies(
        self, response: http.client.HTTPResponse, request: urllib.request.Request
    ) -> None:
        pass


def _length_known_within_cap(response: httpx.Response) -> bool:
    """Whether the body is as long as its Content-Length says, at most MAX_ANSWER_BYTES:
    not encoded (a compressed body grows decoded), and its length declared and in range.
    AnswerTooLarge when the length declared is past the cap."""
    declared = response.headers.get("content-length", "")
    if not declared.isdigit() or "content-encoding" in response.headers:
        return False
    if int(declared) > MAX_ANSWER_BYTES:
        raise AnswerTooLarge(response.status_code)
    return True


async def _read_body(response: httpx.Response) -> bytes:
    """The body, decoded; AnswerTooLarge past MAX_ANSWER_BYTES, counted as it comes."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > MAX_ANSWER_BYTES:
            raise AnswerTooLarge(response.status_code)
        chunks.append(chunk)
    return b"".join(chunks)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """`exc` and what led to it: httpx raises its errors from httpcore's, raised in turn
    from the socket's or the TLS layer's."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        yield current
        seen.add(id(current))
        current = current.__cause__ or current.__context__


def _caused_by(fault: BaseException, kind: type[BaseException]) -> bool:
    return any(isinstance(e, kind) for e in _chain(fault))


def _lasting(fault: httpx.TransportError) -> bool:
    """A fault that another attempt would meet again: a certificate that cannot be
    verified, a name that does not resolve."""
    return _caused_by(fault, ssl.SSLCertVerificationError) or _caused_by(fault, socket.gaierror)


def _head_too_long(fault: httpx.RemoteProtocolError) -> bool:
    """Whether the server's head was longer than httpcore buffers: h11, under httpcore,
    says so with the status a server would answer to such a head (431)."""
    return any(getattr(e, "error_status_hint", None) == 431 for e in _chain(fault))


def _ca_bundle() -> str:
    """Where httpx's TLS context takes its CAs from, in create_ssl_context's order."""
    for name in ("SSL_CERT_FILE", "SSL_CERT_DIR"):
        if os.environ.get(name):
            return f"{name}={os.environ[name]}"
    return "certifi's, httpx's default: SSL_CERT_FILE and SSL_CERT_DIR are not set"


def _env_proxies() -> bool:
    """Whether the environment names a proxy, read as httpx reads it (urllib's getproxies)."""
    proxies = urllib.request.getproxies()
    return any(proxies.get(scheme) for scheme in ("http", "https", "all"))


def _outcome_unknown(outcome: Outcome) -> bool:
    """Whether the server may have carried out a request that failed so: not when the
    connection was never made, nor when it answered 429 (it turned the request away)."""
    if isinstance(outcome, httpx.Response):
        return outcome.status_code >= 500
    return not isinstance(outcome, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)


def _json_bytes(body: dict[str, Any]) -> bytes:
    """A request body as httpx encodes `json=`: compact UTF-8 (bodies hold no floats).
    pydantic's encoder, the faster one; what UTF-8 cannot carry (a lone surrogate) goes
    to json's, which raises the error it always did."""
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
