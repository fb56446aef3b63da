"""Liveness and readiness probes against the real app over TLS."""

from __future__ import annotations

import aiohttp

from semafore.web.appkeys import SERVICES
from support.appliance import RunningServer


async def test_healthz_answers_ok(client: aiohttp.ClientSession) -> None:
    async with client.get("/healthz") as response:
        assert response.status == 200
        assert response.content_type == "application/json"
        assert await response.json() == {"status": "ok"}


async def test_readyz_is_ready_while_the_database_answers(client: aiohttp.ClientSession) -> None:
    async with client.get("/readyz") as response:
        assert response.status == 200
        assert await response.json() == {"status": "ready"}


async def test_readyz_is_503_when_the_database_is_closed(
    server: RunningServer, client: aiohttp.ClientSession
) -> None:
    async with client.get("/readyz") as response:
        assert response.status == 200
    await server.app[SERVICES].database.close()
    async with client.get("/readyz") as response:
        assert response.status == 503
        assert response.content_type == "application/problem+json"
        body = await response.json()
    assert body["code"] == "not_ready"
    async with client.get("/healthz") as response:
        assert response.status == 200  # liveness does not depend on the database
