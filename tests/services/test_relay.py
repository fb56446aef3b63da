"""Sending rules: routing-field checks, limits, queue caps, idempotency, acks by owner only."""

from __future__ import annotations

from pathlib import Path

import pytest

from semafore.services import InvalidInput, LimitReached, TooLarge
from support.relay_client import envelope, messaging_env, send_body


async def test_queue_caps_refuse_the_sender_and_never_drop(tmp_path: Path) -> None:
    async with messaging_env(tmp_path, relay={"queue_max_messages": 3}) as env:
        world = await env.world([1, 1])
        alice_id, bob_id = list(world.members)
        alice, bob = world.devices(alice_id)[0], world.devices(bob_id)[0]
        relay = env.messaging.relay
        for _ in range(3):
            await relay.send(alice.address, world.org_id, send_body(alice.address, [bob.address]))
        with pytest.raises(LimitReached) as caught:
            await relay.send(alice.address, world.org_id, send_body(alice.address, [bob.address]))
        assert caught.value.code == "queue_full"
        assert caught.value.details["devices"] == [
            {"user_id": bob.user_id, "device_id": bob.device_id}
        ]
        rows, more = await relay.fetch(bob.address, None)
        assert len(rows) == 3 and not more
        assert await relay.ack(bob.address, [str(rows[0].id)]) == 1
        await relay.send(alice.address, world.org_id, send_body(alice.address, [bob.address]))


async def test_envelope_and_request_limits(tmp_path: Path) -> None:
    async with messaging_env(tmp_path, relay={"envelope_max_bytes": 1024}) as env:
        world = await env.world([1, 1])
        alice_id, bob_id = list(world.members)
        alice, bob = world.devices(alice_id)[0], world.devices(bob_id)[0]
        relay = env.messaging.relay
        big = send_body(alice.address, [bob.address], ct=b"x" * 2000)
        with pytest.raises(TooLarge) as too_large:
            await relay.send(alice.address, world.org_id, big)
        assert too_large.value.code == "envelope_too_large"
        spoofed = send_body(alice.address, [bob.address])
        spoofed["envelopes"][0]["from"]["device_id"] = 77
        with pytest.raises(InvalidInput) as wrong:
            await relay.send(alice.address, world.org_id, spoofed)
        assert wrong.value.code == "wrong_sender"
        twice = {"v": 1, "msg_id": "m1", "envelopes": [envelope(alice.address, bob.address)] * 2}
        with pytest.raises(InvalidInput):
            await relay.send(alice.address, world.org_id, twice)
        for bad in (
            {"v": 2, "msg_id": "m", "envelopes": []},
            {"v": 1, "msg_id": "", "envelopes": []},
            {"v": 1, "msg_id": "m", "envelopes": []},
        ):
            with pytest.raises(InvalidInput):
                await relay.send(alice.address, world.org_id, bad)
        assert await relay.queue_depth() == 0


async def test_acks_only_delete_the_owners_rows(tmp_path: Path) -> None:
    async with messaging_env(tmp_path) as env:
        world = await env.world([1, 2])
        alice_id, bob_id = list(world.members)
        alice = world.devices(alice_id)[0]
        b1, b2 = world.devices(bob_id)
        relay = env.messaging.relay
        body = send_body(alice.address, [b1.address, b2.address])
        await relay.send(alice.address, world.org_id, body)
        (row1,), _ = await relay.fetch(b1.address, None)
        assert await relay.ack(b2.address, [str(row1.id)]) == 0  # not b2's row
        assert await relay.ack(b1.address, [str(row1.id), "999999"]) == 1
        with pytest.raises(InvalidInput):
            await relay.ack(b1.address, [row1.id])  # ids are strings on the wire
        assert await relay.queue_depth() == 1
