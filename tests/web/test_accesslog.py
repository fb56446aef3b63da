"""Access log lines carry method, route template, status, bytes and time; nothing personal."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from semafore.web import json_response
from semafore.web.server import ACCESS_LOGGER
from support.appliance import RunningServer

PHONE = "+4915112345678"
TOKEN = "eyJhbGciOiJFZERTQSJ9.secret-token"


async def member(request: web.Request) -> web.Response:
    return json_response({"ok": True})


@pytest.fixture
async def server(start_server: Callable[..., Any]) -> RunningServer:
    return await start_server(
        configure=lambda app: app.router.add_get("/test/members/{phone}", member)
    )


async def test_access_log_has_no_query_ip_token_or_path_values(
    client: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger=ACCESS_LOGGER):
        headers = {"Authorization": f"Bearer {TOKEN}", "User-Agent": "probe/1.0"}
        async with client.get(f"/healthz?phone={PHONE}&token={TOKEN}", headers=headers) as r:
            assert r.status == 200
        async with client.get(f"/test/members/{PHONE}", headers=headers) as r:
            assert r.status == 200
        async with client.get(f"/unknown/{PHONE}") as r:
            assert r.status == 404
    lines = [r.getMessage() for r in caplog.records if r.name == ACCESS_LOGGER]
    assert len(lines) == 3, lines
    assert lines[0].startswith("GET /healthz 200 ")
    assert lines[1].startswith("GET /test/members/{phone} 200 ")
    assert lines[2].startswith("GET (unmatched) 404 ")
    everything = "\n".join(lines)
    for forbidden in (PHONE, "4915112345678", TOKEN, "?", "127.0.0.1", "probe/1.0", "Bearer"):
        assert forbidden not in everything
    assert all(line.endswith("ms") and "B " in line for line in lines)
