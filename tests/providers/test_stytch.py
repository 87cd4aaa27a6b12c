"""The Stytch client against the emulator: in-process (httpx.ASGITransport), over loopback
HTTP with injected faults, and against scripted answers (httpx.MockTransport) for what the
emulator never says. Waits run on a fake clock wherever the test is not about real time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import random
import re
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
from pydantic import ValidationError
from starlette.types import ASGIApp
from support.clientkit import (
    PROJECT_ID,
    SECRET,
    TOKEN,
    FakeClock,
    Recorder,
    assert_secret_free,
    demo_seed,
    demo_store,
    endpoint,
    most_in_one_window,
    without_proxy_variables,
)
from support.hostile import HOSTILE_SECRETS, every_form, leaks

from policysync import __version__
from policysync.config import Limits
from policysync.emulator.faults import FaultInjector, Faults
from policysync.emulator.seed import Seed, SeedOrganization
from policysync.emulator.server import EmulatorThread, build
from policysync.emulator.store import Store
from policysync.errors import ApiError, TransportError, UsageError
from policysync.models import Organization, OrgPolicy, Permission, ProjectPolicy, Role
from policysync.providers import stytch as client_module
from policysync.providers.http import retry_after
from policysync.providers.pacing import Backoff
from policysync.providers.stytch import StytchClient

SEED = demo_seed()
ORGS = {o.organization_slug: o for o in SEED.organizations}
ACME = ORGS["acme"]
REQUEST_ID = re.compile(
    r"request-id-test-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
)
FAST = Backoff(attempts=12, base=0.01, cap=0.2)  # for real faults, waited for real


@pytest.fixture(autouse=True)
def no_proxy_from_the_caller(monkeypatch: pytest.MonkeyPatch) -> None:
    without_proxy_variables(monkeypatch)


def app_of(store: Store, faults: Faults | None = None, **options: Any) -> ASGIApp:
    return build(store, PROJECT_ID, SECRET, Limits(), faults, **options)


@contextlib.asynccontextmanager
async def in_process(app: ASGIApp, **options: Any) -> AsyncIterator[StytchClient]:
    transport = httpx.ASGITransport(app=app)
    async with StytchClient(endpoint(), transport=transport, **options) as client:
        yield client


@contextlib.contextmanager
def serving(app: ASGIApp) -> Iterator[str]:
    """The app over real HTTP on 127.0.0.1; yields its base URL."""
    with EmulatorThread(app) as emulator:
        yield emulator.url


def policy(
    *role_ids: str, resource: str = "documents", actions: tuple[str, ...] = ("read",)
) -> OrgPolicy:
    permission = Permission(resource_id=resource, actions=actions)
    return OrgPolicy(roles=tuple(Role(role_id=r, permissions=(permission,)) for r in role_ids))


# Scripted answers ---------------------------------------------------------------------

Answer = Callable[[httpx.Request], httpx.Response]


def reply(status: int = 200, body: Any = None, headers: dict[str, str] | None = None) -> Answer:
    """An answer: `body` as JSON, or as it is when bytes or str."""

    def answer(request: httpx.Request) -> httpx.Response:
        if isinstance(body, bytes | str):
            return httpx.Response(status, content=body, headers=headers)
        return httpx.Response(status, json=body, headers=headers)

    return answer


def fail(exc: Exception) -> Answer:
    def answer(request: httpx.Request) -> httpx.Response:
        raise exc

    return answer


def stytch_error(
    status: int, error_type: str, request_id: str = "request-id-test-1"
) -> dict[str, Any]:
    return {
        "status_code": status,
        "request_id": request_id,
        "error_type": error_type,
        "error_message": f"{error_type} happened.",
        "error_url": f"https://stytch.com/docs/api/errors/{status}#{error_type}",
    }


class Script:
    """A MockTransport handler giving its answers in turn, the last one for ever after."""

    def __init__(self, *answers: Answer) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        return answer(request)


def scripted(script: Script, clock: FakeClock | None = None, **options: Any) -> StytchClient:
    clock = clock or FakeClock()
    transport = httpx.MockTransport(script)
    return StytchClient(endpoint(), transport=transport, sleep=clock.sleep, clock=clock, **options)


def run_scripted(script: Script, call: Callable[[StytchClient], Any], **options: Any) -> Any:
    async def go() -> Any:
        async with scripted(script, **options) as client:
            return await call(client)

    return asyncio.run(go())


# Reading and writing, in-process ------------------------------------------------------


def test_project_policy() -> None:
    async def go() -> ProjectPolicy:
        async with in_process(app_of(demo_store())) as client:
            return await client.read_catalog()

    assert asyncio.run(go()) == SEED.policy


def test_org_policy_by_id_slug_and_external_id() -> None:
    keys = [ACME.organization_id, ACME.organization_slug, ACME.organization_external_id]
    assert all(keys)

    async def go() -> list[OrgPolicy]:
        async with in_process(app_of(demo_store())) as client:
            return [await client.read_org(k) for k in keys if k]

    assert asyncio.run(go()) == [ACME.org_policy] * 3


def test_path_parameters_are_percent_encoded_with_nothing_safe() -> None:
    odd = SeedOrganization(
        organization_id="organization-test-odd",
        organization_slug="..",
        organization_external_id="eu/tenant 42?#%",
        org_policy=policy("odd"),
    )
    store = demo_store(Seed(policy=SEED.policy, organizations=(*SEED.organizations, odd)))
    recorder = Recorder(app_of(store))

    async def go() -> list[OrgPolicy]:
        async with in_process(recorder) as client:
            return [await client.read_org(k) for k in ("..", "eu/tenant 42?#%")]

    assert asyncio.run(go()) == [odd.org_policy] * 2
    script = Script(reply(body={"org_policy": {"roles": []}}))
    run_scripted(script, lambda c: c.read_org("eu/tenant 42?#%"))
    assert (
        script.requests[0].url.raw_path == b"/v1/b2b/rbac/organizations/eu%2Ftenant%2042%3F%23%25"
    )


def test_set_org_policy_replaces_every_role_and_returns_the_echo() -> None:
    store = demo_store()
    desired = policy("auditor", "reviewer")

    async def go() -> tuple[OrgPolicy, OrgPolicy, OrgPolicy]:
        async with in_process(app_of(store)) as client:
            echoed = await client.write_org("acme", desired)
            read_back = await client.read_org(ACME.organization_id)
            emptied = await client.write_org("acme", OrgPolicy(roles=()))
            return echoed, read_back, emptied

    echoed, read_back, emptied = asyncio.run(go())
    assert echoed == read_back == desired
    assert emptied == OrgPolicy(roles=())
    stored = store.find("acme")
    assert stored is not None
    assert json.loads(stored.org_policy) == {"roles": []}


def test_search_pages_until_the_cursor_is_null() -> None:
    recorder = Recorder(app_of(demo_store()))

    async def go() -> list[Organization]:
        async with in_process(recorder) as client:
            return [o async for o in client.list_orgs(limit=2)]

    found = asyncio.run(go())
    assert len(recorder.arrivals) == 5  # 9 organizations, 2 a page
    expected = sorted(SEED.organizations, key=lambda o: o.organization_id)
    assert [
        (o.organization_id, o.organization_slug, o.organization_external_id, o.org_policy)
        for o in found
    ] == [
        (o.organization_id, o.organization_slug, o.organization_external_id, o.org_policy)
        for o in expected
    ]
    assert [o.organization_name for o in found] == [o.organization_name for o in expected]


def test_search_sends_limit_then_cursor_and_stops_a_cursor_loop() -> None:
    def page(cursor: str | None) -> Answer:
        org = {"organization_id": "o", "organization_slug": "s", "custom_roles": []}
        meta = {"total": 3, "next_cursor": cursor}
        return reply(body={"organizations": [org], "results_metadata": meta})

    async def collect(client: StytchClient) -> list[Organization]:
        return [o async for o in client.list_orgs(limit=7)]

    script = Script(page("c1"), page("c2"), page(None))
    assert len(run_scripted(script, collect)) == 3
    bodies = [json.loads(r.content) for r in script.requests]
    assert bodies == [{"limit": 7}, {"limit": 7, "cursor": "c1"}, {"limit": 7, "cursor": "c2"}]
    assert {r.method for r in script.requests} == {"POST"}

    with pytest.raises(ApiError, match="a cursor a second time") as caught:
        run_scripted(Script(page("c1"), page("c1")), collect)
    assert caught.value.error_type == "unexpected_response"


def test_every_request_carries_the_headers_of_the_contract() -> None:
    script = Script(
        reply(body={"policy": SEED.policy.model_dump(mode="json")}),
        reply(body={"org_policy": {"roles": []}}),
        reply(body={"organizations": [], "results_metadata": {"next_cursor": None}}),
    )

    async def go(client: StytchClient) -> None:
        await client.read_catalog()
        await client.write_org("acme", policy("auditor"))
        assert [o async for o in client.list_orgs()] == []

    run_scripted(script, go)
    assert [r.method for r in script.requests] == ["GET", "PUT", "POST"]
    for request in script.requests:
        assert request.headers["user-agent"] == f"policysync/{__version__}"
        assert request.headers["content-type"] == "application/json"
        assert request.headers["authorization"] == f"Basic {TOKEN}"
    assert json.loads(script.requests[1].content) == {
        "org_policy": {
            "roles": [
                {
                    "role_id": "auditor",
                    "description": "",
                    "permissions": [{"resource_id": "documents", "actions": ["read"]}],
                }
            ]
        }
    }


@pytest.mark.parametrize(
    ("org_policy", "expected"),
    [
        ({}, OrgPolicy(roles=())),
        (None, OrgPolicy(roles=())),
        ({"roles": None}, OrgPolicy(roles=())),
        (
            {
                "roles": [
                    {
                        "role_id": "r",
                        "permissions": [{"resource_id": "documents", "actions": ["read"]}],
                    }
                ]
            },
            policy("r"),
        ),
        (
            {"roles": [{"role_id": "r", "description": None, "permissions": None}]},
            OrgPolicy(roles=(Role(role_id="r", permissions=()),)),
        ),
    ],
)
def test_omitted_roles_and_descriptions_read_as_empty(org_policy: Any, expected: OrgPolicy) -> None:
    script = Script(reply(body={"request_id": "r", "status_code": 200, "org_policy": org_policy}))
    assert run_scripted(script, lambda c: c.read_org("acme")) == expected
    organization = {"organization_id": "o", "organization_slug": "s"}
    roles = (org_policy or {}).get("roles")
    organizations = [organization, {**organization, "custom_roles": roles}]
    script = Script(
        reply(body={"organizations": organizations, "results_metadata": {"next_cursor": None}})
    )

    async def collect(client: StytchClient) -> list[OrgPolicy]:
        return [o.org_policy async for o in client.list_orgs()]

    assert run_scripted(script, collect) == [OrgPolicy(roles=()), expected]


def test_unknown_fields_in_roles_are_refused_not_dropped() -> None:
    """A PUT replaces everything: policysync must not read what it could not write back."""
    role = {"role_id": "r", "description": "", "permissions": [], "conditions": {"ip": "10/8"}}
    body = {"request_id": "request-id-test-9", "org_policy": {"roles": [role]}}
    with pytest.raises(ApiError) as caught:
        run_scripted(Script(reply(body=body)), lambda c: c.read_org("acme"))
    error = caught.value
    assert (error.status, error.error_type, error.request_id) == (
        200,
        "unexpected_response",
        "request-id-test-9",
    )
    assert "org_policy.roles.0.conditions" in str(error)
    assert "upgrade" in str(error)


# Errors -------------------------------------------------------------------------------


def duplicate_roles() -> OrgPolicy:
    return OrgPolicy(roles=policy("twin").roles * 2)


@pytest.mark.parametrize(
    ("call", "options", "status", "error_type", "organization"),
    [
        (
            lambda c: c.read_catalog(),
            {"secret": "secret-test-wrong-one"},
            401,
            "unauthorized_credentials",
            None,
        ),
        (
            lambda c: c.read_org("acme"),
            {"secret": "secret-test-wrong-one"},
            401,
            "unauthorized_credentials",
            "acme",
        ),
        (lambda c: c.read_org("nobody"), {}, 404, "organization_not_found", "nobody"),
        (
            lambda c: c.write_org("nobody", policy("r")),
            {},
            404,
            "organization_not_found",
            "nobody",
        ),
        (
            lambda c: c.write_org("acme", duplicate_roles()),
            {},
            400,
            "rbac_role_duplicate",
            "acme",
        ),
        (
            lambda c: c.write_org("acme", policy("r", resource="payroll")),
            {},
            400,
            "invalid_permission_resource",
            "acme",
        ),
        (
            lambda c: c.write_org("acme", policy("stytch_admin")),
            {},
            400,
            "rbac_org_custom_roles_only",
            "acme",
        ),
        (
            lambda c: c.write_org("acme", policy("r", actions=("read", "*"))),
            {},
            400,
            "cannot_specify_wildcard_with_other_actions",
            "acme",
        ),
        (
            lambda c: c.read_org("globex"),
            {"disabled": True},
            401,
            "enterprise_endpoint",
            "globex",
        ),
        (
            lambda c: c.write_org("globex", policy("r")),
            {"disabled": True},
            401,
            "enterprise_endpoint",
            "globex",
        ),
    ],
)
def test_api_errors_are_typed_with_the_request_id_and_the_organization(
    call: Callable[[StytchClient], Any],
    options: dict[str, Any],
    status: int,
    error_type: str,
    organization: str | None,
) -> None:
    store = demo_store()
    disabled = frozenset({"globex"}) if options.get("disabled") else frozenset()
    recorder = Recorder(app_of(store, disabled_orgs=disabled))
    before = store.dump()

    async def go() -> None:
        transport = httpx.ASGITransport(app=recorder)
        secret = options.get("secret", SECRET)
        async with StytchClient(endpoint(secret=secret), transport=transport) as client:
            await call(client)

    with pytest.raises(ApiError) as caught:
        asyncio.run(go())
    error = caught.value
    assert (error.status, error.error_type, error.organization_id) == (
        status,
        error_type,
        organization,
    )
    assert error.request_id is not None
    assert REQUEST_ID.fullmatch(error.request_id)
    assert error.request_id in str(error)
    assert str(error).startswith(
        f"organization {organization}: " if organization else "Stytch answered"
    )
    assert len(recorder.arrivals) == 1  # a client error is not retried
    assert store.dump() == before
    assert_secret_free(error)


def test_success_is_exactly_200() -> None:
    for status in (201, 204, 302):
        script = Script(reply(status, {"org_policy": {"roles": []}}, {"location": "https://x/"}))
        with pytest.raises(ApiError) as caught:
            run_scripted(script, lambda c: c.read_org("acme"))
        assert (caught.value.status, caught.value.error_type) == (status, "unexpected_response")
        assert len(script.requests) == 1


def test_an_answer_that_is_not_stytchs() -> None:
    page = "<html><body><h1>404 Not Found</h1> nginx</body></html>"
    with pytest.raises(ApiError) as caught:
        run_scripted(Script(reply(404, page)), lambda c: c.read_org("acme"))
    error = caught.value
    assert (error.status, error.error_type, error.request_id) == (404, "unexpected_response", None)
    assert "HTTP 404 Not Found, not a Stytch answer" in str(error)
    assert "nginx" in str(error)
    assert "check STYTCH_BASE_URL" in str(error)

    with pytest.raises(ApiError, match=re.escape("redirected to https://stytch.example/")):
        run_scripted(
            Script(reply(301, "", {"location": "https://stytch.example/"})),
            lambda c: c.read_catalog(),
        )
    with pytest.raises(ApiError, match="cannot read: the body: Invalid JSON") as unreadable:
        run_scripted(Script(reply(200, "OK")), lambda c: c.read_catalog())
    assert unreadable.value.status == 200


def test_a_secret_echoed_by_a_server_or_in_httpx_errors_is_scrubbed() -> None:
    """Whatever a proxy or httpx puts in a text, the secret does not reach an error."""
    echo = f"Authorization: Basic {TOKEN} secret={SECRET}"
    cases: list[Answer] = [
        reply(502, echo),
        reply(400, {**stytch_error(400, "bad_request"), "error_message": echo}),
        reply(400, {**stytch_error(400, f"x{SECRET}"), "request_id": TOKEN}),
        reply(301, "", {"location": f"https://{PROJECT_ID}:{SECRET}@elsewhere/"}),
        fail(httpx.ConnectError(echo)),
        fail(httpx.ReadTimeout(echo)),
        fail(httpx.UnsupportedProtocol(echo)),
    ]
    for answer in cases:
        with pytest.raises((ApiError, TransportError)) as caught:
            run_scripted(Script(answer), lambda c: c.read_org("acme"))
        assert_secret_free(caught.value)
        assert "***" in str(caught.value)


@pytest.mark.parametrize("secret", HOSTILE_SECRETS)
def test_a_page_echoing_a_hostile_secret_in_any_form_shows_none_of_it(secret: str) -> None:
    """A proxy's page may write the secret escaped (JSON's `\\/`, HTML's `&amp;`,
    percent-encoding) and long enough that the 200 characters shown end inside it."""
    forms = every_form(PROJECT_ID, secret)
    pages = [f"<html><body>{form}</body></html>" for form in forms]
    pages += ["<p>" + "x" * (200 - 3 - inside) + form for form in forms for inside in (1, 9)]
    pages.append(json.dumps({"echo": secret, "again": secret.replace("/", "\\/")}))
    for page in pages:
        transport = httpx.MockTransport(Script(reply(403, page, {"content-type": "text/html"})))

        async def go(transport: httpx.MockTransport = transport) -> None:
            async with StytchClient(endpoint(secret=secret), transport=transport) as client:
                await client.read_org("acme")

        with pytest.raises(ApiError) as caught:
            asyncio.run(go())
        error = caught.value
        assert "not a Stytch answer" in error.message
        for text in (str(error), repr(error), repr(vars(error))):
            assert not leaks(text, forms), (page, text)


# Retries ------------------------------------------------------------------------------


def test_retry_after_is_a_floor_on_the_wait() -> None:
    clock = FakeClock()
    script = Script(
        reply(429, stytch_error(429, "too_many_requests"), {"Retry-After": "3"}),
        reply(503, stytch_error(503, "service_unavailable"), {"Retry-After": "2"}),
        reply(body={"org_policy": {"roles": []}}),
    )
    result = run_scripted(script, lambda c: c.read_org("acme"), clock=clock)
    assert result == OrgPolicy(roles=())
    assert len(script.requests) == 3
    assert len(clock.sleeps) == 2
    assert clock.sleeps[0] >= 3
    assert clock.sleeps[1] >= 2


def test_attempts_are_bounded_and_waits_capped() -> None:
    clock = FakeClock()
    script = Script(reply(500, stytch_error(500, "internal_server_error", "request-id-test-last")))
    with pytest.raises(ApiError) as caught:
        run_scripted(script, lambda c: c.read_org("acme"), clock=clock)
    error = caught.value
    assert len(script.requests) == 6
    assert len(clock.sleeps) == 5
    assert all(0 <= wait <= 8.0 for wait in clock.sleeps)
    assert (error.status, error.error_type, error.request_id) == (
        500,
        "internal_server_error",
        "request-id-test-last",
    )
    assert "gave up after 6 attempts" in str(error)
    assert "try again later" in str(error)


def test_429s_do_not_use_up_the_attempts_failures_have() -> None:
    # A busy rate limit may turn one request away many times over: more 429s than a
    # failing request has attempts, and 5xx between them, still end in the answer.
    clock = FakeClock()
    too_many = reply(429, stytch_error(429, "too_many_requests"), {"Retry-After": "1"})
    unavailable = reply(503, stytch_error(503, "service_unavailable"))
    answers = [too_many] * 10 + [unavailable] * 5 + [too_many] * 9
    script = Script(*answers, reply(body={"org_policy": {"roles": []}}))
    result = run_scripted(script, lambda c: c.read_org("acme"), clock=clock)
    assert result == OrgPolicy(roles=())
    assert len(script.requests) == 25


def test_429s_have_a_bound_too() -> None:
    clock = FakeClock()
    script = Script(reply(429, stytch_error(429, "too_many_requests"), {"Retry-After": "1"}))
    with pytest.raises(ApiError, match="gave up after 20 attempts") as caught:
        run_scripted(script, lambda c: c.read_org("acme"), clock=clock)
    assert caught.value.error_type == "too_many_requests"
    assert len(script.requests) == 20
    assert all(wait >= 1 for wait in clock.sleeps)


def test_a_retry_after_too_long_to_wait_ends_the_retries() -> None:
    clock = FakeClock()
    script = Script(reply(429, stytch_error(429, "too_many_requests"), {"Retry-After": "3600"}))
    with pytest.raises(ApiError, match="asked to retry after 3600 s, past the 120 s") as caught:
        run_scripted(script, lambda c: c.read_catalog(), clock=clock)
    assert caught.value.status == 429
    assert len(script.requests) == 1
    assert clock.sleeps == []


def test_the_waits_of_one_request_are_bounded_in_all() -> None:
    """A 429 asking for 60 s on every attempt was honoured 20 times (19 minutes of
    waiting for one request): the waits now stop at the 120 s a request may wait."""
    clock = FakeClock()
    busy = stytch_error(429, "too_many_requests", "request-id-test-busy")
    script = Script(reply(429, busy, {"Retry-After": "60"}))
    with pytest.raises(ApiError) as caught:
        run_scripted(script, lambda c: c.write_org("acme", policy("r")), clock=clock)
    assert clock.sleeps == [60.0, 60.0]  # the third would pass the 120 s: not waited
    assert sum(clock.sleeps) <= 120
    assert len(script.requests) == 3
    error = caught.value
    assert (error.status, error.error_type, error.request_id, error.organization_id) == (
        429,
        "too_many_requests",
        "request-id-test-busy",
        "acme",
    )
    assert str(error) == (
        "organization acme: Stytch answered 429 too_many_requests: too_many_requests "
        "happened. (gave up after 3 attempts and 120 s of waiting: asked to retry after "
        "60 s, past the 120 s a request may wait in all; raise requests.max_wait_seconds "
        "in the settings file to wait longer) (request id request-id-test-busy); "
        "lower --rate-limit"
    )


@pytest.mark.parametrize("max_wait", [0.0, 0.3, 2.5, 7.0])
def test_backoff_waits_are_cut_to_what_is_left(max_wait: float) -> None:
    """Failures back off too: their waits, summed, never pass the limit either."""

    class Highest(random.Random):
        def uniform(self, a: float, b: float) -> float:
            return b

    clock = FakeClock()
    script = Script(reply(503, stytch_error(503, "service_unavailable")))
    backoff = Backoff(max_wait=max_wait)
    with pytest.raises(ApiError, match=r"requests\.max_wait_seconds") as caught:
        run_scripted(
            script, lambda c: c.read_org("acme"), clock=clock, backoff=backoff, rng=Highest()
        )
    assert sum(clock.sleeps) == pytest.approx(max_wait)
    assert f"and {max_wait:g} s of waiting: the {max_wait:g} s a request may wait" in str(
        caught.value
    )


def test_a_retry_after_past_what_is_left_fails_at_once() -> None:
    clock = FakeClock()
    script = Script(
        reply(429, stytch_error(429, "too_many_requests"), {"Retry-After": "60"}),
        reply(429, stytch_error(429, "too_many_requests"), {"Retry-After": "50"}),
    )
    with pytest.raises(ApiError, match="after 50 s, past the 100 s"):
        run_scripted(
            script, lambda c: c.read_org("acme"), clock=clock, backoff=Backoff(max_wait=100)
        )
    assert clock.sleeps == [60.0]  # 40 s were left: the 50 asked were not slept at all
    assert len(script.requests) == 2


DATE = "Tue, 01 Dec 2026 10:00:00 GMT"


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "7"}, 7.0),
        ({"Retry-After": " 2.5 "}, 2.5),
        ({"Retry-After": "Tue, 01 Dec 2026 10:00:30 GMT", "Date": DATE}, 30.0),
        ({"Retry-After": "Tuesday, 01-Dec-26 10:01:00 GMT", "Date": DATE}, 60.0),  # RFC 850
        ({"Retry-After": "Tue, 01 Dec 2026 09:00:00 GMT", "Date": DATE}, 0.0),  # past
        ({"Retry-After": "Mon, 01 Jan 2024 00:00:00 GMT"}, 0.0),  # past, without Date
        ({"Retry-After": "9" * 400}, math.inf),  # huge: kept, for the limit to refuse
        ({"Retry-After": "-5"}, None),
        ({"Retry-After": "soon"}, None),
        ({"Retry-After": "nan"}, None),
        ({"Retry-After": "inf"}, None),
        ({"Retry-After": "1e3"}, None),
        ({"Retry-After": "\u0663".encode()}, None),  # an Arabic-Indic three, not HTTP's
        ({"Retry-After": ""}, None),
        ({}, None),
    ],
)
def test_retry_after_as_seconds_or_an_http_date(
    headers: dict[str, str | bytes], expected: float | None
) -> None:
    assert retry_after(httpx.Response(429, headers=headers)) == expected


@pytest.mark.parametrize(
    ("value", "sleeps", "requests"),
    [
        ("-5", [0.5], 2),  # unreadable: the backoff's own wait
        ("soon", [0.5], 2),
        ("9" * 400, [], 1),  # huge: fails at once
        ("Fri, 31 Dec 9999 23:59:59 GMT", [], 1),  # an HTTP date far ahead: at once too
    ],
)
def test_absurd_retry_afters_neither_hang_nor_crash(
    value: str, sleeps: list[float], requests: int
) -> None:
    class Highest(random.Random):
        def uniform(self, a: float, b: float) -> float:
            return b

    clock = FakeClock()
    script = Script(
        reply(429, stytch_error(429, "too_many_requests"), {"Retry-After": value}),
        reply(body={"org_policy": {"roles": []}}),
    )
    if requests == 1:
        with pytest.raises(ApiError, match=r"past the 120 s.*raise requests\.max_wait_seconds"):
            run_scripted(script, lambda c: c.read_org("acme"), clock=clock, rng=Highest())
    else:
        result = run_scripted(script, lambda c: c.read_org("acme"), clock=clock, rng=Highest())
        assert result == OrgPolicy(roles=())
    assert clock.sleeps == sleeps
    assert len(script.requests) == requests


@pytest.mark.parametrize(
    ("exc", "error_type"),
    [
        (httpx.ConnectError("refused"), "connection_error"),
        (httpx.ReadError("reset"), "connection_error"),
        (httpx.RemoteProtocolError("server disconnected"), "connection_error"),
        (httpx.ReadTimeout("slow"), "timeout"),
        (httpx.ConnectTimeout("slow"), "timeout"),
    ],
)
def test_transport_faults_are_retried_then_raised(exc: Exception, error_type: str) -> None:
    clock = FakeClock()
    script = Script(fail(exc))
    with pytest.raises(TransportError) as caught:
        run_scripted(script, lambda c: c.write_org("acme", policy("r")), clock=clock)
    error = caught.value
    assert [r.method for r in script.requests].count("PUT") == 6
    assert (error.status, error.error_type, error.request_id, error.organization_id) == (
        None,
        error_type,
        None,
        "acme",
    )
    assert str(error).startswith(
        f"organization acme: {error_type}: no answer from http://127.0.0.1/"
    )
    assert "gave up after 6 attempts" in str(error)
    assert_secret_free(error)


def test_faults_that_do_not_pass_are_not_retried() -> None:
    script = Script(fail(httpx.UnsupportedProtocol("no")))
    with pytest.raises(TransportError):
        run_scripted(script, lambda c: c.read_catalog())
    assert len(script.requests) == 1


def test_retries_recover() -> None:
    script = Script(
        fail(httpx.ConnectError("refused")),
        reply(502, "Bad Gateway"),
        reply(429, stytch_error(429, "too_many_requests")),
        reply(body={"org_policy": policy("r").model_dump(mode="json")}),
    )
    assert run_scripted(script, lambda c: c.write_org("acme", policy("r"))) == policy("r")
    # A refused connection: the PUT was not carried out, it is sent again. A 502: it may
    # have been, so live is read first; that read is answered 429, read again, and found
    # to be the policy sent: done, without a third PUT.
    assert [r.method for r in script.requests] == ["PUT", "PUT", "GET", "GET"]


LIVE_OLD = {"org_policy": policy("old").model_dump(mode="json")}
LIVE_NEW = {"org_policy": policy("r").model_dump(mode="json")}


@pytest.mark.parametrize(
    "lost",
    [
        fail(httpx.ReadError("reset after sending")),
        fail(httpx.RemoteProtocolError("server disconnected")),
        fail(httpx.ReadTimeout("slow")),
        reply(503, stytch_error(503, "service_unavailable")),
    ],
)
def test_a_put_whose_outcome_is_unknown_is_settled_by_reading_live(lost: Answer) -> None:
    """The PUT landed, its answer was lost: live already equals it, it is not sent again."""
    script = Script(lost, reply(body=LIVE_NEW))
    assert run_scripted(script, lambda c: c.write_org("acme", policy("r"))) == policy("r")
    assert [r.method for r in script.requests] == ["PUT", "GET"]
    assert script.requests[1].url.path == "/v1/b2b/rbac/organizations/acme"


def test_a_put_that_did_not_land_is_sent_again_after_reading_live() -> None:
    script = Script(
        fail(httpx.ReadError("reset after sending")), reply(body=LIVE_OLD), reply(body=LIVE_NEW)
    )
    assert run_scripted(script, lambda c: c.write_org("acme", policy("r"))) == policy("r")
    assert [r.method for r in script.requests] == ["PUT", "GET", "PUT"]


def test_a_put_refused_before_sending_is_sent_again_without_reading() -> None:
    script = Script(fail(httpx.ConnectError("refused")), reply(body=LIVE_NEW))
    assert run_scripted(script, lambda c: c.write_org("acme", policy("r"))) == policy("r")
    assert [r.method for r in script.requests] == ["PUT", "PUT"]


LOST_AFTER_SENDING = fail(httpx.RemoteProtocolError("server disconnected"))
UNAVAILABLE = reply(503, stytch_error(503, "service_unavailable"))


@pytest.mark.parametrize(
    ("answers", "unknown"),
    [
        # may have landed: an answer lost after sending, a timeout waiting for it, a 5xx,
        # while every read of live to settle it failed too
        ((LOST_AFTER_SENDING, UNAVAILABLE), True),
        ((fail(httpx.ReadError("reset after sending")), UNAVAILABLE), True),
        ((fail(httpx.ReadTimeout("slow")), UNAVAILABLE), True),
        ((fail(httpx.WriteTimeout("slow")), UNAVAILABLE), True),
        ((UNAVAILABLE,), True),
        # a 200 whose body cannot be read: carried out, what was stored unknown
        ((reply(200, "<html>ok</html>"),), True),
        # an attempt that may have landed stays so, whatever the last one met
        ((LOST_AFTER_SENDING, fail(httpx.ConnectError("refused"))), True),
        # known not to have landed: never sent, or turned away
        ((fail(httpx.ConnectError("refused")),), False),
        ((fail(httpx.ConnectTimeout("slow")),), False),
        ((reply(400, stytch_error(400, "invalid_org_policy")),), False),
        ((reply(404, stytch_error(404, "organization_not_found")),), False),
        ((reply(429, stytch_error(429, "too_many_requests")),), False),
        ((fail(httpx.ConnectError("refused")), reply(400, stytch_error(400, "bad"))), False),
    ],
)
def test_a_failed_put_says_whether_it_may_have_landed(
    answers: tuple[Answer, ...], unknown: bool
) -> None:
    script = Script(*answers)
    with pytest.raises((ApiError, TransportError)) as caught:
        run_scripted(script, lambda c: c.write_org("acme", policy("r")))
    assert caught.value.outcome_unknown is unknown
    assert_secret_free(caught.value)


def test_options_are_checked() -> None:
    with pytest.raises(UsageError, match="parallelism"):
        StytchClient(endpoint(), parallelism=0)
    with pytest.raises(UsageError, match="rate limit"):
        StytchClient(endpoint(), rate_limit=0)
    with pytest.raises(UsageError, match="cannot be empty"):
        run_scripted(Script(reply()), lambda c: c.read_org(""))


# Pacing -------------------------------------------------------------------------------


def test_rate_limit_on_a_fake_clock_reaches_the_ceiling_and_never_passes_it() -> None:
    clock = FakeClock()
    recorder = Recorder(app_of(demo_store()), clock)

    async def go() -> list[OrgPolicy]:
        async with in_process(recorder, rate_limit=10, sleep=clock.sleep, clock=clock) as client:
            return await asyncio.gather(*(client.read_org("acme") for _ in range(35)))

    assert asyncio.run(go()) == [ACME.org_policy] * 35
    assert len(recorder.arrivals) == 35
    assert most_in_one_window(recorder.arrivals) == 10
    assert recorder.arrivals[-1] - recorder.arrivals[0] == pytest.approx(3 * 1.05)


def test_rate_limit_over_http_never_draws_a_429() -> None:
    """The emulator limiting to the same R per wall-clock second refuses nothing, and no
    one-second window at the server holds more than R arrivals.

    Two in flight, not more: here the server shares the test's process, and the GIL makes
    a queue of concurrent arrivals wait for each other (on a loaded machine, longer than
    the limiter's guard), so arrival times would stop telling start times.
    The fake-clock test above checks the limiter at full parallelism, exactly.
    """
    rate, count = 10, 21
    injector = app_of(demo_store(), Faults(rate_limit=rate))
    assert isinstance(injector, FaultInjector)
    recorder = Recorder(injector)

    async def go(url: str) -> list[OrgPolicy]:
        options: dict[str, Any] = {"rate_limit": rate, "parallelism": 2, "backoff": Backoff(1)}
        async with StytchClient(endpoint(url), **options) as client:
            return await asyncio.gather(*(client.read_org("acme") for _ in range(count)))

    with serving(recorder) as url:
        start = time.monotonic()
        assert asyncio.run(go(url)) == [ACME.org_policy] * count
        elapsed = time.monotonic() - start
    assert injector.stats["429"] == 0
    assert set(recorder.statuses) == {200}
    assert most_in_one_window(recorder.arrivals) == rate
    assert elapsed >= 2 * 1.05  # 21 requests at 10 a second: two waits for a window


def test_parallelism_bounds_requests_in_flight_and_connections() -> None:
    recorder = Recorder(app_of(demo_store(), Faults(latency_ms=(40, 40))))

    async def go(url: str) -> list[OrgPolicy]:
        async with StytchClient(endpoint(url), parallelism=4) as client:
            return await asyncio.gather(*(client.read_org("acme") for _ in range(24)))

    with serving(recorder) as url:
        assert asyncio.run(go(url)) == [ACME.org_policy] * 24
    assert recorder.max_in_flight == 4
    assert len(recorder.connections) <= 4  # kept alive and reused


def test_retry_after_over_http() -> None:
    injector = app_of(demo_store(), Faults(rate_limit=2))
    recorder = Recorder(injector)
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        await asyncio.sleep(seconds)

    async def go(url: str) -> list[OrgPolicy]:
        async with StytchClient(endpoint(url), parallelism=1, sleep=sleep) as client:
            return await asyncio.gather(*(client.read_org("acme") for _ in range(3)))

    with serving(recorder) as url:
        if time.time() % 1.0 > 0.7:  # three requests in one window: the third is refused
            time.sleep(1.0 - time.time() % 1.0)
        assert asyncio.run(go(url)) == [ACME.org_policy] * 3
    assert recorder.statuses[429] == len(recorder.retry_afters) == len(waits) >= 1
    assert all(wait >= asked for wait, asked in zip(waits, recorder.retry_afters, strict=True))


# Faults over real HTTP ----------------------------------------------------------------

# The 5xx and drops a seed gives are the same in every run (the injector draws them in
# arrival order, whatever that order is). The 429s are certain too: the 27 concurrent
# reads of org policies arrive within a second, so within two of the server's windows,
# which accept 2 * 12 of them at most.
FAULTS = Faults(rate_limit=12, error_rate=0.25, drop_rate=0.15, seed=11)
Snapshot = tuple[ProjectPolicy, list[Organization], dict[str, OrgPolicy]]


async def read_everything(client: StytchClient) -> Snapshot:
    """The project policy, every organization, and every org policy by each of its names."""
    project = await client.read_catalog()
    organizations = [o async for o in client.list_orgs(limit=2)]
    keys = [
        key
        for o in organizations
        for key in (o.organization_id, o.organization_slug, o.organization_external_id)
        if key
    ]
    policies = await asyncio.gather(*(client.read_org(key) for key in keys))
    return project, organizations, dict(zip(keys, policies, strict=True))


def test_reads_under_faults_equal_a_clean_read() -> None:
    snapshots: list[Snapshot] = []
    for faults in (None, FAULTS):
        app = app_of(demo_store(), faults)
        with serving(app) as url:

            async def go(url: str = url) -> Snapshot:
                async with StytchClient(endpoint(url), backoff=FAST) as client:
                    return await read_everything(client)

            snapshots.append(asyncio.run(go()))
        if isinstance(app, FaultInjector):
            kinds = ("429", "5xx", "dropped_before", "dropped_after")
            assert all(app.stats[k] > 0 for k in kinds), app.stats
    clean, faulty = snapshots
    assert faulty == clean
    project, organizations, policies = clean
    assert project == SEED.policy
    assert len(organizations) == len(SEED.organizations)
    assert {k: p for k, p in policies.items() if k in ORGS} == {
        s: o.org_policy for s, o in ORGS.items()
    }


def test_writes_under_faults_end_where_clean_writes_do() -> None:
    """Dropped after handling or before: a retried PUT ends in the same state."""
    organizations = SEED.organizations
    rotated = [o.org_policy for o in organizations[1:] + organizations[:1]]
    states = []
    for faults in (None, FAULTS):
        store = demo_store()
        with serving(app_of(store, faults)) as url:

            async def go(url: str = url) -> list[OrgPolicy]:
                async with StytchClient(endpoint(url), backoff=FAST) as client:
                    writes = (
                        client.write_org(o.organization_slug, p)
                        for o, p in zip(organizations, rotated, strict=True)
                    )
                    return await asyncio.gather(*writes)

            assert asyncio.run(go()) == rotated
        states.append(store.dump())
        store.close()
    assert states[0] == states[1]
    assert [o.org_policy for o in states[0].organizations] != [o.org_policy for o in organizations]


def test_no_server_is_a_transport_error() -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/"
    clock = FakeClock()

    async def go() -> None:
        async with StytchClient(endpoint(url), sleep=clock.sleep) as client:
            await client.read_org("acme")

    expected = f"organization acme: connection_error: no answer from {url}"
    with pytest.raises(TransportError, match=re.escape(expected)) as caught:
        asyncio.run(go())
    assert len(clock.sleeps) == 5
    assert "check STYTCH_BASE_URL and the network" in str(caught.value)
    assert_secret_free(caught.value)


def test_a_slow_server_is_a_timeout() -> None:
    clock = FakeClock()

    async def go(url: str) -> None:
        options: dict[str, Any] = {
            "timeout": 0.05,
            "backoff": Backoff(attempts=2),
            "sleep": clock.sleep,
        }
        async with StytchClient(endpoint(url), **options) as client:
            await client.read_catalog()

    slow = app_of(demo_store(), Faults(latency_ms=(300, 300)))
    with serving(slow) as url, pytest.raises(TransportError) as caught:
        asyncio.run(go(url))
    assert caught.value.error_type == "timeout"
    assert "ReadTimeout" in str(caught.value)
    assert len(clock.sleeps) == 1


def test_a_body_is_compact_utf8_json() -> None:
    """As httpx encodes `json=`: no spaces, non-ASCII as UTF-8, not escaped."""
    script = Script(reply(body={"org_policy": {"roles": []}}))
    described = Role(role_id="lecteur", description="Lit tout, écrit « rien »", permissions=())
    wanted = OrgPolicy(roles=(described,))
    run_scripted(script, lambda c: c.write_org("acme", wanted))
    expected = {"org_policy": wanted.model_dump(mode="json")}
    assert script.requests[0].content == json.dumps(
        expected, ensure_ascii=False, separators=(",", ":")
    ).encode("utf-8")


def test_a_complete_answer_is_read_exactly_and_a_lenient_one_the_same_way() -> None:
    """The exact reading (no Python, tried first) and the lenient one agree: a complete
    answer reads the same both ways, and one with nulls falls back to the lenient one."""
    complete = {"org_policy": policy("r", "s").model_dump(mode="json"), "request_id": "x"}
    with_nulls = {
        "org_policy": {"roles": [{"role_id": "r", "description": None, "permissions": None}]}
    }
    exact = client_module._ExactOrgPolicyAnswer.model_validate(complete)
    lenient = client_module._OrgPolicyAnswer.model_validate(complete)
    assert exact.org_policy == lenient.org_policy == policy("r", "s")
    with pytest.raises(ValidationError):
        client_module._ExactOrgPolicyAnswer.model_validate(with_nulls)
    script = Script(reply(body=complete), reply(body=with_nulls))

    async def both(c: StytchClient) -> list[OrgPolicy]:
        return [await c.read_org("a"), await c.read_org("b")]

    assert run_scripted(script, both) == [
        policy("r", "s"),
        OrgPolicy(roles=(Role(role_id="r", permissions=()),)),
    ]


def test_a_client_may_be_entered_again_in_another_event_loop() -> None:
    """apply without a saved plan plans in one run of the event loop, asks, then writes
    in another: the same provider serves both, its slots opened anew each time."""
    recorder = Recorder(app_of(demo_store()))
    client = StytchClient(endpoint(), transport=httpx.ASGITransport(app=recorder))

    async def read() -> ProjectPolicy:
        async with client:
            return await client.read_catalog()

    assert asyncio.run(read()) == asyncio.run(read())
    assert len(recorder.arrivals) == 2
    with pytest.raises(RuntimeError, match="async with"):
        asyncio.run(client.read_catalog())
