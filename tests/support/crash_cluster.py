"""A real ``semafore serve`` that tests kill and restart, and test-side senders and receivers
that keep going across restarts (bounded by the caller's timeouts)."""

from __future__ import annotations

import asyncio
import base64
import json
import sqlite3
import ssl
from pathlib import Path

import aiohttp

from support.appliance import Appliance, ServeProcess
from support.relay_client import DeviceCreds, send_body


class Cluster:
    """Where the server is right now (a restart moves it to a new port)."""

    def __init__(self, appliance: Appliance) -> None:
        self.appliance = appliance
        self.served: ServeProcess | None = None
        self.up = asyncio.Event()
        self.starts = 0

    async def start(self) -> None:
        self.served = await asyncio.to_thread(ServeProcess.start, self.appliance)
        self.starts += 1
        self.up.set()

    def kill(self) -> None:
        """SIGKILL, by PID."""
        self.up.clear()
        assert self.served is not None
        self.served.kill()

    def stop(self) -> None:
        if self.served is not None:
            self.served.terminate()

    @property
    def url(self) -> str:
        assert self.served is not None
        return self.served.url


def session(context: ssl.SSLContext, creds: DeviceCreds) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(ssl=context),
        headers={"Authorization": f"Bearer {creds.access_token}"},
        timeout=aiohttp.ClientTimeout(total=15),
    )


async def send_until_acked(
    cluster: Cluster, context: ssl.SSLContext, sender: DeviceCreds, target: DeviceCreds,
    pending: list[str], acknowledged: set[str], refusals: dict[int, int],
) -> None:
    """Send every msg_id in ``pending`` to ``target``; retry (same msg_id) until a 200."""
    async with session(context, sender) as http:
        while pending:
            msg_id = pending.pop()
            body = send_body(sender.address, [target.address], msg_id=msg_id, ct=msg_id.encode())
            await cluster.up.wait()
            try:
                async with http.post(cluster.url + "/v1/messages", json=body) as response:
                    if response.status == 200:
                        assert (await response.json())["msg_id"] == msg_id
                        acknowledged.add(msg_id)
                        continue
                    refusals[response.status] = refusals.get(response.status, 0) + 1
                    assert response.status == 503, await response.text()
                    assert (await response.json())["code"] == "storage_unavailable"
            except (aiohttp.ClientError, ConnectionError, TimeoutError):
                pass
            pending.insert(0, msg_id)  # no answer: retry later with the same msg_id
            await asyncio.sleep(0.05)


def msg_id_of(item: dict) -> str:  # type: ignore[type-arg]
    ct = item["envelope"]["ct"]
    # ct is the msg_id, optionally followed by "|" and padding bytes
    return base64.urlsafe_b64decode(ct + "=" * (-len(ct) % 4)).split(b"|")[0].decode()


async def receive_and_ack(
    cluster: Cluster, context: ssl.SSLContext, receiver: DeviceCreds, seen: dict[str, str],
    done: asyncio.Event,
) -> None:
    """Hold the receiver's socket (reconnecting), ack every frame; ``seen``: server id ->
    msg_id (a server id seen again must name the same message)."""
    async with session(context, receiver) as http:
        while not done.is_set():
            await cluster.up.wait()
            try:
                async with http.ws_connect(cluster.url + "/v1/ws") as ws:
                    async for message in ws:
                        if message.type != aiohttp.WSMsgType.TEXT:
                            break
                        frame = message.json()
                        if frame["type"] != "envelopes":
                            continue
                        for item in frame["items"]:
                            assert seen.setdefault(item["id"], msg_id_of(item)) == msg_id_of(item)
                        ids = [item["id"] for item in frame["items"]]
                        await ws.send_json({"type": "ack", "ids": ids})
            except (aiohttp.ClientError, ConnectionError, TimeoutError):
                pass
            await asyncio.sleep(0.05)


async def finish(tasks: list[asyncio.Task[None]]) -> list[BaseException]:
    """Cancel the tasks; return what any of them raised (an assertion in a receiver, ...)."""
    for task in tasks:
        task.cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    return [r for r in results
            if isinstance(r, BaseException) and not isinstance(r, asyncio.CancelledError)]


def one_server_id_per_message(seen: dict[str, str]) -> dict[str, set[str]]:
    by_msg: dict[str, set[str]] = {}
    for server_id, msg_id in seen.items():
        by_msg.setdefault(msg_id, set()).add(server_id)
    return by_msg


def integrity_check(database_path: Path) -> str:
    database = sqlite3.connect(database_path)
    try:
        return str(database.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        database.close()


def queued_msg_ids(database_path: Path) -> list[str]:
    """The msg_id (carried in ``ct``) of every envelope still queued, read from the file."""
    database = sqlite3.connect(database_path)
    try:
        rows = database.execute("SELECT envelope FROM relay_queue ORDER BY id").fetchall()
    finally:
        database.close()
    return [msg_id_of({"envelope": json.loads(row[0])}) for row in rows]
