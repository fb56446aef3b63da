"""Crash test: the server (a real ``semafore serve``) is SIGKILLed at a random moment while a
sender sends thousands of messages and a receiver drains them; it is restarted, and every
message the server acknowledged is delivered exactly once after de-duplication by server id."""

from __future__ import annotations

import asyncio
import base64
import random
import sqlite3
import ssl
import types
import uuid

import aiohttp
import pytest

from semafore.services import SystemClock, build_identity_services
from semafore.storage import Database
from support.appliance import Appliance, ServeProcess
from support.relay_client import RELAY_TEST_CONFIG, DeviceCreds, send_body, setup_world

MESSAGES = 3000
SENDERS = 16


class Cluster:
    """Where the server is right now (it moves to a new port when restarted)."""

    def __init__(self, appliance: Appliance) -> None:
        self.appliance = appliance
        self.served: ServeProcess | None = None
        self.up = asyncio.Event()

    async def start(self) -> None:
        self.served = await asyncio.to_thread(ServeProcess.start, self.appliance)
        self.up.set()

    def kill(self) -> None:
        self.up.clear()
        assert self.served is not None
        self.served.kill()

    @property
    def url(self) -> str:
        assert self.served is not None
        return self.served.url


async def _world(appliance: Appliance) -> tuple[DeviceCreds, DeviceCreds]:
    settings = appliance.settings()
    database = Database(settings.storage.database_path)
    await database.open()
    try:
        identity = build_identity_services(settings, SystemClock(), database)
        services = types.SimpleNamespace(settings=settings, **{
            name: getattr(identity, name)
            for name in ("orgs", "members", "otp", "enrolment", "devices")
        })
        world = await setup_world(services, [1, 1])  # type: ignore[arg-type]
        await identity.otp.wait_for_deliveries()
    finally:
        await database.close()
    alice, bob = (world.devices(u)[0] for u in world.members)
    return alice, bob


async def _sender(
    cluster: Cluster, context: ssl.SSLContext, alice: DeviceCreds, bob: DeviceCreds,
    pending: list[str], acknowledged: set[str],
) -> None:
    headers = {"Authorization": f"Bearer {alice.access_token}"}
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(ssl=context), headers=headers
    ) as session:
        while pending:
            msg_id = pending.pop()
            body = send_body(alice.address, [bob.address], msg_id=msg_id, ct=msg_id.encode())
            await cluster.up.wait()
            try:
                async with session.post(cluster.url + "/v1/messages", json=body) as response:
                    if response.status == 200:
                        assert (await response.json())["msg_id"] == msg_id
                        acknowledged.add(msg_id)
                        continue
                    assert response.status == 503, await response.text()
            except (aiohttp.ClientError, ConnectionError):
                pass
            pending.insert(0, msg_id)  # no answer: retry later with the same msg_id
            await asyncio.sleep(0.05)


async def _receiver(
    cluster: Cluster, context: ssl.SSLContext, bob: DeviceCreds, seen: dict[str, str],
    done: asyncio.Event,
) -> None:
    headers = {"Authorization": f"Bearer {bob.access_token}"}
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(ssl=context), headers=headers
    ) as session:
        while not done.is_set():
            await cluster.up.wait()
            try:
                async with session.ws_connect(cluster.url + "/v1/ws") as ws:
                    async for message in ws:
                        if message.type != aiohttp.WSMsgType.TEXT:
                            break
                        frame = message.json()
                        if frame["type"] != "envelopes":
                            continue
                        for item in frame["items"]:
                            ct = item["envelope"]["ct"]
                            msg_id = base64.urlsafe_b64decode(ct + "=" * (-len(ct) % 4)).decode()
                            assert seen.setdefault(item["id"], msg_id) == msg_id
                        ids = [item["id"] for item in frame["items"]]
                        await ws.send_json({"type": "ack", "ids": ids})
            except (aiohttp.ClientError, ConnectionError):
                pass
            await asyncio.sleep(0.05)


@pytest.mark.slow
async def test_sigkill_mid_stream_loses_nothing_acknowledged_and_duplicates_nothing(
    appliance: Appliance, ca_ssl_context: ssl.SSLContext
) -> None:
    appliance.configure(**RELAY_TEST_CONFIG)
    alice, bob = await _world(appliance)
    cluster = Cluster(appliance)
    await cluster.start()
    pending = [str(uuid.uuid4()) for _ in range(MESSAGES)]
    acknowledged: set[str] = set()
    seen: dict[str, str] = {}  # server id -> msg_id
    done = asyncio.Event()
    receiver = asyncio.create_task(_receiver(cluster, ca_ssl_context, bob, seen, done))
    senders = [
        asyncio.create_task(_sender(cluster, ca_ssl_context, alice, bob, pending, acknowledged))
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
        for task in (*senders, receiver):
            task.cancel()
        await asyncio.gather(*senders, receiver, return_exceptions=True)
        if cluster.served is not None:
            cluster.served.terminate()

    assert 0 < killed_after < MESSAGES, "the kill should land mid-stream"
    assert len(acknowledged) == MESSAGES
    # Every acknowledged message arrived, each stored exactly once (one server id per msg_id).
    by_msg: dict[str, set[str]] = {}
    for server_id, msg_id in seen.items():
        by_msg.setdefault(msg_id, set()).add(server_id)
    assert set(by_msg) == acknowledged
    assert all(len(ids) == 1 for ids in by_msg.values())
    database = sqlite3.connect(appliance.settings().storage.database_path)
    try:
        assert database.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    finally:
        database.close()
