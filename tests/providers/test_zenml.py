"""The ZenML Pro client against the emulator over loopback HTTP (a recording middleware
in front of it sees what the server saw), and against scripted answers
(httpx.MockTransport, or a transport that forwards a request and then loses its answer)
for the exact fault sequences. Waits run on a fake clock: nothing here sleeps for real.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import json
import random
import time
import traceback
import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs

import httpx
import pytest
from pydantic import SecretStr
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from support.clientkit import FakeClock, without_proxy_variables
from support.hostile import HOSTILE_SECRETS, encodings, leaks

from policysync.canonical import same_role
from policysync.emulator.faults import DroppedConnection, FaultInjector, Faults
from policysync.emulator.server import EmulatorThread, read_model
from policysync.emulator.zenml_app import DEFAULT_API_KEY, ZenmlApi, create_app, fault_body
from policysync.emulator.zenml_store import (
    SYSTEM_ROLES,
    SeedAssignment,
    SeedOrganization,
    SeedPermission,
    SeedRole,
    ZenmlSeed,
    ZenmlStore,
    system_role_id,
)
from policysync.errors import ApiError, ConfigError, ProviderError, TransportError
from policysync.models import Holder, OrgPolicy, Permission, Role, RoleHolders, RoleOperation
from policysync.providers.pacing import Backoff
from policysync.providers.zenml import Endpoint, ZenmlClient, endpoint_from_env

T = TypeVar("T")

SEED_FILE = Path(__file__).parent.parent.parent / "examples" / "zenml" / "emulator-seed.json"

KEY = DEFAULT_API_KEY
ACME = "9a1b2c3d-0000-4000-8000-000000000001"
GLOBEX = "9a1b2c3d-0000-4000-8000-000000000002"
INITECH = "9a1b2c3d-0000-4000-8000-000000000003"
REVIEWERS = "3f2c0000-0000-4000-8000-000000000101"
ALICE = "00000000-0000-4000-8000-0000000000a1"
WORKSPACE = "00000000-0000-4000-8000-0000000000f1"
ORG = "5e000000-0000-4000-8000-000000000001"  # the organization of the tests' own seeds
PROJECT = "00000000-0000-4000-8000-0000000000f2"
TEAM = "00000000-0000-4000-8000-0000000000b1"
INVITATION = "00000000-0000-4000-8000-0000000000c1"
LOGIN = "POST /auth/login"


@pytest.fixture(autouse=True)
def no_proxy_from_the_caller(monkeypatch: pytest.MonkeyPatch) -> None:
    without_proxy_variables(monkeypatch)


# Seeds --------------------------------------------------------------------------------


def demo_store() -> ZenmlStore:
    store = ZenmlStore()
    store.load(read_model(SEED_FILE, ZenmlSeed))
    return store


def seed_role(
    name: str,
    level: str = "workspace",
    pairs: Sequence[tuple[str, str]] = (("pipeline", "read"),),
    description: str = "",
    assignments: Sequence[SeedAssignment] = (),
) -> SeedRole:
    return SeedRole.model_validate(
        {
            "name": name,
            "level": level,
            "description": description,
            "permissions": [SeedPermission(resource=r, action=a) for r, a in pairs],
            "assignments": assignments,
        }
    )


def store_of(*roles: SeedRole, organizations: Sequence[SeedOrganization] = ()) -> ZenmlStore:
    """One organization, ORG named "tests", with `roles`; and `organizations`."""
    org = SeedOrganization(id=uuid.UUID(ORG), name="tests", roles=roles)
    store = ZenmlStore()
    store.load(ZenmlSeed(organizations=(org, *organizations)))
    return store


def custom_roles(store: ZenmlStore, oid: str = ORG) -> dict[str, str]:
    """`level:name` -> id of the organization's custom roles, as stored."""
    return {f"{r.level}:{r.name}": r.id for r in store.roles(oid) if not r.system_managed}


def role(
    key: str, pairs: Sequence[tuple[str, str]] = (("pipeline", "read"),), description: str = ""
) -> Role:
    grouped: dict[str, list[str]] = {}
    for resource, action in pairs:
        grouped.setdefault(resource, []).append(action)
    permissions = tuple(Permission(resource_id=r, actions=tuple(a)) for r, a in grouped.items())
    return Role(role_id=key, description=description, permissions=permissions)


def same_policy(a: OrgPolicy, b: OrgPolicy) -> bool:
    left = {r.role_id: r for r in a.roles}
    right = {r.role_id: r for r in b.roles}
    return left.keys() == right.keys() and all(same_role(left[k], right[k]) for k in left)


# The emulator, over loopback, with what it saw recorded --------------------------------


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, list[str]]
    body: bytes
    authorization: str
    status: int | None = None

    @property
    def key(self) -> str:
        return f"{self.method} {self.path}"

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Wire:
    """ASGI middleware: every request the app got (its body too), and its answer's status."""

    app: ASGIApp
    seen: list[Seen] = field(default_factory=list)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        chunks, more = [], True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        headers = dict(scope["headers"])
        seen = Seen(
            scope["method"],
            scope["path"],
            parse_qs(scope["query_string"].decode()),
            b"".join(chunks),
            headers.get(b"authorization", b"").decode(),
        )
        self.seen.append(seen)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": seen.body, "more_body": False}
            return await receive()

        async def recording(message: Message) -> None:
            if message["type"] == "http.response.start":
                seen.status = message["status"]
            await send(message)

        await self.app(scope, replay, recording)

    def of(self, key: str) -> list[Seen]:
        """What was seen of `key` ("METHOD /path")."""
        return [s for s in self.seen if s.key == key]

    def count(self, key: str) -> int:
        return len(self.of(key))

    def writes(self) -> list[Seen]:
        return [s for s in self.seen if s.method != "GET" and s.path != "/auth/login"]


class LoseAnswers:
    """ASGI middleware: the first `times` requests `lose` picks are carried out, then
    their connection is dropped before the answer (the emulator's DroppedConnection)."""

    def __init__(self, app: ASGIApp, lose: Callable[[Scope], bool], times: int = 1) -> None:
        self.app, self.lose, self.left = app, lose, times

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.left == 0 or not self.lose(scope):
            await self.app(scope, receive, send)
            return
        self.left -= 1

        async def discard(message: Message) -> None:
            return None

        await self.app(scope, receive, discard)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        raise DroppedConnection


class Server:
    """The emulator in a thread: its URL, its Wire, its store, and the app served."""

    def __init__(self, url: str, wire: Wire, store: ZenmlStore, app: ASGIApp) -> None:
        self.url, self.wire, self.store, self.app = url, wire, store, app


@contextlib.contextmanager
def serving(
    store: ZenmlStore | None = None,
    *,
    key: str = KEY,
    token_ttl: int = 3600,
    clock: Callable[[], float] = time.monotonic,
    faults: Faults | None = None,
    outer: Callable[[ASGIApp], ASGIApp] = lambda app: app,
) -> Iterator[Server]:
    store = store or demo_store()
    wire = Wire(create_app(ZenmlApi(store, key, token_ttl, clock=clock)))
    app: ASGIApp = wire if faults is None else FaultInjector(wire, faults, fault_body)
    with EmulatorThread(outer(app)) as running:
        yield Server(running.url, wire, store, app)


def client_of(
    url: str,
    clock: FakeClock | None = None,
    key: str = KEY,
    transport: httpx.AsyncBaseTransport | None = None,
    **options: Any,
) -> ZenmlClient:
    clock = clock or FakeClock()
    return ZenmlClient(
        Endpoint(SecretStr(key), url),
        transport=transport,
        sleep=clock.sleep,
        clock=clock,
        rng=random.Random(0),
        **options,
    )


def run(client: ZenmlClient, call: Callable[[ZenmlClient], Awaitable[T]]) -> T:
    async def go() -> T:
        async with client:
            return await call(client)

    return asyncio.run(go())


def failure(client: ZenmlClient, call: Callable[[ZenmlClient], Awaitable[Any]]) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        run(client, call)
    return caught.value


class Operations:
    """A `log` for write_org: the operations reported, in order."""

    def __init__(self) -> None:
        self.landed: list[RoleOperation] = []

    async def __call__(self, operation: RoleOperation) -> None:
        self.landed.append(operation)

    def actions(self) -> list[tuple[str, str]]:
        return [(o.action, o.role_id) for o in self.landed]


# Scripted answers -----------------------------------------------------------------------

Answer = Callable[[httpx.Request], httpx.Response]
TOKENS = tuple(f"zenml-token-{n}-{'t' * 24}" for n in range(1, 10))


def reply(status: int = 200, body: Any = None, headers: dict[str, str] | None = None) -> Answer:
    """An answer: `body` as JSON, or as it is when bytes or str."""

    def answer(request: httpx.Request) -> httpx.Response:
        if isinstance(body, bytes | str):
            return httpx.Response(status, content=body, headers=headers)
        return httpx.Response(status, json=body, headers=headers)

    return answer


def role_json(rid: str, name: str, level: str = "workspace", **fields: Any) -> dict[str, Any]:
    document = {
        "id": rid,
        "name": name,
        "level": level,
        "description": "",
        "organization_id": ORG,
        "system_managed": False,
        "type": "normal",
        "permissions": [{"resource": "pipeline", "action": "read"}],
    }
    return document | fields


class Fake:
    """A scripted ZenML Pro: logins answer TOKENS in turn; other requests go to `routes`
    by "METHOD /path", each a list of answers given in turn (the last for ever after), or
    to `other`."""

    def __init__(
        self,
        routes: Mapping[str, Answer | Sequence[Answer]] | None = None,
        *,
        other: Answer | None = None,
        expires_in: float | None = 3600,
    ) -> None:
        self.routes = {k: [v] if callable(v) else list(v) for k, v in (routes or {}).items()}
        self.other = other
        self.expires_in = expires_in
        self.requests: list[httpx.Request] = []
        self.logins = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        key = f"{request.method} {request.url.path}"
        if key == LOGIN and key not in self.routes:
            self.logins += 1
            body = {"access_token": TOKENS[self.logins - 1], "token_type": "bearer"}
            return httpx.Response(200, json=body | {"expires_in": self.expires_in})
        answers = self.routes.get(key)
        if answers is None:
            if self.other is None:
                raise AssertionError(f"unexpected request {key}")
            return self.other(request)
        answer = answers.pop(0) if len(answers) > 1 else answers[0]
        return answer(request)

    def sent(self, key: str) -> list[httpx.Request]:
        return [r for r in self.requests if f"{r.method} {r.url.path}" == key]

    def client(self, clock: FakeClock | None = None, **options: Any) -> ZenmlClient:
        return client_of("http://127.0.0.1/", clock, transport=httpx.MockTransport(self), **options)


ROLES = f"GET /organizations/{ORG}/roles"


def listing(*roles: dict[str, Any]) -> Answer:
    return reply(body=list(roles))


# Login ------------------------------------------------------------------------------------


def test_one_login_serves_every_request_of_a_client() -> None:
    with serving() as server:

        async def many(client: ZenmlClient) -> None:
            await client.read_catalog()
            await asyncio.gather(*(client.read_org(ACME) for _ in range(8)))
            await client.read_org("globex")
            await client.holders("acme", ["workspace:Pipeline Reviewers"])
            [o async for o in client.list_orgs()]

        run(client_of(server.url), many)
        wire = server.wire
        assert wire.count(LOGIN) == 1
        assert parse_qs(wire.of(LOGIN)[0].body.decode()) == {"password": [KEY]}
        others = [s for s in wire.seen if s.key != LOGIN]
        assert len(others) > 20
        bearers = {s.authorization for s in others}
        assert len(bearers) == 1
        (bearer,) = bearers
        assert bearer.startswith("Bearer ")
        assert KEY not in bearer
        assert all(s.status == 200 for s in wire.seen)


@pytest.mark.parametrize(
    ("expires_in", "used_for"), [(3600, 3540.0), (100, 90.0), (None, 3540.0), (30, 27.0)]
)
def test_the_token_is_used_until_shortly_before_it_expires(
    expires_in: float | None, used_for: float
) -> None:
    fake = Fake({ROLES: listing()}, expires_in=expires_in)
    clock = FakeClock()

    async def calls(client: ZenmlClient) -> None:
        start = clock.now
        await client.read_org(ORG)
        clock.now = start + used_for - 0.5
        await client.read_org(ORG)
        clock.now = start + used_for + 0.5
        await client.read_org(ORG)
        await client.read_org(ORG)

    run(fake.client(clock), calls)
    assert fake.logins == 2
    bearers = [r.headers["authorization"] for r in fake.sent(ROLES)]
    assert bearers == [f"Bearer {TOKENS[0]}"] * 2 + [f"Bearer {TOKENS[1]}"] * 2


def test_a_token_expired_on_the_server_logs_in_once_and_the_request_is_sent_once_more() -> None:
    server_clock = FakeClock()
    with serving(clock=server_clock) as server:

        async def calls(client: ZenmlClient) -> list[OrgPolicy]:
            first = await client.read_org("acme")
            server_clock.now += 3601  # the server's clock only: the client sees no expiry
            return [first, await client.read_org("acme"), await client.read_org("acme")]

        first, again, third = run(client_of(server.url), calls)
        assert first == again == third
        assert len(first.roles) == 2
        wire = server.wire
        assert wire.count(LOGIN) == 2
        listed = wire.of(f"GET /organizations/{ACME}/roles")
        assert [s.status for s in listed] == [200, 401, 200, 200]
        assert listed[1].authorization == listed[0].authorization != listed[2].authorization
        assert listed[2].authorization == listed[3].authorization


def test_concurrent_requests_meeting_an_expired_token_log_in_once() -> None:
    """Six requests in flight with the first token, all answered 401 together: one
    login more, and each request sent once more with the new token."""
    logins: list[str] = []
    held: list[httpx.Request] = []
    all_in = asyncio.Event()
    sent: list[str] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/auth/login":
            logins.append(TOKENS[len(logins)])
            return httpx.Response(200, json={"access_token": logins[-1], "expires_in": 3600})
        sent.append(request.headers["authorization"])
        if request.headers["authorization"] == f"Bearer {TOKENS[0]}":
            held.append(request)
            if len(held) == 6:
                all_in.set()
            await all_in.wait()
            return httpx.Response(401, json={"detail": ["AuthorizationException", "expired"]})
        return httpx.Response(200, json=[])

    async def calls(client: ZenmlClient) -> list[OrgPolicy]:
        return list(await asyncio.gather(*(client.read_org(ORG) for _ in range(6))))

    client = client_of("http://127.0.0.1/", transport=httpx.MockTransport(handler))
    assert run(client, calls) == [OrgPolicy(roles=())] * 6
    assert logins == list(TOKENS[:2])
    assert sent == [f"Bearer {TOKENS[0]}"] * 6 + [f"Bearer {TOKENS[1]}"] * 6


def test_a_401_that_stays_is_an_api_error_naming_the_key() -> None:
    with serving(token_ttl=0) as server:  # every token dead on arrival
        error = failure(client_of(server.url), lambda c: c.read_org(ACME))
        assert isinstance(error, ApiError)
        assert error.status == 401
        assert error.error_type == "AuthorizationException"
        assert "The token has expired." in error.message
        assert "ZENML_PRO_API_KEY" in str(error)
        assert error.organization_id == ACME
        assert server.wire.count(LOGIN) == 2  # one login, one more after the 401
        assert server.wire.count(f"GET /organizations/{ACME}/roles") == 2


def test_a_401_that_stays_on_a_scripted_server() -> None:
    fake = Fake({ROLES: reply(401, {"detail": "Not authenticated"})})
    error = failure(fake.client(), lambda c: c.read_org(ORG))
    assert isinstance(error, ApiError)
    assert (error.status, error.message) == (401, "Not authenticated")
    assert "check ZENML_PRO_API_KEY" in str(error)
    assert fake.logins == 2
    assert len(fake.sent(ROLES)) == 2


def test_a_wrong_key_is_refused_at_the_login_and_not_tried_again() -> None:
    other_key = "ZENPROKEY_another-key-that-is-not-the-emulators"
    with serving() as server:
        for call in (lambda c: c.read_catalog(), lambda c: c.read_org(ACME)):
            error = failure(client_of(server.url, key=other_key), call)
            assert isinstance(error, ApiError)
            assert (error.status, error.error_type) == (401, "AuthorizationException")
            assert error.message == "Invalid API key."
            assert "check ZENML_PRO_API_KEY" in str(error)
            assert other_key not in str(error)
        assert [s.key for s in server.wire.seen] == [LOGIN, LOGIN]


def test_a_login_answer_without_a_token_is_unexpected() -> None:
    fake = Fake({LOGIN: reply(body={"token_type": "bearer"})})
    error = failure(fake.client(), lambda c: c.read_org(ORG))
    assert isinstance(error, ApiError)
    assert (error.status, error.error_type) == (200, "unexpected_response")
    assert "access_token" in error.message
    assert "check ZENML_PRO_API_URL" in str(error)


# Secrets ------------------------------------------------------------------------------


def texts_of(error: BaseException) -> list[str]:
    return [
        str(error),
        repr(error),
        "".join(traceback.format_exception(error)),
        repr(vars(error)),
    ]


def assert_hidden(error: BaseException, *secrets: str) -> None:
    forms = set().union(*(encodings(s) for s in secrets))
    for text in texts_of(error):
        for secret in secrets:
            assert secret not in text
        assert leaks(text, forms, window=12) == [], text


def echo(status: int, shape: str) -> Answer:
    """An error answer that writes back the key and the bearer the request carried."""

    def answer(request: httpx.Request) -> httpx.Response:
        bearer = request.headers.get("authorization", "")
        said = f"refused {bearer} (key {KEY})"
        bodies: dict[str, Any] = {
            "string": {"detail": said},
            "pair": {"detail": [f"Error{KEY}", said]},
            "list": {"detail": [{"loc": ["body", KEY], "msg": said, "input": KEY}]},
            "other": {"error": said},
        }
        if shape == "html":
            page = f"<html><body><h1>{status}</h1><p>{said}</p></body></html>"
            return httpx.Response(status, content=page.encode())
        return httpx.Response(status, json=bodies[shape])

    return answer


@pytest.mark.parametrize("shape", ["string", "pair", "list", "other", "html"])
@pytest.mark.parametrize("status", [400, 401, 403, 422, 502])
def test_neither_the_key_nor_the_token_is_shown_when_the_server_echoes_them(
    shape: str, status: int
) -> None:
    fake = Fake({ROLES: echo(status, shape)})
    error = failure(fake.client(), lambda c: c.read_org(ORG))
    assert isinstance(error, ApiError)
    assert error.status == status
    assert "***" in str(error)
    assert_hidden(error, KEY, *TOKENS[: fake.logins])


@pytest.mark.parametrize("shape", ["string", "pair", "html"])
def test_a_login_refusal_echoing_the_key_does_not_show_it(shape: str) -> None:
    fake = Fake({LOGIN: echo(401, shape)})
    error = failure(fake.client(), lambda c: c.read_catalog())
    assert error.status == 401
    assert_hidden(error, KEY)


@pytest.mark.parametrize("key", HOSTILE_SECRETS)
def test_a_key_of_any_characters_is_hidden_in_json_and_html_echoes(key: str) -> None:
    pages = [
        reply(400, {"detail": f"bad key {key}"}),
        reply(502, f"<p>bad key {html.escape(key)}</p>"),
        reply(422, {"detail": ["ValueError", f"bad key {key}"]}),
    ]
    for page in pages:
        fake = Fake({LOGIN: page})
        error = failure(
            client_of("http://127.0.0.1/", key=key, transport=httpx.MockTransport(fake)),
            lambda c: c.read_catalog(),
        )
        assert "bad key" in str(error)
        assert_hidden(error, key)


def test_a_transport_fault_naming_the_key_does_not_show_it() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"refused password={KEY}")

    error = failure(Fake({LOGIN: refuse}).client(), lambda c: c.read_catalog())
    assert isinstance(error, TransportError)
    assert "refused password=***" in str(error)
    assert_hidden(error, KEY)


