"""Stale device lists are refused with the right ids; a revoked device is cut off at once."""

from __future__ import annotations

import asyncio

import aiohttp

from semafore.web.appkeys import SERVICES
from support.appliance import Appliance, run_semafore
from support.relay_client import send_body


def _ids(entries: list[dict]) -> set[tuple[str, int]]:  # type: ignore[type-arg]
    return {(e["user_id"], e["device_id"]) for e in entries}


async def test_stale_list_is_409_naming_missing_and_extra_and_nothing_is_stored(
    relay_env,  # type: ignore[no-untyped-def]
) -> None:
    world = await relay_env.world([1, 3])
    alice_id, bob_id = list(world.members)
    a1 = relay_env.device(world.devices(alice_id)[0])
    b1, b2, b3 = (c.address for c in world.devices(bob_id))
    ghost = (bob_id, 99)

    status, body = await a1.send([b1, b2, ghost])
    assert status == 409, body
    assert body["code"] == "device_list_stale"
    assert _ids(body["missing"]) == {b3}
    assert _ids(body["extra"]) == {ghost}
    assert await relay_env.total_depth() == 0

    # Targeting oneself is "extra" too: the sender never gets its own envelope.
    status, body = await a1.send([b1, b2, b3, a1.address])
    assert status == 409 and _ids(body["extra"]) == {a1.address}

    status, body = await a1.send([b1, b2, b3])
    assert status == 200 and body["stored"] == 3


async def test_same_msg_id_twice_is_stored_once_and_answered_the_same(
    relay_env,  # type: ignore[no-untyped-def]
) -> None:
    world = await relay_env.world([1, 1])
    alice_id, bob_id = list(world.members)
    a1 = relay_env.device(world.devices(alice_id)[0])
    b1 = relay_env.device(world.devices(bob_id)[0])
    first = await a1.send([b1.address], msg_id="retry-1")
    again = await a1.send([b1.address], msg_id="retry-1")
    assert first == again and first[0] == 200
    status, body = await b1.fetch()
    assert status == 200 and len(body["messages"]) == 1


async def test_revoked_device_socket_closes_queue_purged_later_sends_refused(
    relay_env,  # type: ignore[no-untyped-def]
) -> None:
    world = await relay_env.world([1, 2])
    alice_id, bob_id = list(world.members)
    a1 = relay_env.device(world.devices(alice_id)[0])
    b1, b2 = (relay_env.device(c) for c in world.devices(bob_id))

    ws = await b2.ws()
    await ws.until("queue_empty")
    status, body = await a1.send([b1.address, b2.address])
    assert status == 200
    await ws.receive_items(1)  # mid-stream: delivered, never acked

    services = relay_env.server.app[SERVICES]
    await services.devices.revoke(world.org_id, bob_id, b2.address[1], actor="operator")

    message = await ws.ws.receive(timeout=5)
    assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    assert ws.ws.close_code == 4003

    # Its queue is gone with it; sends naming it are refused as stale.
    assert await relay_env.total_depth() == 1  # only b1's row remains
    status, body = await a1.send([b1.address, b2.address])
    assert status == 409 and _ids(body["extra"]) == {b2.address}
    status, body = await a1.send([b1.address])
    assert status == 200
    # And its token no longer works anywhere.
    status, body = await b2.fetch()
    assert status == 401
    await ws.close()


async def test_a_revocation_from_the_cli_refuses_the_very_next_request(
    relay_env, appliance: Appliance,  # type: ignore[no-untyped-def]
) -> None:
    """`semafore device revoke` in another process: no grace period while the server catches up."""
    world = await relay_env.world([4])
    (member_id,) = list(world.members)
    devices = [relay_env.device(c) for c in world.devices(member_id)]
    sockets = [await d.ws() for d in devices]
    for device, ws in zip(devices, sockets, strict=True):
        await ws.until("queue_empty")
        status, _ = await device.fetch()
        assert status == 200  # the approval is cached in the server now

    for device, ws in zip(devices, sockets, strict=True):
        done = await asyncio.to_thread(
            run_semafore, "device", "revoke", world.org_id, member_id,
            str(device.address[1]), "--config", str(appliance.config_path),
        )
        assert done.returncode == 0, done.stderr
        status, body = await device.fetch()
        assert status == 401 and body["code"] == "session_revoked", body
        message = await ws.ws.receive(timeout=5)
        assert (message.type, message.data) == (aiohttp.WSMsgType.CLOSE, 4003), message
        await ws.close()


async def test_another_organisation_is_invisible(
    relay_env,  # type: ignore[no-untyped-def]
) -> None:
    world = await relay_env.world([1])
    other = await relay_env.world([1], phone_base=7700900500)
    (alice_id,) = list(world.members)
    (carol_id,) = list(other.members)
    a1 = relay_env.device(world.devices(alice_id)[0])
    c1 = other.devices(carol_id)[0]
    status, body = await a1.request(
        "POST", "/v1/messages", send_body(a1.address, [c1.address])
    )
    assert status == 404 and body["code"] == "recipient_not_found"
    status, body = await a1.request("GET", f"/v1/users/{carol_id}/devices")
    assert status == 404
    status, body = await a1.request("GET", f"/v1/users/{carol_id}/devices/1/bundle")
    assert status == 404
