"""The server (a real ``semafore serve``) is SIGKILLed several times at random moments while
two devices send to a third that drains and acks over its WebSocket; after each kill it is
restarted. Every message the server acknowledged is delivered, each under exactly one server
id, the queue ends empty and the database passes ``PRAGMA integrity_check``."""

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
    queued_msg_ids,
    receive_and_ack,
    send_until_acked,
)
from support.relay_client import RELAY_TEST_CONFIG

KILLS = 4
MESSAGES_PER_SENDER = 1000
TASKS_PER_SENDER = 8


@pytest.mark.slow
async def test_repeated_sigkill_under_load_loses_and_duplicates_nothing_acknowledged(
    appliance: Appliance, ca_ssl_context: ssl.SSLContext
) -> None:
    appliance.configure(**RELAY_TEST_CONFIG)
    world = await offline_world(appliance, [1, 1, 1])
    alice, carol, bob = (world.devices(u)[0] for u in world.members)
    cluster = Cluster(appliance)
    await cluster.start()
    acknowledged: set[str] = set()
    refusals: dict[int, int] = {}
    seen: dict[str, str] = {}
    done = asyncio.Event()
    tasks = [asyncio.create_task(receive_and_ack(cluster, ca_ssl_context, bob, seen, done))]
    for n, sender in enumerate((alice, carol)):
        pending = [f"{n}.{uuid.uuid4()}" for _ in range(MESSAGES_PER_SENDER)]
        tasks += [asyncio.create_task(send_until_acked(
            cluster, ca_ssl_context, sender, bob, pending, acknowledged, refusals))
            for _ in range(TASKS_PER_SENDER)]
    senders = tasks[1:]
    acked_at_kill: list[int] = []
    try:
        for _ in range(KILLS):
            async with asyncio.timeout(60):  # some progress since the (re)start, then a while
                floor = len(acknowledged) + 20
                while len(acknowledged) < floor:
                    await asyncio.sleep(0.01)
            await asyncio.sleep(random.uniform(0, 0.3))
            acked_at_kill.append(len(acknowledged))
            cluster.kill()
            await asyncio.sleep(random.uniform(0, 0.3))
            await cluster.start()
        async with asyncio.timeout(120):
            await asyncio.gather(*senders)
            while not acknowledged <= set(seen.values()) and not tasks[0].done():
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.5)  # the last acks commit
    finally:
        done.set()
        errors = await finish(tasks)
        cluster.stop()
    assert errors == []

    total = 2 * MESSAGES_PER_SENDER
    assert acked_at_kill[-1] < total, "the kills should land mid-stream"
    assert cluster.starts == KILLS + 1
    assert len(acknowledged) == total
    by_msg = one_server_id_per_message(seen)
    assert set(by_msg) == acknowledged  # all delivered, nothing that was never sent
    assert [m for m, ids in by_msg.items() if len(ids) > 1] == []  # stored exactly once
    database = appliance.settings().storage.database_path
    assert integrity_check(database) == "ok"
    assert queued_msg_ids(database) == []  # every ack that was answered by a frame committed