def test_the_endpoint_and_its_repr_hide_the_key() -> None:
    endpoint = endpoint_from_env({"ZENML_PRO_API_KEY": KEY})
    assert KEY not in repr(endpoint)
    assert KEY not in str(endpoint)
    assert endpoint.base_url == "https://cloudapi.zenml.io/"
    with pytest.raises(ConfigError, match="shorter than 16") as caught:
        endpoint_from_env({"ZENML_PRO_API_KEY": "ZENPROKEY_x"})
    assert "ZENPROKEY_x" not in str(caught.value)


def test_a_token_replaced_while_a_request_held_it_stays_hidden() -> None:
    """A request sent with the first token, answered after a second login replaced it
    (the first token may still be good for the margin before its expiry)."""
    clock = FakeClock()
    held = asyncio.Event()
    replaced = asyncio.Event()

    async def slow(request: httpx.Request) -> httpx.Response:
        bearer = request.headers["authorization"]
        if bearer == f"Bearer {TOKENS[0]}":
            held.set()
            await replaced.wait()
            return httpx.Response(400, json={"detail": f"{bearer} may not do this"})
        replaced.set()
        return httpx.Response(200, json=[])

    logins: list[str] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/auth/login":
            logins.append(TOKENS[len(logins)])
            return httpx.Response(200, json={"access_token": logins[-1], "expires_in": 3600})
        return await slow(request)

    transport = httpx.MockTransport(handler)

    async def calls(client: ZenmlClient) -> OrgPolicy | BaseException:
        first = asyncio.create_task(client.read_org(ORG))
        await held.wait()
        clock.now += 3599  # past the client's margin: the next request logs in again
        await client.read_org(ORG)
        return (await asyncio.gather(first, return_exceptions=True))[0]

    error = run(client_of("http://127.0.0.1/", clock, transport=transport), calls)
    assert isinstance(error, ApiError)
    assert logins == list(TOKENS[:2])
    assert "may not do this" in str(error)
    assert_hidden(error, KEY, TOKENS[0], TOKENS[1])


# Organizations --------------------------------------------------------------------------


def test_an_organization_by_its_id_or_its_name_listed_once_per_client() -> None:
    with serving() as server:

        async def calls(client: ZenmlClient) -> list[OrgPolicy]:
            names = ["acme", "globex", "acme", "initech", "initech"]
            by_name = [await client.read_org(n) for n in names]
            both = await asyncio.gather(client.read_org("acme"), client.read_org("globex"))
            by_id = [await client.read_org(i) for i in (ACME, GLOBEX, INITECH.upper())]
            return [*by_name, *both, *by_id]

        found = run(client_of(server.url), calls)
        acme, globex, _, initech, _, acme2, globex2, by_acme, by_globex, by_initech = found
        assert acme == acme2 == by_acme
        assert globex == globex2 == by_globex == OrgPolicy(roles=())
        assert initech == by_initech
        assert {r.role_id for r in acme.roles} == {
            "workspace:Pipeline Reviewers",
            "project:Model Promoters",
        }
        assert {r.role_id for r in initech.roles} == {
            "organization:Team Leads",
            "workspace:Run Operators",
        }
        assert server.wire.count("GET /organizations") == 1
        # Named by id, no listing: a second client that only uses ids never lists.
        run(client_of(server.url), lambda c: c.read_org(ACME))
        assert server.wire.count("GET /organizations") == 1


def test_an_unknown_name_is_an_error_naming_it() -> None:
    with serving() as server:
        error = failure(client_of(server.url), lambda c: c.read_org("nowhere-inc"))
        assert isinstance(error, ApiError)
        assert (error.status, error.error_type) == (404, "organization_not_found")
        assert "no organization named 'nowhere-inc'" in error.message
        assert error.organization_id == "nowhere-inc"
        assert "check the organization's id or name" in str(error)
        assert not any("/roles" in s.path for s in server.wire.seen)


def test_an_unknown_id_is_the_servers_404() -> None:
    unknown = "00000000-0000-4000-8000-000000000999"
    with serving() as server:
        error = failure(client_of(server.url), lambda c: c.read_org(unknown))
        assert isinstance(error, ApiError)
        # Not there: organization_not_found, as for a name (an environment lacks it).
        assert (error.status, error.error_type) == (404, "organization_not_found")
        assert error.message.startswith(f"no organization with id {unknown} is visible")
        assert "No organization with id or name" in error.message  # the server's own words
        assert server.wire.count("GET /organizations") == 0


def test_two_organizations_of_one_name_are_named_by_id() -> None:
    twins = [
        {"id": ORG, "name": "twin"},
        {"id": GLOBEX, "name": "twin"},
        {"id": ACME, "name": "single"},
    ]
    fake = Fake(
        {"GET /organizations": reply(body=twins), ROLES: listing(role_json(REVIEWERS, "R"))}
    )
    error = failure(fake.client(), lambda c: c.read_org("twin"))
    assert isinstance(error, ApiError)
    assert "2 organizations are named 'twin': name it by its id" in error.message
    assert error.organization_id == "twin"
    assert [r.role_id for r in run(fake.client(), lambda c: c.read_org(ORG)).roles] == [
        "workspace:R"
    ]


# Paging ------------------------------------------------------------------------------


def test_an_organization_with_230_custom_roles_is_read_whole() -> None:
    names = [f"Role {n:03}" for n in range(230)]
    store = store_of(
        *(
            seed_role(n, pairs=[("pipeline", "read"), ("stack", str(i))])
            for i, n in enumerate(names)
        )
    )
    with serving(store) as server:
        policy = run(client_of(server.url), lambda c: c.read_org(ORG))
        assert [r.role_id for r in policy.roles] == [f"workspace:{n}" for n in names]
        assert policy.roles[7] == role("workspace:Role 007", [("pipeline", "read"), ("stack", "7")])
        pages = server.wire.of(f"GET /organizations/{ORG}/roles")
        assert [p.query for p in pages] == [
            {"system_managed": ["false"], "offset": [str(o)], "limit": ["100"]}
            for o in (0, 100, 200)
        ]
        # The list carries no permissions (the emulator's guess 3): each role is read.
        assert len([s for s in server.wire.seen if s.path.startswith("/roles/")]) == 230


def test_more_than_100_organizations_are_listed_and_found_by_name() -> None:
    orgs = [
        SeedOrganization(
            id=uuid.UUID(int=n + 1),
            name=f"org-{n:03}",
            roles=(seed_role(f"Only {n}"),) if n % 50 == 0 else (),
        )
        for n in range(230)
    ]
    store = ZenmlStore()
    store.load(ZenmlSeed(organizations=tuple(orgs)))
    with serving(store) as server:

        async def calls(client: ZenmlClient) -> tuple[list[Any], OrgPolicy]:
            listed = [o async for o in client.list_orgs()]
            return listed, await client.read_org("org-229")

        listed, last = run(client_of(server.url), calls)
        assert [o.organization_id for o in listed] == [
            str(uuid.UUID(int=n + 1)) for n in range(230)
        ]
        assert [o.organization_slug for o in listed] == [f"org-{n:03}" for n in range(230)]
        assert [o.org_policy for o in listed if o.org_policy.roles] == [
            OrgPolicy(roles=(role(f"workspace:Only {n}"),)) for n in (0, 50, 100, 150, 200)
        ]
        assert last == OrgPolicy(roles=())
        pages = server.wire.of("GET /organizations")
        # list_orgs pages through them; the name lookup lists them once more.
        assert [p.query["offset"] for p in pages] == [["0"], ["100"], ["200"]] * 2
        assert all(p.query["limit"] == ["100"] for p in pages)


