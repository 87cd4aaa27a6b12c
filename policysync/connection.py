"""Connections to the API, each carrying one request at a time, its answer read whole.

The client keeps one `Connection` per parallelism slot: one keep-alive HTTP/1.1
connection, so there is no pool to search for a free one. A connection is an asyncio
protocol whose answers are read by httptools (the C parser of llhttp, uvicorn's, which
the emulator already uses): a GET costs ~0.15 ms of CPU this way, against ~0.5 ms
through httpcore, the transport layer of httpx, which a plan or an apply spends on its
state machine (h11), its locks (anyio) and its request and answer objects, once more
each. At the parallelism policysync runs with, a plan and an apply are CPU-bound, so
that CPU was their time. Answers and errors come back as httpx's types all the same, so
the client handles one kind of each.

Tests plug in any httpx transport instead (`TransportLane`: `httpx.MockTransport`, or
the emulator's ASGI app through `httpx.ASGITransport`).
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Protocol, cast

import httptools
import httpx

KEEPALIVE_EXPIRY = 5.0  # seconds an idle connection is kept (httpx's default)


class Lane(Protocol):
    """Where one request at a time goes; it connects when first used."""

    async def send(self, method: str, path: str, content: bytes | None) -> httpx.Response:
        """`method` on the base URL + `path`; raises httpx.TransportError on a fault."""
        ...

    async def aclose(self) -> None:
        """Close what is open."""
        ...


class Connection:
    """One keep-alive HTTP/1.1 connection to `base_url`, (re)opened when needed."""

    def __init__(
        self,
        base_url: str,
        headers: dict[str, str],
        timeout: float,
        ssl_context: ssl.SSLContext | None,
    ) -> None:
        url = httpx.URL(base_url)
        https = url.scheme == "https"
        self._host = url.host
        self._port = url.port or (443 if https else 80)
        self._ssl = (ssl_context or ssl.create_default_context()) if https else None
        self._prefix = url.raw_path.rstrip(b"/")
        fields = [(b"Host", url.netloc)] + [
            (name.encode("ascii"), value.encode("latin-1")) for name, value in headers.items()
        ]
        self._head = b"".join(b"%b: %b\r\n" % field for field in fields)
        self._timeout = timeout
        self._link: _Link | None = None

    async def send(self, method: str, path: str, content: bytes | None) -> httpx.Response:
        target = self._prefix + path.encode("ascii")
        if any(c in target for c in b" \r\n"):
            raise httpx.LocalProtocolError(f"not a request target: {target!r}")
        request = b"%b %b HTTP/1.1\r\n%b" % (method.encode("ascii"), target, self._head)
        if content is None:
            request += b"\r\n"
        else:
            request += b"Content-Length: %d\r\n\r\n%b" % (len(content), content)
        link = await self._open()
        return await link.exchange(request, self._timeout)

    async def _open(self) -> _Link:
        """The connection, a new one if the last was closed or idle too long."""
        loop = asyncio.get_running_loop()
        link = self._link
        if link is not None:
            if link.usable(loop.time()):
                return link
            link.close()
        self._link = None
        opening = loop.create_connection(
            _Link,
            self._host,
            self._port,
            ssl=self._ssl,
            server_hostname=self._host if self._ssl else None,
        )
        try:
            async with asyncio.timeout(self._timeout):
                _, protocol = await opening
        except TimeoutError:
            raise httpx.ConnectTimeout(f"no connection within {self._timeout:g} s") from None
        except OSError as exc:  # refused, unreachable, a certificate not trusted (SSLError)
            raise httpx.ConnectError(str(exc)) from exc
        self._link = link = protocol
        return link

    async def aclose(self) -> None:
        if self._link is not None:
            self._link.close()
            self._link = None


class _Link(asyncio.Protocol):
    """One open connection: writes a request, reads its answer with httptools."""

    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._answer: asyncio.Future[httpx.Response] | None = None
        self._headers: list[tuple[bytes, bytes]] = []
        self._body: list[bytes] = []
        self._headers_done = False
        self._keep_alive = False
        self._closed = False
        self._idle_since = 0.0

    def usable(self, now: float) -> bool:
        return not self._closed and now - self._idle_since < KEEPALIVE_EXPIRY

    def close(self) -> None:
        self._closed = True
        if self._transport is not None:
            self._transport.close()

    async def exchange(self, request: bytes, timeout: float) -> httpx.Response:
        assert self._transport is not None  # connected: made by create_connection
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[httpx.Response] = loop.create_future()
        self._answer = answer
        self._headers, self._body, self._headers_done = [], [], False
        late = httpx.ReadTimeout(f"no answer within {timeout:g} s")
        timer = loop.call_later(timeout, self._fail, late)
        self._transport.write(request)
        try:
            response = await answer
        except BaseException:  # a fault, a timeout, a cancellation: the state is unknown
            self.close()
            raise
        finally:
            timer.cancel()
            self._answer = None
        if self._keep_alive:
            self._idle_since = loop.time()
        else:
            self.close()
        return response

    def _fail(self, error: Exception) -> None:
        if self._answer is not None and not self._answer.done():
            self._answer.set_exception(error)

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self._answer is None:  # bytes no request asked for
            self.close()
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(httpx.RemoteProtocolError(f"the server's answer is not HTTP/1.1: {exc}"))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        if self._headers_done and exc is None and not self._length_known():
            self.on_message_complete()  # an answer whose body ends with the connection
        else:
            reason = f": {exc}" if exc else ""
            self._fail(
                httpx.RemoteProtocolError(
                    f"the server closed the connection without a complete answer{reason}"
                )
            )

    def _length_known(self) -> bool:
        return any(
            name.lower() in (b"content-length", b"transfer-encoding") for name, _ in self._headers
        )

    # httptools' callbacks

    def on_message_begin(self) -> None:
        if self._answer is None or self._answer.done():  # an answer no request asked for
            self.close()

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        self._headers_done = True

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        self._headers_done = False
        self._keep_alive = self._parser.should_keep_alive() and not self._closed
        answer = self._answer
        if answer is not None and not answer.done():
            status = self._parser.get_status_code()
            body = b"".join(self._body)
            answer.set_result(httpx.Response(status, headers=self._headers, content=body))


class TransportLane:
    """Requests through an httpx transport (tests: a mock, or an ASGI app)."""

    def __init__(
        self,
        transport: httpx.AsyncBaseTransport,
        base_url: str,
        headers: dict[str, str],
        timeout: float,
    ) -> None:
        self._transport = transport
        self._url = base_url.rstrip("/")
        self._headers = headers
        self._extensions = {"timeout": httpx.Timeout(timeout).as_dict()}

    async def send(self, method: str, path: str, content: bytes | None) -> httpx.Response:
        request = httpx.Request(
            method,
            self._url + path,
            headers=self._headers,
            content=content,
            extensions=self._extensions,
        )
        response = await self._transport.handle_async_request(request)
        try:
            await response.aread()
        finally:
            await response.aclose()
        return response

    async def aclose(self) -> None:
        await self._transport.aclose()
