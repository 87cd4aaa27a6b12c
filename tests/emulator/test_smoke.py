from __future__ import annotations

import asyncio

import httpx

from policysync.config import Limits
from policysync.emulator.server import EmulatorThread, build
from policysync.emulator.store import Store

from .conftest import PROJECT_ID, SECRET


def test_in_process_through_asgi_transport(store: Store) -> None:
    app = build(store, PROJECT_ID, SECRET, Limits())

    async def get(path: str) -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://emulator", auth=(PROJECT_ID, SECRET)
        ) as client:
            return await client.get(path)

    response = asyncio.run(get("/v1/b2b/rbac/organizations/acme-42?organization_id=acme-42"))
    assert response.status_code == 200
    assert response.json()["org_policy"]["roles"][0]["role_id"] == "invoice-approver"


def test_real_http_on_loopback(emulator: EmulatorThread) -> None:
    assert emulator.url.startswith("http://127.0.0.1:")
    response = httpx.get(emulator.url + "v1/b2b/rbac/policy", auth=(PROJECT_ID, SECRET))
    assert response.status_code == 200
    assert response.json()["policy"]["resources"][0]["resource_id"] == "stytch.organization"