def test_a_server_ignoring_offset_is_not_asked_for_ever() -> None:
    orgs = [{"id": str(uuid.UUID(int=n + 1)), "name": f"org-{n}"} for n in range(100)]
    roles = [role_json(str(uuid.UUID(int=n + 1000)), f"R{n}") for n in range(100)]
    fake = Fake(
        {"GET /organizations": reply(body=orgs)},
        other=lambda request: httpx.Response(200, json=roles),
    )

    async def calls(client: ZenmlClient) -> tuple[int, OrgPolicy]:
        listed = [o async for o in client.list_orgs(limit=100)]
        return len(listed), await client.read_org("org-42")

    count, policy = asyncio.run(asyncio.wait_for(_entered(fake.client(), calls), timeout=20))
    assert count == 100
    assert len(policy.roles) == 100
    assert len(fake.sent("GET /organizations")) == 4  # twice for list_orgs, twice by name
    listed_roles = [r for r in fake.requests if r.url.path.endswith("/roles")]
    assert len(listed_roles) == 2 * 101  # two pages per organization


async def _entered(client: ZenmlClient, call: Callable[[ZenmlClient], Awaitable[T]]) -> T:
    async with client:
        return await call(client)


def test_a_full_page_then_a_short_one_ends_the_listing() -> None:
    first = [role_json(str(uuid.UUID(int=n + 1)), f"R{n}") for n in range(100)]
    second = [role_json(str(uuid.UUID(int=n + 101)), f"S{n}") for n in range(3)]
    fake = Fake({ROLES: [reply(body=first), reply(body=second), reply(500, "never asked")]})
    policy = run(fake.client(), lambda c: c.read_org(ORG))
    assert len(policy.roles) == 103
    offsets = [r.url.params["offset"] for r in fake.sent(ROLES)]
    assert offsets == ["0", "100"]
    assert not [r for r in fake.requests if r.url.path.startswith("/roles/")]  # listed whole


# System-managed roles ----------------------------------------------------------------------


