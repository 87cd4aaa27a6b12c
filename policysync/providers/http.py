"""HTTP as every provider speaks it: httpx, request slots, the rate limit, retries with
backoff, answers of bounded size, and texts scrubbed of the secret (by the provider's
redactor, `redaction.py`).

Every attempt of every request first takes one of `parallelism` slots, then passes the
rate limiter: the moment it leaves the limiter is the moment it starts. A slot is an
httpx transport of its own holding one keep-alive connection, so no request ever waits
for a connection nor searches a shared pool for a free one (httpcore scans its whole
pool on every request, which costs more the more connections it holds). Requests go to
the transports directly: a client's layers (redirects, auth, cookies, event hooks) do
nothing here but cost CPU on every request. The environment is read as httpx reads it:
HTTP_PROXY, HTTPS_PROXY, ALL_PROXY and NO_PROXY (through the standard library's
`getproxies` and `proxy_bypass`, as httpx does) choose the proxy of the base URL, and
SSL_CERT_FILE or SSL_CERT_DIR the CA bundle.

Answers 429 and 5xx, timeouts and connection faults are retried with backoff, for at
most `backoff.max_wait` seconds of waiting per request, in all. A certificate that
cannot be verified and a name that does not resolve are not: another attempt would meet
them again. Answers are read up to MAX_ANSWER_BYTES, and a longer one
is an error, not retried. Success is exactly 200; an answer that stays an error is
handed to the provider (`Rejected`), which reads its own error bodies.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import email.utils
import ipaddress
import json
import os
import random
import re
import socket
import ssl
import time
import urllib.request
from collections.abc import Awaitable, Callable, Iterator, Mapping
from types import TracebackType
from typing import Any, NamedTuple, Self
from urllib.parse import quote, urlencode, urlsplit

import httpx
import pydantic_core

from policysync.errors import ApiError, ConfigError, ProviderError, TransportError, UsageError
from policysync.providers.pacing import Backoff, Clock, RateLimiter, Sleep

DEFAULT_BACKOFF = Backoff()
# The longest answer read. An org policy is a few KiB; a page of 1,000 organizations with
# their roles stays well under it; what is longer is not an answer to read.
MAX_ANSWER_BYTES = 16 * 1024 * 1024

# Retry-After as delay-seconds (RFC 9110: digits; a fraction is read too).
_DELAY_SECONDS = re.compile(r"[0-9]+(?:\.[0-9]+)?")
# The setting that bounds the waits of one request (config.RequestSettings), for messages.
MAX_WAIT_SETTING = "requests.max_wait_seconds"

# Faults that may pass: a refused, reset or dropped connection, a slow answer. Not among
# them: an unsupported URL scheme or a request httpx cannot even write.
RETRYABLE_TRANSPORT = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)


class AnswerTooLarge(Exception):
    """An answer longer than policysync reads: its body past MAX_ANSWER_BYTES (`status`
    known), or its head past what httpcore buffers (`status` None: not yet parsed)."""

    def __init__(self, status: int | None) -> None:
        super().__init__(status)
        self.status = status


class Rejected(Exception):
    """The last answer to a request that was not a success, retries done: the provider
    reads the error in it. `after` says how many attempts it took, for the message;
    `outcome_unknown`, whether an attempt may have been carried out (see `send`)."""

    def __init__(self, response: httpx.Response, after: str, outcome_unknown: bool) -> None:
        super().__init__(response.status_code)
        self.response = response
        self.after = after
        self.outcome_unknown = outcome_unknown


Outcome = httpx.Response | httpx.TransportError | AnswerTooLarge
Settle = Callable[[], Awaitable[bool]]
Auth = Callable[[], Awaitable[Mapping[str, str]]]  # headers asked for before each attempt


class Site(NamedTuple):
    """Who is asked, for messages: the provider's name, and the variable that sets its
    URL (hints say what to check)."""

    provider: str
    url_variable: str


class HttpClient:
    """Requests to one API; use it as `async with HttpClient(...) as http:`. It may be
    entered again once exited, in another event loop too (apply plans in one run of the
    loop, asks, then writes in another).

    `rate_limit` is a ceiling in requests per second (None: none); `transport`, `rng`,
    `sleep` and `clock` are for tests (an in-process ASGI app, reproducible jitter, a
    fake clock).
    """

    def __init__(
        self,
        base_url: str,
        headers: Mapping[str, str],
        redact: Callable[[str], str],
        site: Site,
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
        self.base_url = base_url
        self.site = site
        self.redact = redact
        self.backoff = backoff
        # Exactly these (httpx adds Host and Content-Length): requests are built here, not
        # by the clients, whose default headers (Accept-Encoding among them) stay out.
        self._headers = httpx.Headers(dict(headers))
        self._url = base_url.rstrip("/")
        try:  # what httpx refuses (a control character) it would refuse on every request
            httpx.URL(self._url)
        except httpx.InvalidURL as exc:
            message = f"base URL {self._url!r}: {exc}; set {site.url_variable} to a URL"
            raise ConfigError(message) from None
        self._pacing = (parallelism, transport, rate_limit, clock, sleep)
        self._clients: tuple[httpx.AsyncBaseTransport, ...] = ()
        self._slots: asyncio.Queue[httpx.AsyncBaseTransport] = asyncio.Queue()
        self._extensions = {"timeout": httpx.Timeout(timeout).as_dict()}
        self._limiter: RateLimiter | None = None
        self._proxy: str | None = None
        self._rng = rng or random.Random()
        self._sleep = sleep

    async def __aenter__(self) -> Self:
        """Open the slots (their connections open when first used)."""
        parallelism, transport, rate_limit, clock, sleep = self._pacing
        self._proxy = None if transport is not None else environment_proxy(self._url)
        slots = _slots(parallelism, transport, self._proxy)
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

    async def send(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        organization_id: str | None = None,
        settle: Settle | None = None,
        *,
        form: Mapping[str, str] | None = None,
        auth: Auth | None = None,
    ) -> httpx.Response | None:
        """Send until a 200 comes or retrying is no longer worth it; the 200. `settle`,
        for a request that changes state, is called before sending it again after an
        attempt whose outcome is unknown: True means the first attempt did take effect,
        and None is returned. Rejected when an error answer stays; ApiError or
        TransportError when no answer can be read. Either says `outcome_unknown` when any
        attempt may have been carried out (`_outcome_unknown`): a write is then neither
        known to have landed nor known not to have. `form` is sent instead of a JSON
        `body`, form-encoded; `auth()`'s headers are added to the client's, asked again
        before every attempt (a bearer token that expires while a request
        waits to be retried is renewed for the next attempt). An error `auth()` raises
        ends the retries, `outcome_unknown` when an earlier attempt may have landed."""
        content = None if body is None else _json_bytes(body)
        sent = self._headers
        if form is not None:
            content = urlencode(form).encode()
            sent = httpx.Headers({**sent, "Content-Type": "application/x-www-form-urlencoded"})
        failures = throttles = 0
        unknown = False
        waited = 0.0  # seconds slept between attempts, bounded by backoff.max_wait
        while True:
            if auth is None:
                outcome = await self._attempt(method, path, content, sent)
            else:
                try:
                    credentials = await auth()
                except ProviderError as exc:
                    exc.outcome_unknown = exc.outcome_unknown or unknown
                    raise
                attempt_headers = httpx.Headers({**sent, **credentials})
                outcome = await self._attempt(method, path, content, attempt_headers)
            if isinstance(outcome, httpx.Response) and outcome.status_code == 200:
                return outcome
            unknown = unknown or _outcome_unknown(outcome)
            throttled = isinstance(outcome, httpx.Response) and outcome.status_code == 429
            if throttled:
                throttles += 1
            else:
                failures += 1
            count = throttles if throttled else failures
            delay = self._retry_delay(outcome, count, throttled, waited)
            if delay is None:
                after = self._gave_up(outcome, failures + throttles, waited)
                if isinstance(outcome, httpx.Response):
                    raise Rejected(outcome, after, unknown)
                failure = self._failure(outcome, method, path, organization_id, after)
                failure.outcome_unknown = unknown
                raise failure
            await self._sleep(delay)
            waited += delay
            if settle is not None and _outcome_unknown(outcome) and await settle():
                return None

    async def _attempt(
        self, method: str, path: str, content: bytes | None, headers: httpx.Headers
    ) -> Outcome:
        if not self._clients:
            raise RuntimeError("use the client as `async with client:`")
        slot = await self._slots.get()  # a slot first: a request queued for one has not started
        try:
            if self._limiter is not None:
                await self._limiter.acquire()
            return await self._send(slot, method, path, content, headers)
        except httpx.RemoteProtocolError as exc:
            return AnswerTooLarge(None) if _head_too_long(exc) else exc
        except (httpx.TransportError, AnswerTooLarge) as exc:
            return exc
        finally:
            self._slots.put_nowait(slot)

    async def _send(
        self,
        slot: httpx.AsyncBaseTransport,
        method: str,
        path: str,
        content: bytes | None,
        headers: httpx.Headers,
    ) -> httpx.Response:
        """One request on `slot`; its answer read whole, as long as it is not too long."""
        request = httpx.Request(
            method,
            self._url + path,
            headers=headers,
            content=content,
            extensions=self._extensions,
        )
        response = await slot.handle_async_request(request)
        try:
            if _length_known_within_cap(response):
                await response.aread()  # httpcore reads no more than the length declared
                return response
            body = await _read_body(response)
        finally:
            await response.aclose()
        # The body is decoded already: its Content-Encoding would have it decoded twice.
        kept = [(k, v) for k, v in response.headers.raw if k.lower() != b"content-encoding"]
        return httpx.Response(
            response.status_code,
            headers=kept,
            content=body,
            request=request,
            extensions=response.extensions,
        )

    def _retry_delay(
        self, outcome: Outcome, count: int, throttled: bool, waited: float
    ) -> float | None:
        if not _retryable(outcome):
            return None
        asked = retry_after(outcome) if isinstance(outcome, httpx.Response) else None
        return self.backoff.delay(count, self._rng, asked, throttled, waited)

    def _gave_up(self, outcome: Outcome, attempts: int, waited: float) -> str:
        """Why the retries of a request ended, for its message: the count of attempts
        ran out, or the time it may wait did (and the setting that gives it more)."""
        asked = retry_after(outcome) if isinstance(outcome, httpx.Response) else None
        if not _retryable(outcome) or not self.backoff.out_of_time(asked, waited):
            return f" (gave up after {attempts} attempts)" if attempts > 1 else ""
        limit = self.backoff.max_wait
        tries = f"{attempts} attempt{'s' if attempts > 1 else ''}"
        why = (
            f"asked to retry after {_seconds(asked)} s, past the {_seconds(limit)} s"
            if asked is not None and asked > limit - waited
            else f"the {_seconds(limit)} s"
        )
        return (
            f" (gave up after {tries} and {_seconds(waited)} s of waiting: {why} a request "
            f"may wait in all; raise {MAX_WAIT_SETTING} in the settings file to wait longer)"
        )

    def _failure(
        self,
        outcome: httpx.TransportError | AnswerTooLarge,
        method: str,
        path: str,
        organization_id: str | None,
        after: str,
    ) -> ApiError | TransportError:
        provider = self.site.provider
        if isinstance(outcome, AnswerTooLarge):
            part = "head" if outcome.status is None else f"body is over {MAX_ANSWER_BYTES} bytes"
            message = (
                f"the answer from {self.base_url} to {method} {path} is too long "
                f"(its {part}), so policysync did not read it"
            )
            hint = f"check {self.site.url_variable}"
            return ApiError(
                outcome.status,
                "unexpected_response",
                message,
                None,
                organization_id,
                hint,
                provider,
            )
        kind, hint = self._transport_fault(outcome)
        detail = f"{type(outcome).__name__}: {outcome}".rstrip(": ")
        through = f" through the proxy {_shown(self._proxy)}" if self._proxy else ""
        message = f"no answer from {self.base_url}{through} to {method} {path}: {detail}{after}"
        return TransportError(
            None, kind, self.redact(message), None, organization_id, hint, provider
        )

    def _transport_fault(self, fault: httpx.TransportError) -> tuple[str, str]:
        """The error type of a fault, and what to do about it."""
        variable = self.site.url_variable
        if _caused_by(fault, ssl.SSLCertVerificationError):
            return "certificate_error", (
                "the server's certificate could not be verified against the CA bundle in "
                f"use ({_ca_bundle()}); if a CA of your own signs it (a company proxy's), "
                "set SSL_CERT_FILE (a file) or SSL_CERT_DIR (a folder) to its bundle"
            )
        if _caused_by(fault, socket.gaierror):
            host = httpx.URL(self.base_url).host
            proxied = " (or the proxy's, when one is set)" if _env_proxies() else ""
            return "name_resolution_error", (
                f"the name {host}{proxied} does not resolve: check {variable} and DNS"
            )
        kind = "timeout" if isinstance(fault, httpx.TimeoutException) else "connection_error"
        proxy = ", the proxy (HTTPS_PROXY, HTTP_PROXY, NO_PROXY)" if self._proxy else ""
        return kind, f"check {variable}{proxy} and the network, or try again later"


def basic_token(user: str, password: str) -> str:
    """The token of an `Authorization: Basic` header."""
    return base64.b64encode(f"{user}:{password}".encode()).decode()


def segment(value: str) -> str:
    """A path segment: percent-encoded with nothing kept safe (`/` is `%2F`). A segment
    of dots is encoded too, or URL normalization would resolve it (`..` is the parent)."""
    if not value:
        raise UsageError("an organization id, slug or external id cannot be empty")
    encoded = quote(value, safe="")
    return encoded.replace(".", "%2E") if encoded in (".", "..") else encoded


def retry_after(response: httpx.Response) -> float | None:
    """Retry-After in seconds, as a number of seconds or an HTTP date (counted from the
    answer's Date, else from now; a date past is 0). None when absent or unreadable (a
    negative number, text): the backoff applies. A huge value is kept, for the wait
    limit to refuse."""
    value = response.headers.get("retry-after", "").strip()
    if _DELAY_SECONDS.fullmatch(value):
        return float(value)  # inf when past what a float holds
    when = _http_date(value)
    if when is None:
        return None
    now = _http_date(response.headers.get("date", "")) or datetime.datetime.now(datetime.UTC)
    return max(0.0, (when - now).total_seconds())


def json_object(response: httpx.Response) -> dict[str, Any]:
    """The body as a JSON object; {} for anything else."""
    try:
        body = response.json()
    except (ValueError, RecursionError):  # not JSON, not UTF-8, or nested too deep
        return {}
    return body if isinstance(body, dict) else {}


def check_base_url(url: str, variable: str, example: str) -> None:
    """Raise ConfigError unless credentials may be sent to `url`, which `variable` sets
    (`example`: a URL it could be)."""
    if "@" in url:  # before anything that would echo the URL: it may hold a password
        raise ConfigError(
            f"the base URL holds credentials (an '@'): remove them from {variable}; "
            "credentials go in their own variables"
        )
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises ValueError for a port that is not a number)
    except ValueError as exc:
        raise ConfigError(f"base URL {url!r}: {exc}; set {variable} to a URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"base URL {url!r} is not an http(s) URL: set {variable} to one, "
            f"e.g. {example} (or unset it for the default)"
        )
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise ConfigError(
            f"base URL {url!r}: plain http:// would send the secret unencrypted; it is "
            f"accepted only for loopback hosts (127.0.0.0/8, ::1, localhost): set {variable} "
            "to an https:// URL"
        )


def check_text(variable: str, value: str) -> None:
    """Raise ConfigError unless `value`, which `variable` sets, is text a header or a URL
    can carry: UTF-8 (the environment holds other bytes as lone surrogates), on one line,
    without control or invisible characters. The value is not shown: it may be a secret."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ConfigError(
            f"{variable} is not valid UTF-8 text: set it again, as text (its value is not "
            "shown here)"
        ) from None
    if not value.isprintable():
        raise ConfigError(
            f"{variable} holds a control or invisible character (a line break, a tab, a "
            "zero-width or direction mark): set it again without them (its value is not "
            "shown here)"
        )


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _slots(
    parallelism: int, transport: httpx.AsyncBaseTransport | None, proxy: str | None
) -> list[httpx.AsyncBaseTransport]:
    """One transport per slot, each with a pool of one connection, through `proxy` if
    any; or, for tests, `transport` for every slot."""
    if transport is not None:
        return [transport] * parallelism
    context = _tls_context()
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    try:
        return [
            httpx.AsyncHTTPTransport(verify=context, limits=limits, proxy=proxy)
            for _ in range(parallelism)
        ]
    except (ValueError, ImportError, httpx.InvalidURL) as exc:  # a proxy httpx cannot use
        raise ConfigError(
            f"the proxy {_shown(proxy)} that the environment names (HTTPS_PROXY, HTTP_PROXY "
            f"or ALL_PROXY) cannot be used: {exc}; set it to http://host:port, or name "
            "the host in NO_PROXY"
        ) from None


