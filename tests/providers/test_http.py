"""The client's transport over real sockets on loopback: what goes on the wire, answers read
whole but never past the cap, and the faults a retry cannot mend (a certificate not
trusted, a name that does not resolve) raised at once with what to check."""

from __future__ import annotations

import asyncio
import gzip
import re
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme
from support.clientkit import FakeClock, assert_secret_free, endpoint, without_proxy_variables

from policysync.errors import ApiError, ConfigError, ProviderError, TransportError
from policysync.models import OrgPolicy
from policysync.providers import http as client_module
from policysync.providers.http import MAX_ANSWER_BYTES
from policysync.providers.pacing import Backoff
from policysync.providers.stytch import StytchClient

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
EMPTY = b'{"org_policy":{"roles":[]}}'


@pytest.fixture(autouse=True)
def no_proxy_from_the_caller(monkeypatch: pytest.MonkeyPatch) -> None:
    without_proxy_variables(monkeypatch)


def within(seconds: float, test: Awaitable[Any]) -> Any:
    """Run `test`, failing it rather than waiting past `seconds`."""

    async def bounded() -> Any:
        return await asyncio.wait_for(test, seconds)

    return asyncio.run(bounded())


@asynccontextmanager
async def server(handler: Handler, context: ssl.SSLContext | None = None) -> AsyncIterator[str]:
    """A TCP (or TLS) server on 127.0.0.1; yields its base URL."""
    srv = await asyncio.start_server(handler, "127.0.0.1", 0, ssl=context)
    port = srv.sockets[0].getsockname()[1]
    try:
        yield f"{'https' if context else 'http'}://127.0.0.1:{port}"
    finally:
        srv.close()
        await srv.wait_closed()