def ignoring_system_managed(app: ASGIApp) -> ASGIApp:
    """A server that lists system-managed roles whatever `system_managed` asks."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            query = parse_qs(scope["query_string"].decode())
            query.pop("system_managed", None)
            kept = "&".join(f"{k}={v}" for k, values in query.items() for v in values)
            scope = {**scope, "query_string": kept.encode()}
        await app(scope, receive, send)

    return wrapped


def test_system_managed_roles_are_never_read_changed_or_deleted() -> None:
    store = store_of(seed_role("Mine"), seed_role("Theirs", "project"))
    with serving(store, outer=ignoring_system_managed) as server:

        async def calls(client: ZenmlClient) -> tuple[OrgPolicy, OrgPolicy]:
            return await client.read_org(ORG), await client.write_org(ORG, OrgPolicy(roles=()))

        read, written = run(client_of(server.url), calls)
        assert {r.role_id for r in read.roles} == {"workspace:Mine", "project:Theirs"}
        assert written == OrgPolicy(roles=())
        system_ids = {system_role_id(ORG, name) for _, name in SYSTEM_ROLES}
        # The server did list them (the middleware works) ...
        listed = server.wire.of(f"GET /organizations/{ORG}/roles")
        assert "system_managed" not in listed[0].query
        assert len(listed[0].query) == 2  # offset and limit only
        assert not [
            s for s in server.wire.seen if s.path.split("/")[2:3] in ([i] for i in system_ids)
        ]
        # ... and only the two custom roles were deleted.
        writes = server.wire.writes()
        assert [s.method for s in writes] == ["DELETE", "DELETE"]
        assert not {s.path.removeprefix("/roles/") for s in writes} & system_ids
        assert all(s.status == 200 for s in writes)
        assert len([r for r in store.roles(ORG) if r.system_managed]) == len(SYSTEM_ROLES)


def test_a_listed_system_managed_role_is_left_out_of_a_scripted_answer() -> None:
    system = role_json(REVIEWERS, "Workspace Admin", system_managed=True)
    custom = role_json(ALICE, "Mine")
    fake = Fake(
        {
            # read_org, write_org's own read, then the read back: the custom one gone
            ROLES: [listing(system, custom), listing(system, custom), listing(system)],
            f"DELETE /roles/{ALICE}": reply(body=None),
        }
    )

    async def calls(client: ZenmlClient) -> tuple[OrgPolicy, OrgPolicy]:
        return await client.read_org(ORG), await client.write_org(ORG, OrgPolicy(roles=()))

    read, written = run(fake.client(), calls)
    assert read.roles == (role("workspace:Mine"),)
    assert written == OrgPolicy(roles=())
    writes = [r for r in fake.requests if r.method != "GET" and r.url.path != "/auth/login"]
    assert [(r.method, r.url.path) for r in writes] == [("DELETE", f"/roles/{ALICE}")]


# Writing -------------------------------------------------------------------------------


def write_seed() -> ZenmlStore:
    return store_of(
        seed_role("Reviewers", pairs=[("pipeline", "read")], description="old text"),
        seed_role("Promoters", "project", pairs=[("model_version", "promote")], description="p"),
        seed_role("Leaving", "organization", pairs=[("team", "read")]),
        seed_role("Kept", pairs=[("stack", "read"), ("stack", "update")], description="k"),
    )


DESIRED = OrgPolicy(
    roles=(
        role("workspace:Reviewers", [("pipeline", "read")], "new text"),
        role("project:Promoters", [("model_version", "promote"), ("model", "read")], "p"),
        role("workspace:Kept", [("stack", "update"), ("stack", "read")], "k"),
        role("workspace:Newcomers", [("pipeline_run", "read"), ("pipeline", "read")], "n"),
        role("organization:Auditors", [("member", "read")]),
    )
)


def test_write_org_updates_creates_and_deletes_role_by_role() -> None:
    store = write_seed()
    before = custom_roles(store)
    with serving(store) as server:
        log = Operations()
        written = run(client_of(server.url), lambda c: c.write_org("tests", DESIRED, log=log))
        assert same_policy(written, DESIRED)
        assert same_policy(run(client_of(server.url), lambda c: c.read_org(ORG)), DESIRED)
        after = custom_roles(store)
        assert log.actions() == [
            ("update", "workspace:Reviewers"),
            ("update", "project:Promoters"),
            ("create", "workspace:Newcomers"),
            ("create", "organization:Auditors"),
            ("delete", "organization:Leaving"),
        ]
        created = [o.detail for o in log.landed if o.action == "create"]
        assert created == [after["workspace:Newcomers"], after["organization:Auditors"]]
        # Updated roles keep their ids; the one that did not change was not written.
        for key in ("workspace:Reviewers", "project:Promoters", "workspace:Kept"):
            assert after[key] == before[key]
        writes = server.wire.writes()
        assert [s.key for s in writes] == [
            f"PATCH /roles/{before['workspace:Reviewers']}",
            f"PATCH /roles/{before['project:Promoters']}",
            "POST /roles",
            "POST /roles",
            f"DELETE /roles/{before['organization:Leaving']}",
        ]
        patch_description, patch_permissions, create, create2, _ = (
            s.json() if s.body else None for s in writes
        )
        assert patch_description == {"description": "new text"}  # only what changed
        assert patch_permissions == {
            "permissions": [
                {"resource": "model_version", "action": "promote"},
                {"resource": "model", "action": "read"},
            ]
        }
        assert create == {
            "name": "Newcomers",
            "description": "n",
            "organization_id": ORG,
            "level": "workspace",
            "permissions": [
                {"resource": "pipeline_run", "action": "read"},
                {"resource": "pipeline", "action": "read"},
            ],
        }
        assert create2 is not None
        assert create2["level"] == "organization"
        assert all(s.status == 200 for s in server.wire.seen)


def test_a_write_of_what_is_live_writes_nothing() -> None:
    store = write_seed()
    with serving(store) as server:
        live = run(client_of(server.url), lambda c: c.read_org(ORG))
        log = Operations()
        written = run(client_of(server.url), lambda c: c.write_org(ORG, live, live, log=log))
        assert written == live
        assert log.landed == []
        assert server.wire.writes() == []


def test_holders_of_roles_by_user_team_and_invitation_in_their_scopes() -> None:
    store = store_of(
        seed_role(
            "Held",
            assignments=[
                SeedAssignment(user=uuid.UUID(ALICE)),
                SeedAssignment(team=uuid.UUID(TEAM), workspace_id=uuid.UUID(WORKSPACE)),
                SeedAssignment(
                    invitation=uuid.UUID(INVITATION),
                    workspace_id=uuid.UUID(WORKSPACE),
                    project_id=uuid.UUID(PROJECT),
                ),
            ],
        ),
        seed_role("Unheld", "project"),
    )
    with serving(store) as server:
        keys = ["workspace:Held", "project:Unheld", "workspace:Not There"]
        found = run(client_of(server.url), lambda c: c.holders("tests", keys))
        assert found == (
            RoleHolders(
                role_id="workspace:Held",
                holders=(
                    Holder(kind="user", id=ALICE),
                    Holder(kind="team", id=TEAM, workspace_id=WORKSPACE),
                    Holder(
                        kind="invitation",
                        id=INVITATION,
                        workspace_id=WORKSPACE,
                        project_id=PROJECT,
                    ),
                ),
            ),
            RoleHolders(role_id="project:Unheld", holders=()),
        )
        assert server.wire.writes() == []


def test_holders_read_from_objects_with_ids() -> None:
    """ZenML may write a holder as an object (a user with its id) rather than an id."""
    assignments = [
        {"user": {"id": ALICE, "name": "alice"}, "workspace_id": {"id": WORKSPACE}},
        {"team": TEAM, "project_id": PROJECT, "workspace_id": None},
        {"user": None, "team": None, "invitation": None},
    ]
    fake = Fake(
        {
            ROLES: listing(role_json(REVIEWERS, "Held")),
            f"GET /roles/{REVIEWERS}/assignments": reply(body=assignments),
        }
    )
    found = run(fake.client(), lambda c: c.holders(ORG, ["workspace:Held"]))
    assert found == (
        RoleHolders(
            role_id="workspace:Held",
            holders=(
                Holder(kind="user", id=ALICE, workspace_id=WORKSPACE),
                Holder(kind="team", id=TEAM, project_id=PROJECT),
            ),
        ),
    )


def test_a_role_deleted_then_re_created_with_its_holders_is_given_back_to_them() -> None:
    assignments = (
        SeedAssignment(user=uuid.UUID(ALICE), workspace_id=uuid.UUID(WORKSPACE)),
        SeedAssignment(team=uuid.UUID(TEAM)),
        SeedAssignment(
            invitation=uuid.UUID(INVITATION),
            workspace_id=uuid.UUID(WORKSPACE),
            project_id=uuid.UUID(PROJECT),
        ),
    )
    store = store_of(seed_role("Held", assignments=assignments), seed_role("Other"))
    old_id = custom_roles(store)["workspace:Held"]
    stored_before = store.assignments(old_id)
    with serving(store) as server:

        async def calls(
            client: ZenmlClient,
        ) -> tuple[OrgPolicy, OrgPolicy, tuple[RoleHolders, ...]]:
            full = await client.read_org(ORG)
            held = await client.holders(ORG, ["workspace:Held"])
            rest = OrgPolicy(roles=tuple(r for r in full.roles if r.role_id != "workspace:Held"))
            await client.write_org(ORG, rest)
            assert store.assignments(old_id) == []
            log = Operations()
            restored = await client.write_org(ORG, full, rest, holders=held, log=log)
            assert (
                log.actions() == [("create", "workspace:Held")] + [("assign", "workspace:Held")] * 3
            )
            assert [o.detail for o in log.landed[1:]] == [
                f"user {ALICE}",
                f"team {TEAM}",
                f"invitation {INVITATION}",
            ]
            return full, restored, held

        full, restored, held = run(client_of(server.url), calls)
        assert same_policy(restored, full)
        assert {r.role_id for r in restored.roles} == {"workspace:Held", "workspace:Other"}
        new_id = custom_roles(store)["workspace:Held"]
        assert new_id != old_id
        assert store.assignments(new_id) == stored_before
        assigned = server.wire.of(f"POST /roles/{new_id}/assignments")
        assert [a.query for a in assigned] == [
            {"user_id": [ALICE], "workspace_id": [WORKSPACE]},
            {"team_id": [TEAM]},
            {"invitation_id": [INVITATION], "workspace_id": [WORKSPACE], "project_id": [PROJECT]},
        ]
        assert all(a.body == b"" for a in assigned)
        assert len(held[0].holders) == 3


# Unknown outcomes ----------------------------------------------------------------------


def is_request(method: str, path_start: str) -> Callable[[Scope], bool]:
    return lambda scope: scope["method"] == method and scope["path"].startswith(path_start)


def test_a_create_whose_answer_was_lost_is_not_made_twice() -> None:
    store = write_seed()
    with serving(store, outer=lambda app: LoseAnswers(app, is_request("POST", "/roles"))) as server:
        log = Operations()
        wanted = OrgPolicy(roles=(*custom_policy(store), role("workspace:Newcomers")))
        written = run(client_of(server.url), lambda c: c.write_org(ORG, wanted, log=log))
        assert same_policy(written, wanted)
        assert [s.status for s in server.wire.of("POST /roles")] == [200]  # carried out once
        checks = [s for s in server.wire.of(f"GET /organizations/{ORG}/roles") if "name" in s.query]
        assert [s.query for s in checks] == [
            {"name": ["Newcomers"], "level": ["workspace"], "system_managed": ["false"]}
        ]
        new_id = custom_roles(store)["workspace:Newcomers"]
        assert log.landed == [
            RoleOperation(action="create", role_id="workspace:Newcomers", detail=new_id)
        ]
        assert not [s for s in server.wire.seen if s.status == 409]


def custom_policy(store: ZenmlStore) -> tuple[Role, ...]:
    """The organization's custom roles as Roles, from the store."""
    return tuple(
        role(
            f"{r.level}:{r.name}",
            [(p["resource"], p["action"]) for p in r.permissions],
            r.description,
        )
        for r in store.roles(ORG)
        if not r.system_managed
    )


