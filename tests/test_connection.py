"""connection.Connection over real sockets on loopback: what goes on the wire, what comes
back, and every fault raised as the httpx error the client retries on."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import aclosing, asynccontextmanager

import httpx
import pytest
import trustme

from policysync.connection import Connection

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def run(test: Callable[[], Coroutine[None, None, None]]) -> Callable[[], None]:
    """An async test, run to completion within 10 s."""

    @functools.wraps(test)
    def wrapper() -> None:
        asyncio.run(asyncio.wait_for(test(), 10))

    return wrapper


HEADERS = {"Authorization": "Basic dGVzdA==", "User-Agent": "policysync/test"}


@asynccontextmanager
async def server(handler: Handler) -> AsyncIterator[str]:
    """A TCP server on 127.0.0.1; yields its base URL."""
    srv = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.close()
        await srv.wait_closed()


async def read_request(reader: asyncio.StreamReader) -> tuple[bytes, dict[bytes, bytes], bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    line, *fields = head[:-4].split(b"\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (f.partition(b":") for f in fields)}
    body = await reader.readexactly(int(headers.get(b"content-length", b"0")))
    return line, headers, body


def replying(raw: bytes) -> Handler:
    """A handler that reads one request, writes `raw` and closes the connection."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(raw)
        await writer.drain()
        writer.close()

    return handler


def answer(status: bytes, body: bytes, *extra: bytes) -> bytes:
    fields = b"".join(field + b"\r\n" for field in extra)
    return b"HTTP/1.1 %b\r\nContent-Length: %d\r\n%b\r\n%b" % (status, len(body), fields, body)


@run
async def test_request_on_the_wire_and_keep_alive() -> None:
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
            writer.write(answer(b"201 Created", b'{"ok":true}', b"Retry-After: 3"))
            await writer.drain()
        writer.close()

    async with (
        server(handler) as url,
        aclosing(Connection(url + "/base/", HEADERS, 5.0, None)) as conn,
    ):
        first = await conn.send("PUT", "/v1/x%2Fy", b'{"a":1}')
        second = await conn.send("GET", "/v1/z", None)
    assert (first.status_code, first.json()) == (201, {"ok": True})
    assert first.headers["retry-after"] == "3"
    assert second.status_code == 201
    assert connections == 1  # the second request reused the connection
    (put_line, put_headers, put_body), (get_line, get_headers, get_body) = seen
    assert put_line == b"PUT /base/v1/x%2Fy HTTP/1.1"
    assert put_headers[b"host"] == url.removeprefix("http://").encode()
    assert put_headers[b"authorization"] == b"Basic dGVzdA=="
    assert put_headers[b"user-agent"] == b"policysync/test"
    assert (put_headers[b"content-length"], put_body) == (b"7", b'{"a":1}')
    assert get_line == b"GET /base/v1/z HTTP/1.1"
    assert b"content-length" not in get_headers
    assert get_body == b""


@run
async def test_reconnects_after_the_server_closed_an_idle_connection() -> None:
    handler = replying(answer(b"200 OK", b"{}", b"Connection: close"))
    async with server(handler) as url, aclosing(Connection(url, HEADERS, 5.0, None)) as conn:
        statuses = [(await conn.send("GET", "/", None)).status_code for _ in range(3)]
    assert statuses == [200, 200, 200]


@run
async def test_refused_connection_is_httpx_connect_error() -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with aclosing(Connection(f"http://127.0.0.1:{port}", HEADERS, 5.0, None)) as conn:
        with pytest.raises(httpx.ConnectError):
            await conn.send("GET", "/", None)


@run
async def test_dropped_connection_is_httpx_remote_protocol_error() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.close()  # no answer at all

    async with server(handler) as url, aclosing(Connection(url, HEADERS, 5.0, None)) as conn:
        with pytest.raises(httpx.RemoteProtocolError):
            await conn.send("PUT", "/", b"{}")


@run
async def test_slow_answer_is_httpx_read_timeout() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await asyncio.sleep(2)
        writer.close()

    async with server(handler) as url, aclosing(Connection(url, HEADERS, 0.2, None)) as conn:
        with pytest.raises(httpx.ReadTimeout):
            await conn.send("GET", "/", None)


@run
async def test_garbage_answer_is_httpx_remote_protocol_error() -> None:
    garbage = replying(b"SSH-2.0-OpenSSH\r\n\r\n")
    async with server(garbage) as url, aclosing(Connection(url, HEADERS, 5.0, None)) as conn:
        with pytest.raises(httpx.RemoteProtocolError):
            await conn.send("GET", "/", None)