async def read_request(reader: asyncio.StreamReader) -> tuple[bytes, dict[bytes, bytes], bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    line, *fields = head[:-4].split(b"\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (f.partition(b":") for f in fields)}
    body = await reader.readexactly(int(headers.get(b"content-length", b"0")))
    return line, headers, body


def answer(body: bytes, *extra: bytes) -> bytes:
    fields = b"".join(field + b"\r\n" for field in extra)
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%b\r\n%b" % (len(body), fields, body)


def replying(raw: bytes) -> Handler:
    """A handler that reads one request, writes `raw` and closes the connection."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(raw)
        await writer.drain()
        writer.close()

    return handler


async def get_acme(url: str, clock: FakeClock, **options: Any) -> OrgPolicy:
    async with StytchClient(endpoint(url), sleep=clock.sleep, clock=clock, **options) as client:
        return await client.read_org("acme")


# On the wire ---------------------------------------------------------------------------


def test_requests_on_the_wire_and_one_kept_alive_connection_per_slot() -> None:
    seen: list[tuple[bytes, dict[bytes, bytes], bytes]] = []
    connections = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        while not reader.at_eof():
            try:
                seen.append(await read_request(reader))
            except asyncio.IncompleteReadError:
                break
            writer.write(answer(EMPTY))
            await writer.drain()
        writer.close()

    async def go() -> None:
        async with (
            server(handler) as url,
            StytchClient(endpoint(url + "/base/"), parallelism=1) as client,
        ):
            await client.write_org("a/b", OrgPolicy(roles=()))
            await client.read_org("acme")

    within(10, go())
    assert connections == 1  # the second request reused the connection
    (put_line, put_headers, put_body), (get_line, get_headers, get_body) = seen
    assert put_line == b"PUT /base/v1/b2b/rbac/organizations/a%2Fb HTTP/1.1"
    assert put_headers[b"content-type"] == b"application/json"
    assert put_headers[b"authorization"].startswith(b"Basic ")
    assert put_headers[b"user-agent"].startswith(b"policysync/")
    assert b"accept-encoding" not in put_headers  # answers come as they are, not compressed
    assert (put_headers[b"content-length"], put_body) == (b"%d" % len(EMPTY), EMPTY)
    assert get_line == b"GET /base/v1/b2b/rbac/organizations/acme HTTP/1.1"
    assert b"content-length" not in get_headers
    assert get_body == b""


def test_a_base_url_that_would_break_the_request_line_is_refused_at_once() -> None:
    for url in ("http://127.0.0.1/a\r\nX-Injected: 1", "http://127.0.0.1/\x00"):
        with pytest.raises(ConfigError, match="STYTCH_BASE_URL holds a control"):
            StytchClient(endpoint(url))


def test_chunked_and_close_delimited_bodies_are_read_whole() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for piece in (EMPTY[:5], EMPTY[5:]):
            writer.write(b"%x\r\n%b\r\n" % (len(piece), piece))
            await writer.drain()
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        await read_request(reader)  # the connection was kept for the next request
        writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + EMPTY)  # ends at EOF
        await writer.drain()
        writer.close()

    async def go() -> list[OrgPolicy]:
        async with server(handler) as url, StytchClient(endpoint(url), parallelism=1) as client:
            return [await client.read_org("acme") for _ in range(2)]

    assert within(10, go()) == [OrgPolicy(roles=())] * 2


def test_an_answer_cut_short_is_retried_then_a_transport_error() -> None:
    clock = FakeClock()
    cut = replying(b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"partial')

    async def go() -> None:
        async with server(cut) as url:
            await get_acme(url, clock, backoff=Backoff(attempts=2))

    with pytest.raises(TransportError) as caught:
        within(10, go())
    assert caught.value.error_type == "connection_error"
    assert "RemoteProtocolError" in str(caught.value)
    assert len(clock.sleeps) == 1


def test_a_tls_handshake_that_never_ends_is_a_timeout() -> None:
    clock = FakeClock()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # accepts, never answers the ClientHello

    async def go() -> None:
        async with server(silent) as url:
            https = url.replace("http://", "https://")
            await get_acme(https, clock, timeout=0.2, backoff=Backoff(attempts=2))

    with pytest.raises(TransportError) as caught:
        within(10, go())
    assert caught.value.error_type == "timeout"
    assert "ConnectTimeout" in str(caught.value)


# Answers too long ----------------------------------------------------------------------


def test_a_body_past_the_cap_is_an_error_at_once_and_is_not_read_further() -> None:
    """No Content-Length, a body that never ends: reading stops just past the cap."""
    chunk = b"x" * (1024 * 1024)
    sent = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal sent
        while True:
            sent += 1
            yield chunk

    requests: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(200, content=endless())

    clock = FakeClock()

    async def go() -> None:
        transport = httpx.MockTransport(handler)
        await get_acme("http://127.0.0.1/", clock, transport=transport)

    with pytest.raises(ApiError) as caught:
        within(20, go())
    error = caught.value
    assert (error.status, error.error_type, error.organization_id) == (
        200,
        "unexpected_response",
        "acme",
    )
    assert f"its body is over {MAX_ANSWER_BYTES} bytes" in str(error)
    assert "GET /v1/b2b/rbac/organizations/acme" in str(error)
    assert len(requests) == 1
    assert clock.sleeps == []
    assert sent <= MAX_ANSWER_BYTES // len(chunk) + 1
    assert_secret_free(error)


def test_a_declared_length_past_the_cap_is_refused_before_reading(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Over a socket: the head says too much; the body is never waited for."""
    monkeypatch.setattr(client_module, "MAX_ANSWER_BYTES", 1000)
    head = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 1001\r\n\r\n"
    connections = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await read_request(reader)
        writer.write(head)  # and nothing more, for ever
        await writer.drain()
        await reader.read()

    clock = FakeClock()

    async def go() -> None:
        async with server(handler) as url:
            await get_acme(url, clock)

    with pytest.raises(ApiError) as caught:
        within(10, go())
    assert (caught.value.status, caught.value.error_type) == (503, "unexpected_response")
    assert "its body is over 1000 bytes" in str(caught.value)
    assert connections == 1
    assert clock.sleeps == []  # a 503, yet not retried: the answer is not one to read


def test_a_body_growing_past_the_cap_over_a_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(client_module, "MAX_ANSWER_BYTES", 100_000)

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        try:
            for _ in range(1000):  # 1 MB at most, in chunks of 1 kB
                writer.write(b"400\r\n" + b"x" * 1024 + b"\r\n")
                await writer.drain()
        except ConnectionError:
            pass  # the client stopped reading: as intended
        writer.close()

    clock = FakeClock()

    async def go() -> None:
        async with server(handler) as url:
            await get_acme(url, clock)

    with pytest.raises(ApiError, match="its body is over 100000 bytes"):
        within(10, go())
    assert clock.sleeps == []


def test_a_compressed_body_is_read_decoded_and_capped_decoded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """policysync asks for no encoding, yet a server (or a proxy) may send one: the body is
    decoded as it comes and counted decoded, so a small body that grows past the cap when
    decoded is refused too."""
    monkeypatch.setattr(client_module, "MAX_ANSWER_BYTES", 100_000)
    small = gzip.compress(EMPTY)
    bomb = gzip.compress(b" " * 1_000_000)  # valid JSON whitespace, a few kB compressed
    assert len(bomb) < 100_000
    answers = iter([small, bomb])

    async def one_each(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await replying(answer(next(answers), b"Content-Encoding: gzip"))(reader, writer)

    clock = FakeClock()

    async def go() -> OrgPolicy:
        async with server(one_each) as url:
            return await get_acme(url, clock)

    assert within(10, go()) == OrgPolicy(roles=())
    with pytest.raises(ApiError, match="its body is over 100000 bytes"):
        within(10, go())
    assert clock.sleeps == []


def test_a_head_past_httpcores_limit_is_an_error_at_once() -> None:
    head = b"HTTP/1.1 200 OK\r\nX-Padding: " + b"a" * 200_000 + b"\r\nContent-Length: 2\r\n\r\n{}"
    clock = FakeClock()

    async def go() -> None:
        async with server(replying(head)) as url:
            await get_acme(url, clock)

    with pytest.raises(ApiError) as caught:
        within(10, go())
    error = caught.value
    assert (error.status, error.error_type, error.organization_id) == (
        None,
        "unexpected_response",
        "acme",
    )
    assert "too long (its head)" in str(error)
    assert clock.sleeps == []


# Faults a retry cannot mend ------------------------------------------------------------


@pytest.fixture
def authority() -> trustme.CA:
    return trustme.CA()


def tls_server_context(authority: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(context)
    return context


def test_a_certificate_not_trusted_fails_at_once_naming_the_ca_bundle(
    authority: trustme.CA, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    served = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal served
        served += 1
        await read_request(reader)
        writer.write(answer(EMPTY))
        await writer.drain()
        writer.close()

    clock = FakeClock()

    async def go() -> OrgPolicy:
        async with server(handler, tls_server_context(authority)) as url:
            return await get_acme(url, clock)

    # The CA that signed it is in no bundle httpx reads: the system's, or certifi's.
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    with pytest.raises(TransportError) as caught:
        within(10, go())
    error = caught.value
    assert (error.error_type, error.organization_id) == ("certificate_error", "acme")
    assert "CERTIFICATE_VERIFY_FAILED" in str(error)
    assert "SSL_CERT_FILE" in str(error)
    assert "SSL_CERT_DIR" in str(error)
    assert "gave up after" not in str(error)
    assert clock.sleeps == []  # one attempt, no retry
    assert served == 0
    assert_secret_free(error)

    # SSL_CERT_FILE names a bundle holding that CA: the same server is trusted, and the
    # hint names the bundle in use when it is not.
    bundle = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    assert within(10, go()) == OrgPolicy(roles=())
    assert served == 1
    other = tmp_path / "other.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    monkeypatch.setenv("SSL_CERT_FILE", str(other))
    with pytest.raises(TransportError, match=re.escape(f"SSL_CERT_FILE={other}")):
        within(10, go())


def test_an_unresolvable_host_fails_at_once_naming_it() -> None:
    """`.invalid` never resolves (RFC 6761): resolvers answer at once, without the network
    when they know the name; a timeout bounds the test should one not."""
    clock = FakeClock()

    async def go() -> None:
        await get_acme("https://nonexistent.invalid/", clock, timeout=5)

    with pytest.raises(ProviderError) as caught:
        within(20, go())
    error = caught.value
    assert isinstance(error, TransportError)
    assert (error.error_type, error.organization_id) == ("name_resolution_error", "acme")
    assert "the name nonexistent.invalid does not resolve" in str(error)
    assert "STYTCH_BASE_URL" in str(error)
    assert "gave up after" not in str(error)
    assert clock.sleeps == []  # one attempt, no retry
