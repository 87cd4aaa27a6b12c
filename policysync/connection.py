"""Connections to the API, each carrying one request at a time, its answer read whole.

The client keeps one `Connection` per parallelism slot: one keep-alive connection, so
there is no pool to search for a free one. It drives httpcore (the transport layer of
httpx) directly, one `httpcore.AsyncHTTPConnection` at a time, a new one when the last
was closed: building an `httpx.Request` parses its URL and headers again for every
request, and the httpx transport wraps every request, answer and stream once more; for
a plan, that was a fifth of the CPU of each request (anyio, httpcore's default way to
asyncio, another fifth: see aionet.py; httpcore's connection pool, which one connection
does not need, 15% of what was left). Answers and errors come back as httpx's types all
the same, so the client handles one kind of each.

Tests plug in any httpx transport instead (`TransportLane`: `httpx.MockTransport`, or
the emulator's ASGI app through `httpx.ASGITransport`).
"""

from __future__ import annotations

import ssl
from typing import Protocol

import httpcore
import httpx

from policysync.aionet import AsyncioBackend

# httpcore's errors as httpx names them (httpx's own map is private).
_ERRORS: tuple[tuple[type[Exception], type[httpx.TransportError]], ...] = (
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.ProxyError, httpx.ProxyError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ProtocolError, httpx.ProtocolError),
)


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
        self._scheme, self._host, self._port = url.raw_scheme, url.raw_host, url.port
        self._prefix = url.raw_path.rstrip(b"/")
        self._headers = [(b"Host", url.netloc)] + [
            (name.encode("ascii"), value.encode("latin-1")) for name, value in headers.items()
        ]
        self._extensions = {"timeout": dict.fromkeys(("connect", "read", "write", "pool"), timeout)}
        port = self._port or (443 if self._scheme == b"https" else 80)
        self._origin = httpcore.Origin(self._scheme, self._host, port)
        self._ssl_context = ssl_context
        self._backend = AsyncioBackend()
        self._connection: httpcore.AsyncHTTPConnection | None = None

    def _open(self) -> httpcore.AsyncHTTPConnection:
        """The connection, a new one if the last was closed or idle too long (httpcore's
        pool does this too, and much more that one connection per slot does not need)."""
        connection = self._connection
        if connection is None or connection.is_closed() or connection.has_expired():
            connection = self._connection = httpcore.AsyncHTTPConnection(
                self._origin,
                ssl_context=self._ssl_context,
                keepalive_expiry=KEEPALIVE_EXPIRY,
                network_backend=self._backend,
            )
        return connection

    async def send(self, method: str, path: str, content: bytes | None) -> httpx.Response:
        headers = self._headers
        if content is not None:
            headers = [*headers, (b"Content-Length", b"%d" % len(content))]
        target = self._prefix + path.encode("ascii")
        url = httpcore.URL(scheme=self._scheme, host=self._host, port=self._port, target=target)
        request = httpcore.Request(
            method, url, headers=headers, content=content, extensions=self._extensions
        )
        try:
            response = await self._open().handle_async_request(request)
            try:
                body = await response.aread()
            finally:
                await response.aclose()
        except Exception as exc:
            for theirs, ours in _ERRORS:
                if isinstance(exc, theirs):
                    raise ours(str(exc)) from exc
            raise
        return httpx.Response(response.status, headers=response.headers, content=body)

    async def aclose(self) -> None:
        if self._connection is not None:
            await self._connection.aclose()


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
