"""The emulator on loopback, with the sample seed, and the STYTCH_* variables set for it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from policysync.config import Limits
from policysync.emulator.seed import Seed
from policysync.emulator.server import EmulatorThread, build
from policysync.emulator.store import Store

ROOT = Path(__file__).parent.parent.parent
SEED = Seed.model_validate_json((ROOT / "policies" / "emulator-seed.json").read_text())
PROJECT_ID = "project-test-11111111-2222-4333-8444-555555555555"
SECRET = "secret-test-git-export-c2VjcmV0LWdpdA"


def emulator(monkeypatch: pytest.MonkeyPatch, seed: Seed = SEED) -> EmulatorThread:
    """An emulator to use as a context manager (`with emulator(monkeypatch) as live:`)."""
    store = Store()
    store.load(seed)
    thread = EmulatorThread(build(store, PROJECT_ID, SECRET, Limits(), None))
    monkeypatch.setenv("STYTCH_PROJECT_ID", PROJECT_ID)
    monkeypatch.setenv("STYTCH_SECRET", SECRET)
    monkeypatch.setenv("STYTCH_BASE_URL", thread.url)
    return thread


class Puts:
    """An emulator's app, recording the organization of each PUT it is sent."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.orgs: list[str] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "PUT":
            self.orgs.append(scope["path"].rsplit("/", 1)[-1])
        await self.app(scope, receive, send)
