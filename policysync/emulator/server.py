"""Running the emulator: in the foreground (the CLI), or in a background thread (tests,
benchmarks, the demo), always over a socket bound before the server starts, so that the
port is known, even when the system chose it (port 0)."""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import signal
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import TypeVar

import uvicorn
from pydantic import BaseModel, ValidationError
from starlette.types import ASGIApp

from policysync.config import Limits
from policysync.emulator import MAX_BODY_BYTES
from policysync.emulator.app import Api, create_app
from policysync.emulator.faults import FaultInjector, Faults
from policysync.emulator.seed import Seed, people_problem
from policysync.emulator.store import Store
from policysync.errors import ConfigError
from policysync.rules import ProjectIndex, check_org_policy, check_project

M = TypeVar("M", bound=BaseModel)

DEFAULT_PROJECT_ID = "project-test-00000000-0000-4000-8000-000000000000"
DEFAULT_SECRET = "secret-test-emulator-only-not-a-real-secret"


def read_model(path: Path, model: type[M]) -> M:
    """A seed file read as `model`; a bad file raises ConfigError naming what to fix."""
    try:
        return model.model_validate_json(path.read_bytes())
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the seed file: {exc.strerror or exc}") from None
    except ValidationError as exc:
        problems = "; ".join(
            f"{'/'.join(str(p) for p in e['loc']) or 'the document'}: {e['msg']}"
            for e in exc.errors()[:5]
        )
        raise ConfigError(f"{path}: not a valid seed file: {problems}") from None


def read_seed(path: Path, limits: Limits) -> Seed:
    """A Stytch seed file as a model; a bad file raises ConfigError naming what to fix."""
    seed = read_model(path, Seed)
    duplicates = check_project(seed.policy)
    if duplicates:
        raise ConfigError(f"{path}: {duplicates[0].message} (at {duplicates[0].pointer})")
    owner: dict[str, int] = {}  # id, slug or external id -> the organization it names
    for i, org in enumerate(seed.organizations):
        keys = {org.organization_id, org.organization_slug, org.organization_external_id}
        for key in sorted(k for k in keys if k is not None):
            other = owner.setdefault(key, i)
            if other != i:
                raise ConfigError(
                    f"{path}: organizations/{other} and organizations/{i} are both named "
                    f"{key!r} (ids, slugs and external ids must name one organization): "
                    "rename one"
                )
    index = ProjectIndex.of(seed.policy)
    for org in seed.organizations:
        findings = check_org_policy(org.org_policy, index, limits)
        errors = [f for f in findings if f.code != "resource-repeated"]
        if errors:
            raise ConfigError(
                f"{path}: organization {org.organization_id}: {errors[0].message} "
                f"(at {errors[0].pointer}); Stytch would never hold this policy"
            )
    problem = people_problem(seed)
    if problem is not None:
        raise ConfigError(f"{path}: {problem}: Stytch would never hold this state")
    return seed


def build(
    store: Store,
    project_id: str,
    secret: str,
    limits: Limits,
    faults: Faults | None = None,
    disabled_orgs: frozenset[str] = frozenset(),
    search_per_minute: int | None = None,
    max_body_bytes: int = MAX_BODY_BYTES,
) -> ASGIApp:
    api = Api(
        store,
        project_id,
        secret,
        limits,
        disabled_orgs,
        search_per_minute,
        max_body_bytes=max_body_bytes,
    )
    app = create_app(api)
    return FaultInjector(app, faults) if faults is not None and faults.any else app


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say so, and
    # without it every response waits ~40 ms for a delayed ACK (Nagle's algorithm).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6 and _unspecified(host):
        # `::` is every interface, IPv4 too, as on Linux by default (not on Windows)
        with contextlib.suppress(OSError, AttributeError):
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    sock.bind((host, port))
    # Listening from here on: a client that connects as soon as the URL is printed
    # waits in the backlog until the server accepts, instead of being refused.
    sock.listen(2048)
    return sock


def _unspecified(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_unspecified
    except ValueError:  # a name, or no address at all (bind says so)
        return False


def listens_everywhere(sock: socket.socket) -> bool:
    """Whether `sock` is bound to every interface (0.0.0.0 or ::)."""
    return _unspecified(sock.getsockname()[0])


def _ipv6_only(sock: socket.socket) -> bool:
    try:
        return sock.family == socket.AF_INET6 and bool(
            sock.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY)
        )
    except (OSError, AttributeError):
        return True


def base_url(sock: socket.socket) -> str:
    """The URL a client on this machine reaches `sock` at. A socket on every interface
    is reached through loopback, 127.0.0.1 (::1 for a `::` that takes no IPv4): 0.0.0.0
    is no address to connect to, and policysync sends credentials over plain http://
    to loopback only."""
    host, port = sock.getsockname()[:2]
    if listens_everywhere(sock):
        host = "::1" if _ipv6_only(sock) else "127.0.0.1"
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


class _QuietDrops(logging.Filter):
    """Injected dropped connections are reported by the fault injector itself."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "DroppedConnection" not in "".join(str(a) for a in (record.msg, record.exc_info))


_QUIET_DROPS = _QuietDrops()


def _server(app: ASGIApp, log_level: str) -> uvicorn.Server:
    logging.getLogger("uvicorn.error").addFilter(_QUIET_DROPS)  # once: filters are a set
    config = uvicorn.Config(app, log_level=log_level, access_log=False, lifespan="off")
    return uvicorn.Server(config)


def serve(app: ASGIApp, sock: socket.socket, announce: Callable[[], None]) -> None:
    """Call `announce` (it prints the URL), then serve in the foreground until Ctrl-C or
    SIGTERM, then return.

    uvicorn installs its signal handlers only once its event loop runs; a signal that
    came before (a Ctrl-C right after the URL is printed) raised KeyboardInterrupt
    wherever Python happened to be, even inside asyncio's loop machinery, which then
    left a loop it could not close (a traceback at exit), and a SIGTERM killed it. Its
    own handler, installed before the URL is announced, makes any signal from then on a
    request to stop."""
    server = _server(app, "warning")
    handled = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.signal(sig, server.handle_exit) for sig in handled}
    try:
        announce()
        server.run(sockets=[sock])
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class EmulatorThread:
    """The emulator in a background thread, for tests and benchmarks:

    with EmulatorThread(app) as emulator:
        httpx.get(emulator.url + "v1/b2b/rbac/policy", ...)
    """

    def __init__(self, app: ASGIApp, host: str = "127.0.0.1") -> None:
        self._sock = bind(host, 0)
        self.url = base_url(self._sock)
        self._server = _server(app, "error")
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )

    def __enter__(self) -> EmulatorThread:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the emulator did not start within 10 s")
            time.sleep(0.01)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._sock.close()
