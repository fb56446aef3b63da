"""Push endpoints over HTTP, and pushes delivered to a real HTTPS receiver on loopback."""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from semafore.web.appkeys import MESSAGING, SERVICES
from support.appliance import Appliance, free_port
from support.relay_client import RELAY_TEST_CONFIG, RelayDevice, setup_world


@dataclass
class Receiver:
    """An HTTPS endpoint (certificate from the appliance's CA) that records every POST.

    Each POST is recorded before it is answered; while ``answering`` is clear the answer is held,
    so the push stays under way for as long as a test needs.
    """

    url: str
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)  # answered in order, then 200
    answering: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.answering.set()

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append((dict(request.headers), await request.read()))
        await self.answering.wait()
        return web.Response(status=self.statuses.pop(0) if self.statuses else 200)

    async def wait_for(self, count: int) -> None:
        await until(lambda: len(self.requests) >= count)


async def until(condition: Callable[[], bool], timeout: float = 15) -> None:
    """Wait for ``condition`` (a generous bound: it only fails if the push never comes)."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


def wake_payload(raw: bytes) -> dict[str, Any]:
    payload = json.loads(raw)
    assert set(payload) == {"v", "type", "ref"} and (payload["v"], payload["type"]) == (1, "wake")
    assert len(payload["ref"]) == 22  # 128 random bits, base64url, nothing else
    return payload


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
        "timeout_seconds": 60,  # a held or slow answer is never a timeout (and a retry) here
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
    stats = server.app[MESSAGING].push.stats
    try:
        status, body = await bob.request("PUT", "/v1/push", {"kind": "webhook", "url": "http://x/"})
        assert status == 400 and body["code"] == "invalid_push_endpoint"
        endpoint = {"kind": "webhook", "url": receiver.url}
        status, body = await bob.request("PUT", "/v1/push", endpoint)
        assert status == 200 and body == {"kind": "webhook", "url": receiver.url}

        # The burst is sent while the window is held open by the test, not by the clock: a first
        # push is under way (its answer held), so however slowly the sends commit, all five
        # notifications come before that push ends and become exactly one follow-up push.
        receiver.answering.clear()
        assert (await alice.send([bob.address]))[0] == 200
        await receiver.wait_for(1)
        for _ in range(5):
            assert (await alice.send([bob.address]))[0] == 200
        assert (stats.scheduled, stats.coalesced, stats.attempts) == (1, 4, 1)
        receiver.answering.set()
        await until(lambda: stats.delivered == 2)
        # Every notification is accounted for (scheduled or absorbed) and both pushes are
        # answered, so nothing is left to send: no waiting for a push that must not come.
        assert (stats.scheduled, stats.coalesced, stats.attempts, stats.failed) == (2, 4, 2, 0)
        assert len(receiver.requests) == 2
        refs = {wake_payload(raw)["ref"] for _, raw in receiver.requests}
        assert len(refs) == 2
        for _, raw in receiver.requests:
            assert bob.address[0] not in raw.decode() and alice.address[0] not in raw.decode()

        # A failing receiver is retried with backoff; the send itself never waits for it.
        receiver.statuses = [503, 503]
        assert (await alice.send([bob.address]))[0] == 200
        await until(lambda: stats.delivered == 3)
        assert (stats.scheduled, stats.attempts, stats.failed) == (3, 5, 0)
        assert len(receiver.requests) == 5

        # 410: the endpoint is gone and is forgotten (removed before the push counts as failed).
        receiver.statuses = [410]
        assert (await alice.send([bob.address]))[0] == 200
        await until(lambda: stats.failed == 1)
        assert (stats.scheduled, stats.attempts, stats.delivered) == (4, 6, 3)
        status, _ = await bob.request("GET", "/v1/push")
        assert status == 404

        # The same counts on /metrics.
        async with bob.session.get(server.url + "/metrics") as response:
            text = await response.text()
        counts = {"scheduled": 4, "coalesced": 4, "attempts": 6, "delivered": 3, "failed": 1}
        for name, count in counts.items():
            assert f"\nsemafore_push_{name}_total {count}.0\n" in text, name
    finally:
        receiver.answering.set()
        await alice.close()
        await bob.close()


async def test_a_device_with_a_live_socket_gets_no_push(
    appliance: Appliance, start_server, ca_ssl_context: ssl.SSLContext, receiver: Receiver,  # type: ignore[no-untyped-def]
) -> None:
    server, alice, bob = await _setup(appliance, start_server, ca_ssl_context)
    try:
        await bob.request("PUT", "/v1/push", {"kind": "unifiedpush", "url": receiver.url})
        ws = await bob.ws()
        await ws.until("queue_empty")
        assert (await alice.send([bob.address]))[0] == 200
        await ws.receive_items(1)
        # The hub reports offline devices to push before the send is answered: none was.
        stats = server.app[MESSAGING].push.stats
        assert (stats.scheduled, stats.coalesced) == (0, 0) and receiver.requests == []
        await ws.close()
        status, _ = await bob.request("DELETE", "/v1/push")
        assert status == 204
    finally:
        await alice.close()
        await bob.close()