def _tls_context() -> ssl.SSLContext:
    """One TLS context for all slots (each would load the CA bundle again otherwise),
    from SSL_CERT_FILE or SSL_CERT_DIR when set, as httpx reads them."""
    try:
        return httpx.create_ssl_context(trust_env=True)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"the CA bundle cannot be loaded ({_ca_bundle()}): {exc}; point SSL_CERT_FILE at "
            "a file of PEM certificates or SSL_CERT_DIR at a folder of them, or unset them"
        ) from None


def _shown(proxy: str | None) -> str:
    """A proxy URL without what may be a password in it."""
    try:
        parts = urlsplit(proxy or "")
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{parts.hostname or ''}{port}"
    except ValueError:
        return "(as set)"


def environment_proxy(url: str) -> str | None:
    """The proxy the environment names for `url`: HTTP_PROXY or HTTPS_PROXY by its scheme,
    else ALL_PROXY, unless NO_PROXY covers its host (the lower-case names too)."""
    parts = httpx.URL(url)
    proxies = urllib.request.getproxies()
    proxy = proxies.get(parts.scheme) or proxies.get("all")
    everywhere = "*" in (host.strip() for host in proxies.get("no", "").split(","))
    if not proxy or everywhere or urllib.request.proxy_bypass(_host_port(parts)):
        return None
    return proxy if "://" in proxy else f"http://{proxy}"  # as httpx reads `host:port`


def _host_port(url: httpx.URL) -> str:
    return f"{url.host}:{url.port}" if url.port else url.host


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


def _http_date(value: str) -> datetime.datetime | None:
    """An HTTP date (RFC 9110: IMF-fixdate, or an obsolete form), in UTC; None if not one."""
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=datetime.UTC)


def _seconds(value: float) -> str:
    """Seconds for a message: to a tenth."""
    return f"{round(value, 1):g}"


def _retryable(outcome: Outcome) -> bool:
    """Whether another attempt may get a different answer: a 408, a 429, a 5xx, a fault
    that may pass (not one that lasts, nor an answer too long to read)."""
    if isinstance(outcome, httpx.Response):
        return outcome.status_code in (408, 429) or outcome.status_code >= 500
    return isinstance(outcome, RETRYABLE_TRANSPORT) and not _lasting(outcome)


def _outcome_unknown(outcome: Outcome) -> bool:
    """Whether the server may have carried out a request that failed so: a 5xx, an answer
    too long to read, a connection lost or a timeout once the request may have been sent.
    Not when the connection was never made (refused, a name that does not resolve, a TLS
    handshake that failed: httpx's ConnectError), nor when it answered 429 or another 4xx
    (it turned the request away)."""
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