@run
async def test_https_with_a_verified_certificate() -> None:
    authority = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(server_context)
    client_context = ssl.create_default_context()
    authority.configure_trust(client_context)

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(answer(b"200 OK", b'{"tls":true}'))
        await writer.drain()
        writer.close()

    srv = await asyncio.start_server(handler, "127.0.0.1", 0, ssl=server_context)
    url = f"https://127.0.0.1:{srv.sockets[0].getsockname()[1]}"
    try:
        async with aclosing(Connection(url, HEADERS, 5.0, client_context)) as conn:
            assert (await conn.send("GET", "/", None)).json() == {"tls": True}
        # A certificate the client does not trust: no request goes out.
        async with aclosing(Connection(url, HEADERS, 5.0, ssl.create_default_context())) as conn:
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                await conn.send("GET", "/", None)
    finally:
        srv.close()
        await srv.wait_closed()


@run
async def test_chunked_and_close_delimited_bodies_are_read_whole() -> None:
    async def chunked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for piece in (b'{"a"', b":1}"):
            writer.write(b"%x\r\n%b\r\n" % (len(piece), piece))
            await writer.drain()
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        await read_request(reader)  # the connection was kept for the next request
        writer.write(b'HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n{"b":2}')  # ends at EOF
        await writer.drain()
        writer.close()

    async with server(chunked) as url, aclosing(Connection(url, HEADERS, 5.0, None)) as conn:
        assert (await conn.send("GET", "/", None)).json() == {"a": 1}
        assert (await conn.send("GET", "/", None)).json() == {"b": 2}


@run
async def test_an_answer_cut_short_is_httpx_remote_protocol_error() -> None:
    cut = replying(b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"partial')
    async with server(cut) as url, aclosing(Connection(url, HEADERS, 5.0, None)) as conn:
        with pytest.raises(httpx.RemoteProtocolError, match="without a complete answer"):
            await conn.send("GET", "/", None)


@run
async def test_a_connection_idle_too_long_or_interrupted_is_not_reused() -> None:
    connections = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        try:
            while True:
                _, _, body = await read_request(reader)
                if body == b"slow":
                    await asyncio.sleep(5)
                writer.write(answer(b"200 OK", b"{}"))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    async with server(handler) as url, aclosing(Connection(url, HEADERS, 5.0, None)) as conn:
        await conn.send("GET", "/", None)
        await conn.send("GET", "/", None)
        assert connections == 1
        # A request cancelled while waiting: its answer could still come, so the
        # connection is closed and the next request opens another.
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.2):
                await conn.send("PUT", "/", b"slow")
        await conn.send("GET", "/", None)
        assert connections == 2
        # Idle past the keep-alive expiry: a new connection (the server may have closed it).
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr("policysync.connection.KEEPALIVE_EXPIRY", 0.05)
            await asyncio.sleep(0.1)
            await conn.send("GET", "/", None)
        assert connections == 3


@run
async def test_bytes_no_request_asked_for_close_the_connection() -> None:
    connections = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await read_request(reader)
        writer.write(answer(b"200 OK", b"{}") + answer(b"200 OK", b'{"stray":1}'))
        await writer.drain()
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            await read_request(reader)
        writer.close()

    async with server(handler) as url, aclosing(Connection(url, HEADERS, 5.0, None)) as conn:
        assert (await conn.send("GET", "/", None)).json() == {}
        await asyncio.sleep(0.05)  # the stray answer arrives while nothing is asked
        assert (await conn.send("GET", "/", None)).json() == {}  # not the stray one
    assert connections == 2


@run
async def test_a_request_target_that_would_break_the_request_line_is_refused() -> None:
    sent = False

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal sent
        sent = True
        writer.close()

    async with server(handler) as url, aclosing(Connection(url, HEADERS, 5.0, None)) as conn:
        for target in ("/a b", "/a\r\nX-Injected: 1", "/a\n"):
            with pytest.raises(httpx.LocalProtocolError):
                await conn.send("GET", target, None)
    assert not sent


@run
async def test_a_tls_handshake_that_never_ends_is_httpx_connect_timeout() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # accepts, never answers the ClientHello

    async with server(handler) as url:
        https = url.replace("http://", "https://")
        context = ssl.create_default_context()
        async with aclosing(Connection(https, HEADERS, 0.2, context)) as conn:
            with pytest.raises(httpx.ConnectTimeout):
                await conn.send("GET", "/", None)
