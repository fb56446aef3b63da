"""Concurrent sends share one ``relay.send_batch`` unit; anything one send can cause (a retried
msg_id, a full queue, a removed device) falls back to one unit per send, failing only that send."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from semafore.services import LimitReached
from semafore.storage.relay_queue import NewRow, QueueCaps
from support.relay_client import messaging_env, send_body


def _units(env) -> list[str]:  # type: ignore[no-untyped-def]
    names: list[str] = []
    write = env.identity.database.write

    async def spy(name, unit):  # type: ignore[no-untyped-def]
        names.append(name)
        return await write(name, unit)

    env.identity.database.write = spy
    return names


async def test_concurrent_sends_are_one_unit_answered_with_their_own_rows(tmp_path: Path) -> None:
    async with messaging_env(tmp_path) as env:
        world = await env.world([1, 1, 1])
        alice, bob, carol = (world.devices(u)[0] for u in world.members)
        relay = env.messaging.relay
        await relay.approved_device_ids(bob.user_id)  # warm the device-list cache
        await relay.approved_device_ids(carol.user_id)
        await relay.approved_device_ids(alice.user_id)
        units = _units(env)
        bodies = [send_body(alice.address, [t.address]) for t in (bob, carol) * 10]
        answers = await asyncio.gather(
            *(relay.send(alice.address, world.org_id, b) for b in bodies)
        )
        assert [a.msg_id for a in answers] == [b["msg_id"] for b in bodies]
        assert all(a.stored == 1 for a in answers)
        assert units.count("relay.send_batch") >= 1 and units.count("relay.send") <= 1
        for device in (bob, carol):
            rows, _ = await relay.fetch(device.address, None)
            assert len(rows) == 10
            assert [r.id for r in rows] == sorted(r.id for r in rows)


async def test_a_retry_in_the_batch_is_answered_as_the_first_time(tmp_path: Path) -> None:
    async with messaging_env(tmp_path) as env:
        world = await env.world([1, 1])
        alice, bob = (world.devices(u)[0] for u in world.members)
        relay = env.messaging.relay
        first = send_body(alice.address, [bob.address], msg_id="same")
        stored = await relay.send(alice.address, world.org_id, first)
        others = [send_body(alice.address, [bob.address]) for _ in range(5)]
        answers = await asyncio.gather(
            relay.send(alice.address, world.org_id, first),
            *(relay.send(alice.address, world.org_id, b) for b in others),
        )
        assert (answers[0].stored, answers[0].ts) == (stored.stored, stored.ts)
        rows, _ = await relay.fetch(bob.address, None)
        assert len(rows) == 6  # the retry stored nothing, the others each one row


async def test_a_full_queue_refuses_only_the_sends_past_the_cap(tmp_path: Path) -> None:
    async with messaging_env(tmp_path, relay={"queue_max_messages": 3}) as env:
        world = await env.world([1, 1, 1])
        alice, bob, carol = (world.devices(u)[0] for u in world.members)
        relay = env.messaging.relay
        to_bob = [send_body(alice.address, [bob.address]) for _ in range(5)]
        to_carol = [send_body(alice.address, [carol.address]) for _ in range(2)]
        results = await asyncio.gather(
            *(relay.send(alice.address, world.org_id, b) for b in to_bob + to_carol),
            return_exceptions=True,
        )
        refused = [r for r in results if isinstance(r, Exception)]
        assert len(refused) == 2 and all(isinstance(r, LimitReached) for r in refused)
        assert all(not isinstance(r, Exception) for r in results[5:])  # carol's both stored
        assert len((await relay.fetch(bob.address, None))[0]) == 3
        assert len((await relay.fetch(carol.address, None))[0]) == 2


@pytest.mark.parametrize("gone", ["target", "sender"])
async def test_a_removed_device_fails_only_its_own_sends(tmp_path: Path, gone: str) -> None:
    async with messaging_env(tmp_path) as env:
        world = await env.world([1, 1, 1, 1])
        alice, bob, carol, dave = (world.devices(u)[0] for u in world.members)
        relay = env.messaging.relay
        queue = env.messaging.relay._queue
        removed = bob if gone == "target" else carol
        await env.services.devices.revoke(
            world.org_id, removed.user_id, removed.device_id, actor="operator"
        )
        # Straight to storage, as sends whose checks passed just before the revocation.
        caps = QueueCaps(100, 1 << 20)
        results = await asyncio.gather(
            queue.store_send(alice.address, "a", [NewRow(bob.address, b"{}")],
                             now_ms=1, caps=caps),
            queue.store_send(carol.address, "c", [NewRow(dave.address, b"{}")],
                             now_ms=1, caps=caps),
            queue.store_send(dave.address, "d", [NewRow(alice.address, b"{}")],
                             now_ms=1, caps=caps),
            return_exceptions=True,
        )
        failed = [i for i, r in enumerate(results) if isinstance(r, Exception)]
        assert failed == ([0] if gone == "target" else [1])
        assert await relay.queue_depth() == 2
