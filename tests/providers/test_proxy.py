"""`policysync plan` through a forwarding HTTP proxy named by HTTP_PROXY, and around it when
NO_PROXY names the host: the proxy settings of the environment, read as httpx reads them.

httpx makes no exception for loopback: 127.0.0.1 goes through the proxy unless NO_PROXY
names it, so the emulator on 127.0.0.1 stands for a remote Stytch here.
"""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from support.clientkit import Counting, without_proxy_variables
from support.clirun import run
from support.emulated import PROJECT_ID, SECRET, SEED

from policysync.config import Limits
from policysync.emulator.server import EmulatorThread, build
from policysync.emulator.store import Store

HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te"}


class Forwarding(BaseHTTPRequestHandler):
    """A plain HTTP forward proxy: absolute-form requests, sent on to their origin."""

    protocol_version = "HTTP/1.1"  # keeps the client's connections alive
    timeout = 10  # an idle connection's thread ends
    server: Proxy

    def forward(self) -> None:
        self.server.record(self.path, self.client_address)
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        target = url.path + (f"?{url.query}" if url.query else "")
        origin = http.client.HTTPConnection(url.hostname or "", url.port, timeout=10)
        try:
            origin.request(self.command, target, body=body, headers=headers)
            answer = origin.getresponse()
            content = answer.read()
        finally:
            origin.close()
        self.send_response(answer.status, answer.reason)
        for name, value in answer.getheaders():
            if name.lower() not in HOP_BY_HOP | {"content-length"}:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        self.wfile.write(content)

    do_GET = do_PUT = do_POST = forward

    def log_message(self, format: str, *args: object) -> None:
        pass


class Proxy(ThreadingHTTPServer):
    """The proxy on 127.0.0.1, in threads; records each request's target and client."""

    daemon_threads = True
    block_on_close = False

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Forwarding)
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        self.targets: list[str] = []
        self.clients: set[tuple[str, int]] = set()
        self._lock = threading.Lock()

    def record(self, target: str, client: tuple[str, int]) -> None:
        with self._lock:
            self.targets.append(target)
            self.clients.add(client)


@pytest.fixture
def proxy() -> Iterator[Proxy]:
    server = Proxy()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture
def emulator(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Counting]]:
    """The emulator, its STYTCH_* variables set, and no proxy variable but the test's."""
    without_proxy_variables(monkeypatch)
    store = Store()
    store.load(SEED)
    app = Counting(build(store, PROJECT_ID, SECRET, Limits(), None))
    with EmulatorThread(app) as thread:
        monkeypatch.setenv("STYTCH_PROJECT_ID", PROJECT_ID)
        monkeypatch.setenv("STYTCH_SECRET", SECRET)
        monkeypatch.setenv("STYTCH_BASE_URL", thread.url)
        yield thread.url, app


def test_plan_goes_through_the_proxy_http_proxy_names(
    emulator: tuple[str, Counting],
    proxy: Proxy,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url, app = emulator
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    code, out, err = run(["plan", "--parallelism", "4"], capsys)
    assert code == 0, err
    assert "Plan: 2 to add, 2 to change, 1 to destroy" in out
    # Every request the emulator saw came through the proxy, in absolute form.
    origin = url.rstrip("/")
    assert len(proxy.targets) == len(app.paths) > 1
    assert sorted(proxy.targets) == sorted(origin + path for path in app.paths)
    assert origin + "/v1/b2b/rbac/policy" in proxy.targets
    assert len(proxy.clients) <= 4  # one kept-alive connection to the proxy per slot


@pytest.mark.parametrize("no_proxy", ["127.0.0.1", "localhost,127.0.0.1", "*"])
def test_no_proxy_naming_the_host_bypasses_it(
    no_proxy: str,
    emulator: tuple[str, Counting],
    proxy: Proxy,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, app = emulator
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.setenv("NO_PROXY", no_proxy)
    code, _, err = run(["plan"], capsys)
    assert code == 0, err
    assert app.paths
    assert proxy.targets == []


def test_https_proxy_is_not_used_for_an_http_base_url(
    emulator: tuple[str, Counting],
    proxy: Proxy,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    code, _, err = run(["plan"], capsys)
    assert code == 0, err
    assert proxy.targets == []
