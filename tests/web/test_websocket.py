"""The device WebSocket: authentication, sends and acks over frames, bad frames, oversize."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from semafore.web.appkeys import SERVICES
from support.appliance import Appliance
from support.relay_client import RELAY_TEST_CONFIG, RelayDevice, send_body, setup_world


@pytest.fixture
async def pair(
    appliance: Appliance, start_server: Any, ca_ssl_context: ssl.SSLContext
) -> AsyncIterator[tuple[RelayDevice, RelayDevice]]:
    relay = {"send_max_bytes": 65_536, "envelope_max_bytes": 4096, "auth_timeout_seconds": 0.5}
    appliance.configure(relay=relay,
                        **RELAY_TEST_CONFIG)
    server = await start_server()
    world = await setup_world(server.app[SERVICES], [1, 1])
    alice_id, bob_id = list(world.members)
    alice = RelayDevice(server.url, ca_ssl_context, world.devices(alice_id)[0])
    bob = RelayDevice(server.url, ca_ssl_context, world.devices(bob_id)[0])
    yield alice, bob
    await alice.close()
    await bob.close()


async def test_send_frames_are_answered_after_commit_and_delivered_in_batches(
    pair: tuple[RelayDevice, RelayDevice],
) -> None:
    alice, bob = pair
    sender, receiver = await alice.ws(), await bob.ws()
    ready = await receiver.next_frame()
    assert ready["type"] == "ready" and ready["device"]["device_id"] == bob.address[1]
    assert set(ready["pre_keys"]) == {"count", "refill_below", "refill"}
    await receiver.until("queue_empty")
    await sender.until("queue_empty")
    bodies = [send_body(alice.address, [bob.address]) for _ in range(50)]
    for body in bodies:
        await sender.send_frame({"type": "send", **body})
    answers = [await sender.until("sent") for _ in bodies]
    assert {a["msg_id"] for a in answers} == {b["msg_id"] for b in bodies}
    items = await receiver.receive_items(50)
    assert len({item["id"] for item in items}) == 50
    await receiver.ack([item["id"] for item in items])
    await sender.close()
    await receiver.close()


async def test_bad_frames_get_error_frames_and_the_socket_stays_open(
    pair: tuple[RelayDevice, RelayDevice],
) -> None:
    alice, bob = pair
    ws = await alice.ws()
    await ws.until("queue_empty")
    await ws.ws.send_str("{not json")
    assert (await ws.until("error"))["code"] == "invalid_json"
    await ws.send_frame({"type": "dance"})
    assert (await ws.until("error"))["code"] == "unknown_type"
    await ws.send_frame({"type": "ack", "ids": [1]})
    assert (await ws.until("error"))["code"] == "invalid_ack"
    await ws.ws.send_bytes(b"\x00")
    assert (await ws.until("error"))["code"] == "binary_not_supported"
    stale = send_body(alice.address, [(bob.address[0], 42)], msg_id="m-stale")
    await ws.send_frame({"type": "send", **stale})
    error = await ws.until("error")
    assert error["code"] == "device_list_stale" and error["msg_id"] == "m-stale"
    assert error["missing"] == [{"user_id": bob.address[0], "device_id": bob.address[1]}]
    await ws.send_frame({"type": "send", **send_body(alice.address, [bob.address])})
    assert (await ws.until("sent"))["stored"] == 1
    await ws.close()


async def test_oversize_frame_closes_with_1009(pair: tuple[RelayDevice, RelayDevice]) -> None:
    alice, _ = pair
    ws = await alice.ws()
    await ws.until("queue_empty")
    await ws.ws.send_str("x" * 80_000)
    message = await ws.ws.receive(timeout=5)
    assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    # The server closes with 1009; the rest of the frame is unread when it does, so the TCP
    # close may be abortive and the client may only see 1006.
    assert ws.ws.close_code in (1009, 1006)
    assert ws.ws.closed
    await ws.close()


async def test_first_frame_auth_rules(pair: tuple[RelayDevice, RelayDevice]) -> None:
    alice, _ = pair
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(ssl=alice.context)
    ) as session:
        async with session.ws_connect(alice.base_url + "/v1/ws") as ws:  # says nothing
            frame = await ws.receive_json(timeout=5)
            assert frame == {"type": "error", "code": "auth_timeout",
                             "message": "no auth frame in time"}
            await ws.receive(timeout=5)
            assert ws.close_code == 4001
        async with session.ws_connect(alice.base_url + "/v1/ws") as ws:
            await ws.send_json({"type": "auth", "token": "nope"})
            frame = await ws.receive_json(timeout=5)
            assert frame["type"] == "error" and frame["code"] == "token_invalid"
            await ws.receive(timeout=5)
            assert ws.close_code == 4001
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await session.ws_connect(
                alice.base_url + "/v1/ws", headers={"Authorization": "Bearer nope"}
            )
        assert refused.value.status == 401
