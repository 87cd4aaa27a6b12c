from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from policysync.config import Limits
from policysync.emulator.seed import Seed
from policysync.emulator.server import DEFAULT_PROJECT_ID, DEFAULT_SECRET, EmulatorThread, build
from policysync.emulator.store import Store

ROOT = Path(__file__).parent.parent.parent
SEED_FILE = ROOT / "policies" / "emulator-seed.json"
PROJECT_ID, SECRET = DEFAULT_PROJECT_ID, DEFAULT_SECRET


def demo_seed() -> Seed:
    return Seed.model_validate(json.loads(SEED_FILE.read_text()))


@pytest.fixture
def store() -> Iterator[Store]:
    s = Store()
    s.load(demo_seed())
    yield s
    s.close()


@pytest.fixture
def emulator(store: Store) -> Iterator[EmulatorThread]:
    """The emulator over real HTTP on loopback, seeded with the demo seed."""
    with EmulatorThread(build(store, PROJECT_ID, SECRET, Limits())) as running:
        yield running
