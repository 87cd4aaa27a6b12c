"""The emulator as a server facing hostile input, over loopback: a body past the limit is
refused with 413 before it is read (or, sent in chunks, without reading the rest), JSON
nested too deep anywhere is a 400, and the server keeps serving after each of them."""

from __future__ import annotations

import asyncio
import base64
import json
import select
import socket
from collections.abc import Iterable, Iterator
from typing import Any

import httpx
import pytest
from starlette.types import Message, Receive, Scope, Send

from policysync.config import Limits
from policysync.emulator import MAX_BODY_BYTES
from policysync.emulator.server import EmulatorThread, build
from policysync.emulator.store import Store

from .conftest import PROJECT_ID, SECRET
from .test_api import GOOD_AUTH, ORG_POLICY, SEARCH, assert_error

DEEP = 50_000  # far past the recursion limit of Python's json, within the body limit
ROLE = {"role_id": "ops", "permissions": [{"resource_id": "documents", "actions": ["read"]}]}


def send(url: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
    headers = {"Authorization": GOOD_AUTH}
    return httpx.request(method, url + path.lstrip("/"), headers=headers, timeout=10, **kwargs)


def assert_serving(url: str) -> None:
    """The server still answers, and its state is intact."""
    response = send(url, "GET", ORG_POLICY + "acme")
    assert response.status_code == 200, response.text
    assert response.json()["org_policy"]["roles"]


def raw_exchange(url: str, head: bytes, chunks: Iterable[bytes] = ()) -> bytes:
    """Send `head`, then `chunks` until the server answers (or they run out); the answer,
    read until the server closes the connection or its body is complete."""
    host, port = httpx.URL(url).host, httpx.URL(url).port
    with socket.create_connection((host, port or 80), timeout=10) as sock:
        sock.sendall(head)
        try:
            for chunk in chunks:
                if select.select([sock], [], [], 0)[0]:
                    break  # the server answered: it reads no more
                sock.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server closed its side: its answer is still there to read
        answer = b""
        while b"\r\n\r\n" not in answer or not _complete(answer):
            try:
                data = sock.recv(65536)
            except ConnectionResetError:
                break
            if not data:
                break
            answer += data
    return answer


def _complete(answer: bytes) -> bool:
    head, _, body = answer.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value)
    return False


def as_response(answer: bytes) -> httpx.Response:
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *fields = head.split(b"\r\n")
    headers = [tuple(f.split(b":", 1)) for f in fields]
    return httpx.Response(
        int(status_line.split()[1]),
        headers=[(k.strip(), v.strip()) for k, v in headers],
        content=body,
    )


@pytest.fixture
def server(store: Store) -> Iterator[str]:
    with EmulatorThread(build(store, PROJECT_ID, SECRET, Limits())) as running:
        yield running.url


# JSON nested too deep ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "inner", [b"[" * DEEP, b"[" * DEEP + b"]" * DEEP, b'{"a":' * DEEP + b"1" + b"}" * DEEP]
)
def test_a_cursor_nested_too_deep_is_a_400_not_a_500(server: str, inner: bytes) -> None:
    cursor = base64.urlsafe_b64encode(inner).decode()
    assert_error(send(server, "POST", SEARCH, json={"cursor": cursor}), 400, "invalid_argument")
    assert send(server, "POST", SEARCH, json={}).status_code == 200
    assert_serving(server)


def nested(depth: int) -> bytes:
    """A JSON value `depth` arrays deep: within the reach of json, past most readers'."""
    return b"[" * depth + b'"x"' + b"]" * depth


@pytest.mark.parametrize(
    ("body", "error_type"),
    [
        (b'{"org_policy": {"roles": ' + b"[" * DEEP + b"]" * DEEP + b"}}", "bad_request"),
        (b'{"org_policy": ' + b'{"roles": ' * DEEP + b"[]" + b"}" * DEEP + b"}", "bad_request"),
        # within json's reach, deep where the model reads: refused by the model
        (b'{"org_policy": {"roles": [' + nested(900) + b"]}}", "invalid_argument"),
        (
            b'{"org_policy": {"roles": [{"role_id": "a", "description": ' + nested(900) + b"}]}}",
            "invalid_argument",
        ),
        (b'{"org_policy": ' + nested(900) + b"}", "invalid_argument"),
        (b'{"organization_id": ' + nested(900) + b', "org_policy": {}}', None),
    ],
    ids=["roles", "org-policy", "a-role", "a-description", "org-policy-list", "extra-field"],
)
def test_a_put_nested_deep_is_a_400_or_read_as_stytch_reads_it(
    server: str, body: bytes, error_type: str | None
) -> None:
    before = send(server, "GET", ORG_POLICY + "globex").json()["org_policy"]
    response = send(server, "PUT", ORG_POLICY + "globex", content=body)
    if error_type is None:  # a field Stytch ignores is ignored, however deep
        assert response.status_code == 200, response.text
        assert response.json()["org_policy"] == {"roles": []}
    else:
        assert_error(response, 400, error_type)
        assert send(server, "GET", ORG_POLICY + "globex").json()["org_policy"] == before
    assert_serving(server)


