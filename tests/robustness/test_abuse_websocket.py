"""Abusive WebSockets against a real ``semafore serve``: an oversized frame closes that socket
(1009) and nothing else; a socket that never reads while thousands of envelopes are queued for
it neither slows other clients nor lives past the heartbeat, and loses nothing."""

from __future__ import annotations

import asyncio
import base64
import os
import re
import ssl
import time

import aiohttp

from robustness.conftest import Served
from robustness.rawhttp import open_tls
from support.relay_client import RelayDevice
from support.streams import close_stream

FLOOD = 1500


def devices(served: Served, context: ssl.SSLContext) -> list[RelayDevice]:
    return [RelayDevice(served.url, context, served.world.devices(u)[0])
            for u in served.world.members]


async def open_sockets(http: aiohttp.ClientSession, url: str) -> float:
    async with http.get(url + "/metrics") as response:
        text = await response.text()
    return float(re.search(r"^semafore_relay_open_sockets (\S+)$", text, re.M)[1])  # type: ignore[index]


async def test_oversized_frame_closes_only_that_socket(
    served: Served, ca_ssl_context: ssl.SSLContext
) -> None:
    alice, bob, carol = devices(served, ca_ssl_context)
    try:
        bystander = await carol.ws()
        await bystander.until("queue_empty")
        ws = await alice.ws()
        await ws.until("queue_empty")
        await ws.ws.send_str("x" * 200_000)  # over send_max_bytes + 4 KiB
        message = await ws.ws.receive(timeout=5)
        assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED,
                                aiohttp.WSMsgType.ERROR)
        assert ws.ws.close_code in (1009, 1006)  # 1006: the unread rest aborts the TCP close
        await ws.close()
        assert (await alice.send([bob.address]))[0] == 200
        again = await alice.ws()
        await again.until("queue_empty")
        await again.close()
        await bystander.send_frame({"type": "ack", "ids": ["1"]})  # still open and served
        assert not bystander.ws.closed
        await bystander.close()
        status, queued = await bob.fetch()
        assert status == 200
        await bob.ack([m["id"] for m in queued["messages"]])
    finally:
        for device in (alice, bob, carol):
            await device.close()


async def test_socket_that_never_reads_slows_nobody_and_is_dropped_without_loss(
    served: Served, ca_ssl_context: ssl.SSLContext
) -> None:
    alice, bob, carol = devices(served, ca_ssl_context)
    reader, writer = await open_tls(served.url, ca_ssl_context)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write((f"GET /v1/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade"
                  f"\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                  f"Authorization: Bearer {bob.creds.access_token}\r\n\r\n").encode())
    await writer.drain()
    assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 101")
    # From here on bob's socket never reads: no frames, no pongs.
    latencies: list[float] = []
    ids: set[str] = set()
    try:
        async with asyncio.timeout(60):
            for _ in range(FLOOD // 50):
                results = await asyncio.gather(*(
                    alice.send([bob.address], ct=os.urandom(3000)) for _ in range(50)))
                assert {status for status, _ in results} == {200}
                started = time.monotonic()
                assert (await carol.send([alice.address]))[0] == 200
                latencies.append(time.monotonic() - started)
            assert max(latencies) < 4, latencies
            # The heartbeat (2 s) drops the socket that answers no ping.
            while await open_sockets(alice.session, served.url) > 0:
                await asyncio.sleep(0.25)
        await close_stream(writer)
        listener = await bob.ws()
        async with asyncio.timeout(30):
            while True:
                frame = await listener.next_frame()
                if frame["type"] == "envelopes":
                    ids.update(item["id"] for item in frame["items"])
                    await listener.ack([item["id"] for item in frame["items"]])
                if len(ids) >= FLOOD:
                    break
        await listener.close()
        assert len(ids) == FLOOD  # every envelope, once
    finally:
        await close_stream(writer)
        for device in (alice, bob, carol):
            await device.close()
    assert served.process.process.poll() is None
