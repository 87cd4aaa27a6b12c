"""Request bodies of bounded size: ASGI middleware in front of the API.

A body is held in memory whole before it is parsed, so without a bound a client could
grow the emulator by whatever it sends. A body that declares a length past the bound
(Content-Length) is refused before a byte of it is read; one that comes in chunks is
counted as it comes and refused as soon as it passes the bound, the rest left unread.
Within the bound it is handed on whole.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyLimit:
    """`app`, behind a bound of `max_bytes` per request body; `too_large()` is the answer
    to a body past it (the API's 413)."""

    def __init__(self, app: ASGIApp, max_bytes: int, too_large: Callable[[], Response]) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.too_large = too_large

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length, chunked = _framing(scope)
        if length is not None and length > self.max_bytes:
            await self.too_large()(scope, receive, send)
            return
        if length is None and not chunked:  # no body (a GET): nothing to bound
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client left: nobody to answer
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self.too_large()(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        await self.app(scope, _replay(b"".join(chunks), receive), send)


def _framing(scope: Scope) -> tuple[int | None, bool]:
    """The Content-Length a request declares (None: none, or not a number), and whether
    its body comes in chunks."""
    length: int | None = None
    chunked = False
    for name, value in scope["headers"]:
        if name == b"content-length" and value.strip().isdigit():
            length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    return length, chunked


def _replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` giving the whole body first, then whatever comes next (a disconnect)."""
    pending = True

    async def replayed() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed
