"""Push endpoints over HTTP, and pushes delivered to a real HTTPS receiver on loopback."""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from semafore.web.appkeys import MESSAGING, SERVICES
from support.appliance import Appliance, free_port
from support.relay_client import RELAY_TEST_CONFIG, RelayDevice, setup_world


@dataclass
class Receiver:
    """An HTTPS endpoint (certificate from the appliance's CA) that records every POST."""

    url: str
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)  # answered in order, then 200

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append((dict(request.headers), await request.read()))
        return web.Response(status=self.statuses.pop(0) if self.statuses else 200)

    async def wait_for(self, count: int, timeout: float = 5) -> None:
        async with asyncio.timeout(timeout):
            while len(self.requests) < count:
                await asyncio.sleep(0.02)


@pytest.fixture
async def receiver(appliance: Appliance) -> AsyncIterator[Receiver]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls = appliance.data_dir / "tls"
    context.load_cert_chain(tls / "server.crt", tls / "server.key")
    port = free_port()
    found = Receiver(f"https://127.0.0.1:{port}/hook")
    app = web.Application()
    app.router.add_post("/hook", found.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, ssl_context=context).start()
    yield found
    await runner.cleanup()


async def _setup(appliance: Appliance, start_server, ca: ssl.SSLContext) -> Any:  # type: ignore[no-untyped-def]
    push = {
        "ca_file": str(appliance.ca_path),
        "coalesce_seconds": 0.3,
        "min_interval_seconds": 0.3,
        "backoff_initial_seconds": 0.05,
        "max_attempts": 3,
    }
    appliance.configure(push=push, **RELAY_TEST_CONFIG)
    server = await start_server()
    world = await setup_world(server.app[SERVICES], [1, 1])
    alice_id, bob_id = list(world.members)
    alice = RelayDevice(server.url, ca, world.devices(alice_id)[0])
    bob = RelayDevice(server.url, ca, world.devices(bob_id)[0])
    return server, alice, bob


async def test_a_burst_to_an_offline_device_is_one_push_carrying_nothing_but_a_reference(
    appliance: Appliance, start_server, ca_ssl_context: ssl.SSLContext, receiver: Receiver,  # type: ignore[no-untyped-def]
) -> None:
    server, alice, bob = await _setup(appliance, start_server, ca_ssl_context)
    try:
        status, body = await bob.request("PUT", "/v1/push", {"kind": "webhook", "url": "http://x/"})
        assert status == 400 and body["code"] == "invalid_push_endpoint"
        endpoint = {"kind": "webhook", "url": receiver.url}
        status, body = await bob.request("PUT", "/v1/push", endpoint)
        assert status == 200 and body == {"kind": "webhook", "url": receiver.url}

        for _ in range(5):
            assert (await alice.send([bob.address]))[0] == 200
        await receiver.wait_for(1)
        await asyncio.sleep(0.5)
        assert len(receiver.requests) == 1
        _, raw = receiver.requests[0]
        payload = json.loads(raw)
        assert set(payload) == {"v", "type", "ref"} and payload["type"] == "wake"
        assert bob.address[0] not in raw.decode() and alice.address[0] not in raw.decode()

        # A failing receiver is retried with backoff; the send itself never waits for it.
        receiver.statuses = [503, 503]
        assert (await alice.send([bob.address]))[0] == 200
        await receiver.wait_for(4)
        stats = server.app[MESSAGING].push.stats
        assert stats.attempts == 4 and stats.delivered == 2

        # 410: the endpoint is gone and is forgotten.
        receiver.statuses = [410]
        await asyncio.sleep(0.35)
        assert (await alice.send([bob.address]))[0] == 200
        await receiver.wait_for(5)
        await asyncio.sleep(0.1)
        status, _ = await bob.request("GET", "/v1/push")
        assert status == 404
    finally:
        await alice.close()
        await bob.close()


async def test_a_device_with_a_live_socket_gets_no_push(
    appliance: Appliance, start_server, ca_ssl_context: ssl.SSLContext, receiver: Receiver,  # type: ignore[no-untyped-def]
) -> None:
    _, alice, bob = await _setup(appliance, start_server, ca_ssl_context)
    try:
        await bob.request("PUT", "/v1/push", {"kind": "unifiedpush", "url": receiver.url})
        ws = await bob.ws()
        await ws.until("queue_empty")
        assert (await alice.send([bob.address]))[0] == 200
        await ws.receive_items(1)
        await asyncio.sleep(0.5)
        assert receiver.requests == []
        await ws.close()
        status, _ = await bob.request("DELETE", "/v1/push")
        assert status == 204
    finally:
        await alice.close()
        await bob.close()
