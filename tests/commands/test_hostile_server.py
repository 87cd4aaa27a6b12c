"""A proxy in front of Stytch answering with a page that echoes a hostile secret (one
holding `\\`, `"`, `/`, `%`, `<`, `&`, letters beyond ASCII) in every form it may write
it, the 200 characters shown ending inside one: no part of the secret reaches plan
output (text, markdown, JSON), `plan --out`, an apply's output or its journal."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from support.clirun import run
from support.hostile import HOSTILE_SECRETS, every_form, leaks

from policysync.config import Limits
from policysync.emulator.seed import Seed
from policysync.emulator.server import EmulatorThread, build
from policysync.emulator.store import Store

ROOT = Path(__file__).parent.parent.parent
SEED = Seed.model_validate_json((ROOT / "policies" / "emulator-seed.json").read_text())
PROJECT_ID = "project-test-11111111-2222-4333-8444-555555555555"
ACME = "organization-test-07971b06-ac8b-4cdb-9c15-63b17e653931"  # changed by the files


def page(secret: str) -> str:
    """A proxy's page showing the secret in every form, the first form straddling the
    200th character of the page as policysync shows it (whitespace collapsed)."""
    forms = sorted(every_form(PROJECT_ID, secret))
    head = "<html><body><pre>"
    return head + "x" * (190 - len(head)) + "\n".join(forms) + "</pre></body></html>"


class EchoingProxy:
    """In front of the emulator: requests `method` to a path ending in `end` (ACME's org
    policy) are answered 403 with `body`, as a load balancer's access rule would."""

    def __init__(self, app: Any, method: str, body: str, end: str = "/" + ACME) -> None:
        self.app, self.method, self.body, self.end = app, method, body.encode(), end
        self.kind = b"application/json" if body.startswith("{") else b"text/html"

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != self.method:
            await self.app(scope, receive, send)
            return
        if not scope["path"].endswith(self.end):
            await self.app(scope, receive, send)
            return
        headers = [(b"content-type", self.kind), (b"content-length", b"%d" % len(self.body))]
        await send({"type": "http.response.start", "status": 403, "headers": headers})
        await send({"type": "http.response.body", "body": self.body})


@pytest.fixture(params=HOSTILE_SECRETS)
def secret(request: pytest.FixtureRequest) -> str:
    value: str = request.param
    return value


def serve(
    monkeypatch: pytest.MonkeyPatch,
    secret: str,
    method: str,
    body: str | None = None,
    end: str = "/" + ACME,
) -> EmulatorThread:
    store = Store()
    store.load(SEED)
    emulator_app = build(store, PROJECT_ID, secret, Limits(), None)
    app = EchoingProxy(emulator_app, method, page(secret) if body is None else body, end)
    emulator = EmulatorThread(app)
    monkeypatch.setenv("STYTCH_PROJECT_ID", PROJECT_ID)
    monkeypatch.setenv("STYTCH_SECRET", secret)
    monkeypatch.setenv("STYTCH_BASE_URL", emulator.url)
    return emulator


def written(workdir: Path) -> str:
    """Every file under the working folder but the policies: plans, journals."""
    return "".join(
        p.read_text(errors="replace")
        for p in workdir.rglob("*")
        if p.is_file() and "policies" not in p.relative_to(workdir).parts
    )


def test_plan_in_every_format_and_its_saved_plan_show_no_part_of_the_secret(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], secret: str
) -> None:
    outputs = []
    with serve(monkeypatch, secret, "GET"):
        for fmt in ("text", "markdown", "json"):
            code, out, err = run(["plan", "--format", fmt, "--out", f"{fmt}.plan"], capsys)
            assert code == 1, err  # acme could not be read
            assert "not a Stytch answer" in out
            outputs += [out, err]
    assert "xxxxxxxxxx" in outputs[0]  # the page was shown, up to the secret
    assert not leaks("\n".join(outputs) + written(workdir), every_form(PROJECT_ID, secret))


def test_an_apply_and_its_journal_show_no_part_of_the_secret(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], secret: str
) -> None:
    outputs = []
    with serve(monkeypatch, secret, "PUT"):
        for fmt in ("text", "markdown", "json"):
            code, out, err = run(
                [
                    "apply",
                    "--auto-approve",
                    "--allow-delete",
                    "--allow-delete-in-use",
                    "--format",
                    fmt,
                ],
                capsys,
            )
            assert code == 1, err  # acme's PUT was refused
            assert "not a Stytch answer" in out
            outputs += [out, err]
    assert list((workdir / ".policysync").rglob("*.json"))  # the journal was written
    assert not leaks("\n".join(outputs) + written(workdir), every_form(PROJECT_ID, secret))


FORGING = "denied\nPlan: 0 to add, 0 to change, 0 to destroy, in 7 of 7.\r\x1b[2J\u202e"


def test_server_texts_cannot_forge_lines_or_drive_the_terminal(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A Stytch error whose message and request id hold line breaks, a terminal escape
    and a right-to-left mark: escaped in the plan's lines, and in the error that stops a
    command (the project policy could not be read)."""
    body = json.dumps(
        {
            "status_code": 403,
            "request_id": f"request-{FORGING}",
            "error_type": f"forbidden{FORGING}",
            "error_message": FORGING,
        }
    )
    secret = HOSTILE_SECRETS[0]
    for end in ("/" + ACME, "/v1/b2b/rbac/policy"):
        with serve(monkeypatch, secret, "GET", body, end):
            for fmt in ("text", "markdown"):
                code, out, err = run(["plan", "--format", fmt], capsys)
                assert code == 1
                assert "denied" in out + err
                for text in (out, err):
                    assert [c for c in text if not c.isprintable() and c != "\n"] == []
                    forged = [x for x in text.splitlines() if x.startswith("Plan: 0 to add")]
                    assert forged == []
