"""Crash test: the server (a real ``semafore serve``) is SIGKILLed at a random moment while a
sender sends thousands of messages and a receiver drains them; it is restarted, and every
message the server acknowledged is delivered exactly once after de-duplication by server id."""

from __future__ import annotations

import asyncio
import random
import ssl
import uuid

import pytest

from robustness.offline import offline_world
from support.appliance import Appliance
from support.crash_cluster import (
    Cluster,
    finish,
    integrity_check,
    one_server_id_per_message,
    receive_and_ack,
    send_until_acked,
)
from support.relay_client import RELAY_TEST_CONFIG

MESSAGES = 3000
SENDERS = 16


@pytest.mark.slow
async def test_sigkill_mid_stream_loses_nothing_acknowledged_and_duplicates_nothing(
    appliance: Appliance, ca_ssl_context: ssl.SSLContext
) -> None:
    appliance.configure(**RELAY_TEST_CONFIG)
    world = await offline_world(appliance, [1, 1])
    alice, bob = (world.devices(u)[0] for u in world.members)
    cluster = Cluster(appliance)
    await cluster.start()
    pending = [str(uuid.uuid4()) for _ in range(MESSAGES)]
    acknowledged: set[str] = set()
    refusals: dict[int, int] = {}
    seen: dict[str, str] = {}  # server id -> msg_id
    done = asyncio.Event()
    receiver = asyncio.create_task(receive_and_ack(cluster, ca_ssl_context, bob, seen, done))
    senders = [
        asyncio.create_task(send_until_acked(
            cluster, ca_ssl_context, alice, bob, pending, acknowledged, refusals))
        for _ in range(SENDERS)
    ]
    try:
        await asyncio.sleep(random.uniform(0.3, 1.2))
        killed_after = len(acknowledged)
        cluster.kill()
        await asyncio.sleep(0.2)
        await cluster.start()
        async with asyncio.timeout(120):
            await asyncio.gather(*senders)
            while set(seen.values()) < acknowledged:
                await asyncio.sleep(0.05)
    finally:
        done.set()
        failures = await finish([*senders, receiver])
        cluster.stop()

    assert not failures, failures
    assert 0 < killed_after < MESSAGES, "the kill should land mid-stream"
    assert len(acknowledged) == MESSAGES
    # Every acknowledged message arrived, each stored exactly once (one server id per msg_id).
    by_msg = one_server_id_per_message(seen)
    assert set(by_msg) == acknowledged
    assert all(len(ids) == 1 for ids in by_msg.values())
    assert integrity_check(appliance.settings().storage.database_path) == "ok"