@pytest.mark.parametrize(
    "body",
    [
        b'{"query": ' + nested(900) + b"}",
        b'{"query": {"operator": "AND", "operands": ' + nested(900) + b"}}",
        b'{"limit": ' + nested(900) + b"}",
        b'{"cursor": ' + nested(900) + b"}",
    ],
    ids=["query", "operands", "limit", "cursor"],
)
def test_a_search_nested_deep_is_a_400(server: str, body: bytes) -> None:
    assert_error(send(server, "POST", SEARCH, content=body), 400, "invalid_argument")
    assert_serving(server)


# Bodies past the limit --------------------------------------------------------------------


def head(method: str, path: str, *fields: str) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: emulator", f"Authorization: {GOOD_AUTH}"]
    lines += ["Content-Type: application/json", *fields]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


@pytest.mark.parametrize(("method", "path"), [("PUT", ORG_POLICY + "acme"), ("POST", SEARCH)])
def test_a_body_declared_past_the_limit_is_refused_before_it_is_read(
    server: str, method: str, path: str
) -> None:
    """512 MiB announced, not one byte of it sent: the answer comes at once."""
    answer = raw_exchange(server, head(method, path, f"Content-Length: {512 * 1024 * 1024}"))
    response = as_response(answer)
    assert_error(response, 413, "request_too_large")
    assert f"{MAX_BODY_BYTES} bytes" in response.json()["error_message"]
    assert_serving(server)


def test_a_chunked_body_is_not_read_past_the_limit(server: str) -> None:
    piece = b"x" * 65536
    frame = b"%x\r\n%b\r\n" % (len(piece), piece)
    chunks = iter([frame] * (4 * MAX_BODY_BYTES // len(piece)))
    answer = raw_exchange(
        server, head("PUT", ORG_POLICY + "acme", "Transfer-Encoding: chunked"), chunks
    )
    assert_error(as_response(answer), 413, "request_too_large")
    assert_serving(server)


def test_a_body_at_the_limit_is_read_whole_chunked_or_not(store: Store) -> None:
    limit = 4096
    body = json.dumps({"org_policy": {"roles": [ROLE]}}).encode()
    padded = body[:-1] + b" " * (limit - len(body)) + b"}"
    assert len(padded) == limit
    app = build(store, PROJECT_ID, SECRET, Limits(), max_body_bytes=limit)
    with EmulatorThread(app) as running:
        url = running.url
        assert send(url, "PUT", ORG_POLICY + "acme", content=padded).status_code == 200

        def pieces() -> Iterator[bytes]:
            for i in range(0, len(padded), 100):
                yield padded[i : i + 100]

        chunked = send(url, "PUT", ORG_POLICY + "globex", content=pieces())
        assert chunked.status_code == 200, chunked.text
        assert chunked.json()["org_policy"]["roles"] == [{**ROLE, "description": ""}]
        over = send(url, "PUT", ORG_POLICY + "acme", content=padded + b" ")
        assert_error(over, 413, "request_too_large")
        assert "larger than 4096 bytes" in over.json()["error_message"]
        assert_serving(url)


def test_an_endless_body_is_read_no_further_than_the_limit(store: Store) -> None:
    """In-process, with a body that never ends: the emulator stops reading it."""
    limit = 10_000
    app = build(store, PROJECT_ID, SECRET, Limits(), max_body_bytes=limit)
    received = 0
    sent: list[Message] = []

    async def receive() -> Message:
        nonlocal received
        received += 1000
        return {"type": "http.request", "body": b"x" * 1000, "more_body": True}

    async def record(message: Message) -> None:
        sent.append(message)

    scope: Scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "PUT",
        "scheme": "http",
        "path": ORG_POLICY + "acme",
        "raw_path": (ORG_POLICY + "acme").encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"authorization", GOOD_AUTH.encode()), (b"transfer-encoding", b"chunked")],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 2),
    }

    async def go(receive: Receive, send: Send) -> None:
        await asyncio.wait_for(app(scope, receive, send), 10)

    asyncio.run(go(receive, record))
    assert sent[0]["status"] == 413
    assert json.loads(sent[1]["body"])["error_type"] == "request_too_large"
    assert received <= limit + 1000
