"""A device that stops acking part-way through a frame gets every unacked envelope again on
reconnect (same server ids, same bytes, in order) and nothing it had acked."""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

from semafore.web.appkeys import SERVICES
from support.appliance import Appliance
from support.relay_client import RELAY_TEST_CONFIG, RelayDevice, WsClient, setup_world

MESSAGES = 300
FRAME = 25
ACKED = 110  # four whole frames and part of the fifth


async def backlog(ws: WsClient) -> list[dict[str, Any]]:
    await ws.until("queue_empty")
    return ws.received


async def test_stopping_acks_mid_frame_redelivers_exactly_the_unacked(
    appliance: Appliance, start_server: Any, ca_ssl_context: ssl.SSLContext
) -> None:
    appliance.configure(relay={"frame_max_envelopes": FRAME}, **RELAY_TEST_CONFIG)
    server = await start_server()
    world = await setup_world(server.app[SERVICES], [1, 1])
    alice, bob = (RelayDevice(server.url, ca_ssl_context, world.devices(u)[0])
                  for u in world.members)
    try:
        for start in range(0, MESSAGES, 50):
            answers = await asyncio.gather(*(alice.send([bob.address])
                                             for _ in range(start, start + 50)))
            assert {status for status, _ in answers} == {200}

        ws = await bob.ws()
        first = await backlog(ws)
        assert len(first) == MESSAGES
        ids = [item["id"] for item in first]
        assert len(set(ids)) == MESSAGES
        for offset in range(0, ACKED, 20):  # acks in several frames, the last mid-frame
            await ws.ack(ids[offset:min(offset + 20, ACKED)])
        async with asyncio.timeout(10):  # the acks have committed when the oldest is gone
            while (await bob.fetch(limit=1))[1]["messages"][0]["id"] != ids[ACKED]:
                await asyncio.sleep(0.02)
        await ws.close()

        again = await bob.ws()
        second = await backlog(again)
        assert [item["id"] for item in second] == ids[ACKED:]
        assert second == first[ACKED:]  # same ids, times and envelope bytes
        await again.ack(ids[ACKED:])
        async with asyncio.timeout(10):
            while (await bob.fetch(limit=1))[1]["messages"]:
                await asyncio.sleep(0.02)
        await again.close()

        last = await bob.ws()
        assert await backlog(last) == []
        await last.close()
    finally:
        await alice.close()
        await bob.close()
