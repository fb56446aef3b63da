"""The data directory on a small tmpfs fills up under load: senders get 503
``storage_unavailable`` (never a 500, never an answer for something not stored), every
acknowledged message is in the database after a restart and nothing refused is, and the same
process accepts sends again as soon as space returns."""

from __future__ import annotations

import asyncio
import os
import shutil
import ssl
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from robustness.offline import offline_world
from support.appliance import Appliance
from support.crash_cluster import Cluster, integrity_check, queued_msg_ids, session
from support.relay_client import RELAY_TEST_CONFIG, DeviceCreds, send_body

TMPFS_SIZE = "24m"
CT_BYTES = 3000


@pytest.fixture
def small_disk_appliance(appliance_template: Appliance, tmp_path: Path) -> Iterator[Appliance]:
    data_dir = tmp_path / "appliance"  # the tmpfs is the data directory; logs stay outside
    data_dir.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE},mode=0700",
                              "tmpfs", str(data_dir)], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {mounted.stderr.strip()}")
    try:
        shutil.copytree(appliance_template.data_dir, data_dir, symlinks=True,
                        dirs_exist_ok=True)
        yield Appliance(data_dir)
    finally:
        if subprocess.run(["umount", str(data_dir)]).returncode != 0:
            subprocess.run(["umount", "-l", str(data_dir)], check=True)  # detach when busy


def fill(directory: Path) -> Path:
    """Write a file until the file system is full (down to the last byte); return it."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (1 << 20, 4096, 1):
            for _ in range(100_000):  # bounded; a small tmpfs fills long before
                try:
                    os.write(fd, b"\0" * size)
                except OSError:
                    break
    finally:
        os.close(fd)
    return filler


async def send_one(
    http: aiohttp.ClientSession, url: str, sender: DeviceCreds, target: DeviceCreds,
    outcomes: dict[str, set[str]],
) -> int:
    msg_id = str(uuid.uuid4())
    body = send_body(sender.address, [target.address], msg_id=msg_id,
                     ct=msg_id.encode() + b"|" + os.urandom(CT_BYTES))
    async with http.post(url + "/v1/messages", json=body) as response:
        problem = await response.json()
        if response.status == 200:
            outcomes["acked"].add(msg_id)
        elif response.status == 503 and problem["code"] == "storage_unavailable":
            outcomes["refused"].add(msg_id)
        else:
            outcomes["other"].add(f"{response.status} {problem}")
        return response.status


@pytest.mark.slow
async def test_full_disk_refuses_clearly_acks_nothing_false_and_recovers_without_restart(
    small_disk_appliance: Appliance, ca_ssl_context: ssl.SSLContext
) -> None:
    appliance = small_disk_appliance
    appliance.configure(**RELAY_TEST_CONFIG)
    world = await offline_world(appliance, [1, 1])
    alice, bob = (world.devices(u)[0] for u in world.members)
    cluster = Cluster(appliance)
    await cluster.start()
    outcomes: dict[str, set[str]] = {"acked": set(), "refused": set(), "other": set()}
    try:
        async with session(ca_ssl_context, alice) as http:
            for _ in range(20):
                assert await send_one(http, cluster.url, alice, bob, outcomes) == 200
            filler = await asyncio.to_thread(fill, appliance.data_dir)
            deadline = time.monotonic() + 60
            while not outcomes["refused"] and time.monotonic() < deadline:
                await asyncio.gather(*(send_one(http, cluster.url, alice, bob, outcomes)
                                       for _ in range(8)))
            assert outcomes["refused"], "a full disk never refused a send"
            refused = len(outcomes["refused"])
            for _ in range(10):  # still full: refused (a send may fit in pages a failed
                # write had already allocated), and the server stays up
                assert await send_one(http, cluster.url, alice, bob, outcomes) in (200, 503)
            assert len(outcomes["refused"]) > refused

            filler.unlink()  # space returns; the same process must accept sends again
            deadline = time.monotonic() + 30
            recovered = 0
            while recovered < 5 and time.monotonic() < deadline:
                if await send_one(http, cluster.url, alice, bob, outcomes) == 200:
                    recovered += 1
                else:
                    await asyncio.sleep(0.2)
            assert recovered == 5, "sends still refused after space returned"
            assert cluster.starts == 1 and cluster.served is not None
            assert cluster.served.process.poll() is None
    finally:
        cluster.kill()  # no graceful shutdown: only what was committed counts
    log = cluster.served.log_text()
    assert outcomes["other"] == set()
    assert "disk is full" in log  # the refusals were the full disk's doing
    assert "unhandled error" not in log and "Traceback" not in log
    database = appliance.settings().storage.database_path
    assert integrity_check(database) == "ok"
    stored = queued_msg_ids(database)
    assert len(stored) == len(set(stored))
    assert set(stored) == outcomes["acked"]  # every ack is there, nothing refused is