class Forward(httpx.AsyncBaseTransport):
    """Forwards every request over loopback; the first `lose` matches are carried out and
    their answer is then lost (httpx.RemoteProtocolError), or answered `status` before
    being carried out."""

    def __init__(
        self, lose: Callable[[httpx.Request], bool], times: int = 1, status: int | None = None
    ) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.lose, self.left, self.status = lose, times, status
        self.outcomes: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.left and self.lose(request):
            self.left -= 1
            if self.status is not None:
                self.outcomes.append(f"{self.status} before")
                return httpx.Response(self.status, json={"detail": "Service Unavailable"})
            response = await self.inner.handle_async_request(request)
            await response.aread()
            await response.aclose()
            self.outcomes.append(f"lost {response.status_code}")
            raise httpx.RemoteProtocolError("Server disconnected without sending a response.")
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def test_a_create_lost_after_it_was_carried_out_is_settled_by_a_custom_transport() -> None:
    store = write_seed()
    with serving(store) as server:
        forward = Forward(lambda r: r.method == "POST" and r.url.path == "/roles")
        log = Operations()
        wanted = OrgPolicy(roles=(*custom_policy(store), role("project:Fresh")))
        clock = FakeClock()
        written = run(
            client_of(server.url, clock, transport=forward),
            lambda c: c.write_org(ORG, wanted, log=log),
        )
        assert forward.outcomes == ["lost 200"]
        assert same_policy(written, wanted)
        assert server.wire.count("POST /roles") == 1
        assert log.landed == [
            RoleOperation(
                action="create",
                role_id="project:Fresh",
                detail=custom_roles(store)["project:Fresh"],
            )
        ]
        assert len(clock.sleeps) == 1  # one backoff wait, then the check


def test_a_create_refused_before_it_was_carried_out_is_sent_again_once() -> None:
    store = write_seed()
    with serving(store) as server:
        forward = Forward(lambda r: r.method == "POST" and r.url.path == "/roles", status=503)
        wanted = OrgPolicy(roles=(*custom_policy(store), role("project:Fresh")))
        log = Operations()
        written = run(
            client_of(server.url, transport=forward), lambda c: c.write_org(ORG, wanted, log=log)
        )
        assert forward.outcomes == ["503 before"]
        assert same_policy(written, wanted)
        assert server.wire.count("POST /roles") == 1  # the 503 never reached it
        checks = [s for s in server.wire.of(f"GET /organizations/{ORG}/roles") if "name" in s.query]
        assert [c.query["name"] for c in checks] == [["Fresh"]]
        assert log.actions() == [("create", "project:Fresh")]


@pytest.mark.parametrize("lost_by", ["server", "transport"])
def test_a_delete_whose_answer_was_lost_is_no_error(lost_by: str) -> None:
    store = write_seed()
    leaving = custom_roles(store)["organization:Leaving"]

    def outer(app: ASGIApp) -> ASGIApp:
        return LoseAnswers(app, is_request("DELETE", "/roles/")) if lost_by == "server" else app

    with serving(store, outer=outer) as server:
        forward = Forward(lambda r: r.method == "DELETE") if lost_by == "transport" else None
        wanted = OrgPolicy(
            roles=tuple(r for r in custom_policy(store) if r.role_id != "organization:Leaving")
        )
        log = Operations()
        written = run(
            client_of(server.url, transport=forward), lambda c: c.write_org(ORG, wanted, log=log)
        )
        assert same_policy(written, wanted)
        assert log.actions() == [("delete", "organization:Leaving")]
        assert [s.status for s in server.wire.of(f"DELETE /roles/{leaving}")] == [200]
        # Read before the write (its permissions), then the check that found it gone.
        assert [s.status for s in server.wire.of(f"GET /roles/{leaving}")] == [200, 404]
        assert store.role(leaving) is None


def test_a_write_under_random_faults_lands_exactly_once() -> None:
    store = write_seed()
    faults = Faults(error_rate=0.15, drop_rate=0.25, seed=11)
    with serving(store, faults=faults) as server:
        log = Operations()
        client = client_of(server.url, backoff=Backoff(attempts=30, base=0.01, cap=0.05))
        written = run(client, lambda c: c.write_org(ORG, DESIRED, log=log))
        assert same_policy(written, DESIRED)
        assert same_policy(OrgPolicy(roles=custom_policy(store)), DESIRED)
        assert sorted(log.actions()) == sorted(
            [
                ("update", "workspace:Reviewers"),
                ("update", "project:Promoters"),
                ("create", "workspace:Newcomers"),
                ("create", "organization:Auditors"),
                ("delete", "organization:Leaving"),
            ]
        )
        assert not [s for s in server.wire.seen if s.status == 409]
        assert isinstance(server.app, FaultInjector)
        assert server.app.stats["5xx"] + server.app.stats["dropped_after"] > 0


# Errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "error_type", "message", "hint"),
    [
        (400, {"detail": "Bad things."}, "error", "Bad things.", ""),
        (
            402,
            {"detail": ["SubscriptionUpgradeRequiredError", "Upgrade to use custom roles."]},
            "SubscriptionUpgradeRequiredError",
            "Upgrade to use custom roles.",
            "subscription does not include custom roles: upgrade it",
        ),
        (
            403,
            {"detail": ["IllegalOperationError", "Not allowed."]},
            "IllegalOperationError",
            "Not allowed.",
            "system-managed roles cannot be changed",
        ),
        (
            409,
            {"detail": ["EntityExistsError", "A role named 'x' exists."]},
            "EntityExistsError",
            "A role named 'x' exists.",
            "exists already (made meanwhile?): make a new plan",
        ),
        (403, {"detail": "Forbidden."}, "forbidden", "Forbidden.", "the API key's account"),
        (402, {"detail": "Payment required."}, "subscription_required", "Payment required.", ""),
        (409, {"detail": "Conflict."}, "conflict", "Conflict.", "make a new plan"),
        (
            422,
            {
                "detail": [
                    {
                        "type": "missing",
                        "loc": ["body", "permissions", 0, "action"],
                        "msg": "Field required",
                    },
                    {
                        "type": "x",
                        "loc": ["query", "limit"],
                        "msg": "Input should be less than 100",
                    },
                    {"type": "y", "msg": "Something is off"},
                ]
            },
            "invalid_input",
            "permissions.0.action: Field required; limit: Input should be less than 100; "
            "Something is off",
            "one of policysync's guesses",
        ),
        (
            422,
            {"detail": "user_id cannot be combined"},
            "invalid_input",
            "user_id cannot be combined",
            "",
        ),
        (
            404,
            {"detail": "Not Found"},
            "organization_not_found",  # a 404 listing an organization's roles: no such one
            f"no organization with id {ORG} is visible to this API key: Not Found",
            "check the organization's id",
        ),
    ],
)
def test_fastapi_error_bodies_read_as_messages_with_hints(
    status: int, body: Any, error_type: str, message: str, hint: str
) -> None:
    fake = Fake({ROLES: reply(status, body)})
    clock = FakeClock()
    error = failure(fake.client(clock), lambda c: c.read_org(ORG))
    assert isinstance(error, ApiError)
    assert (error.status, error.error_type, error.message) == (status, error_type, message)
    assert f"ZenML Pro answered {status} {error_type}: {message}" in str(error)
    assert hint in str(error)
    assert error.organization_id == ORG
    assert len(fake.sent(ROLES)) == 1  # a 4xx is not retried
    assert clock.sleeps == []


def test_a_422_from_the_emulator_is_located_in_the_body() -> None:
    """A create the emulator refuses (a level it does not know): the client's message
    names the field."""
    with serving(store_of()) as server:
        wanted = OrgPolicy(roles=(role("galaxy:Stars"),))
        error = failure(client_of(server.url), lambda c: c.write_org(ORG, wanted))
        assert isinstance(error, ApiError)
        assert error.status == 422
        assert error.message.startswith("level: Input should be ")
        assert "guesses" in str(error)


def test_a_502_page_that_is_not_json_is_an_unexpected_response_with_a_snippet() -> None:
    page = (
        "<html>\n<head><title>502 Bad Gateway</title></head>\n<body>" + "x" * 500 + "</body></html>"
    )
    fake = Fake({ROLES: reply(502, page, {"content-type": "text/html"})})
    clock = FakeClock()
    error = failure(fake.client(clock), lambda c: c.read_org(ORG))
    assert isinstance(error, ApiError)
    assert (error.status, error.error_type) == (502, "unexpected_response")
    assert error.message.startswith(
        "HTTP 502 Bad Gateway, not a ZenML Pro answer: '<html> <head><title>502 Bad Gateway"
    )
    assert "x" * 100 in error.message
    assert "x" * 300 not in error.message
    assert "(gave up after 6 attempts)" in error.message
    assert "server error: try again later" in str(error)
    assert len(fake.sent(ROLES)) == 6
    assert len(clock.sleeps) == 5


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
def test_retried_answers_wait_as_long_as_retry_after_says(status: int) -> None:
    fake = Fake(
        {
            ROLES: [
                reply(status, {"detail": "wait"}, {"Retry-After": "7"}),
                reply(status, {"detail": "wait"}, {"Retry-After": "2.5"}),
                listing(role_json(REVIEWERS, "R")),
            ]
        }
    )
    clock = FakeClock()
    policy = run(fake.client(clock), lambda c: c.read_org(ORG))
    assert [r.role_id for r in policy.roles] == ["workspace:R"]
    assert clock.sleeps == [7.0, 2.5]
    assert len(fake.sent(ROLES)) == 3


def test_retries_without_retry_after_back_off_and_a_400_is_not_retried() -> None:
    fake = Fake({ROLES: [reply(503, {"detail": "x"}), reply(504, "gateway"), listing()]})
    clock = FakeClock()
    assert run(fake.client(clock), lambda c: c.read_org(ORG)) == OrgPolicy(roles=())
    assert len(clock.sleeps) == 2
    assert all(0 <= s <= 1.0 for s in clock.sleeps)
    fake = Fake({ROLES: reply(400, {"detail": "no"})})
    clock = FakeClock()
    failure(fake.client(clock), lambda c: c.read_org(ORG))
    assert clock.sleeps == []


def test_a_retry_after_past_the_wait_limit_gives_up_at_once() -> None:
    fake = Fake({ROLES: reply(429, {"detail": "slow down"}, {"Retry-After": "3600"})})
    clock = FakeClock()
    error = failure(fake.client(clock, backoff=Backoff(max_wait=60)), lambda c: c.read_org(ORG))
    assert isinstance(error, ApiError)
    assert (error.status, error.error_type) == (429, "too_many_requests")
    assert "lower --rate-limit" in str(error)
    assert "asked to retry after 3600 s" in error.message
    assert clock.sleeps == []


def test_a_200_that_cannot_be_read_names_what_is_wrong() -> None:
    fake = Fake({ROLES: reply(body=[{"id": "x", "name": "no level"}])})
    error = failure(fake.client(), lambda c: c.read_org(ORG))
    assert isinstance(error, ApiError)
    assert (error.status, error.error_type) == (200, "unexpected_response")
    assert error.message == "a 200 answer policysync cannot read: 0.level: Field required"
    assert "check ZENML_PRO_API_URL" in str(error)


# Self-hosted: below /api/v1 ----------------------------------------------------------------


@pytest.mark.parametrize("suffix", ["api/v1", "api/v1/"])
def test_a_url_ending_in_api_v1_works_against_the_emulator(suffix: str) -> None:
    store = write_seed()
    with serving(store) as server:
        endpoint = endpoint_from_env(
            {"ZENML_PRO_API_KEY": f"  {KEY} ", "ZENML_PRO_API_URL": server.url + suffix}
        )
        assert endpoint.base_url == server.url + "api/v1/"
        clock = FakeClock()
        client = ZenmlClient(endpoint, sleep=clock.sleep, clock=clock)
        assert client.project_id == server.url + "api/v1"
        log = Operations()

        async def calls(client: ZenmlClient) -> tuple[OrgPolicy, OrgPolicy, list[str]]:
            read = await client.read_org("tests")
            written = await client.write_org("tests", DESIRED, read, log=log)
            names = [o.organization_slug async for o in client.list_orgs()]
            return read, written, names

        read, written, names = run(client, calls)
        assert len(read.roles) == 4
        assert same_policy(written, DESIRED)
        assert names == ["tests"]
        assert len(log.landed) == 5
        assert server.wire.seen
        assert all(s.path.startswith("/api/v1/") for s in server.wire.seen)
        assert all(s.status == 200 for s in server.wire.seen)
