"""`semafore-client send-file` / `get-file` processes through a real `semafore serve`: a large
file reaches another member and the sender's second device byte-identical while the server's
memory stays flat; blobs damaged on the server are refused and leave no file.

The large size is SEMAFORE_TEST_CLI_FILE_MIB: 64 MiB by default, so CI stays within a minute;
run it with 400 for the several-hundred-MiB check (94 s on a loaded 2-core box, server VmHWM
66.8 -> 71.3 MiB)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from client.cli_device import CliDevice
from semafore.config import load_settings
from semafore.services import SystemClock
from semafore.services.identity import build_identity_services
from semafore.storage import Database
from semafore.storage.otp_spool import read_spool
from support.appliance import Appliance, ServeProcess
from support.relay_client import RELAY_TEST_CONFIG

from .transfer import MIB, peak_rss_kib, plaintext_block, plaintext_in

pytestmark = pytest.mark.slow

SIZE_MIB = int(os.environ.get("SEMAFORE_TEST_CLI_FILE_MIB", "64"))
MAX_RSS_GROWTH_MIB = 48
PHONES = {"alice": "+447700900301", "bob": "+447700900302"}


@contextlib.asynccontextmanager
async def operator(config_path: Path) -> AsyncIterator[Any]:
    """The operator's view of the appliance database (as `semafore member|device` use it)."""
    settings = load_settings(config_path)
    database = Database(settings.storage.database_path)
    await database.open()
    try:
        yield build_identity_services(settings, SystemClock(), database)
    finally:
        await database.close()


@dataclass
class Served:
    appliance: Appliance
    serve: ServeProcess
    org_id: str
    tmp: Path

    def device(self, name: str) -> CliDevice:
        return CliDevice(self.tmp / name, self.serve.url, self.appliance.ca_path)

    async def enrol(self, name: str, user: str) -> CliDevice:
        device = self.device(name)
        phone = PHONES[user]
        await device.ok("enrol", phone, "--request-code-only")
        settings = load_settings(self.appliance.config_path)
        spool = settings.resolve(settings.otp.file_spool_dir)
        code = None
        for _ in range(200):
            sent = [m for m in read_spool(spool) if m["to"] == phone]
            if sent:
                code = sent[-1]["message"].split("code is ")[1][:6]
                break
            await asyncio.sleep(0.05)
        assert code is not None
        pending = (await device.ok("--json", "enrol", phone, "--code", code, "--no-wait")).json()
        device.user_id, device.device_id = pending["user_id"], pending["device_id"]
        async with operator(self.appliance.config_path) as identity:
            await identity.devices.approve(
                self.org_id, device.user_id, device.device_id, actor="operator"
            )
        assert (await device.ok("--json", "status")).json()["status"] == "approved"
        return device


@pytest.fixture
async def served(appliance: Appliance, tmp_path: Path) -> AsyncIterator[Served]:
    appliance.configure(
        **RELAY_TEST_CONFIG,
        files={"max_upload_bytes": 2 << 30, "org_quota_bytes": 8 << 30},
        logging={"access_log": False},
    )
    async with operator(appliance.config_path) as identity:
        org, _ = await identity.orgs.create_org("Files", PHONES["alice"], actor="operator")
        await identity.members.add_member(org.org_id, PHONES["bob"], actor="operator")
    serve = ServeProcess.start(appliance)
    try:
        yield Served(appliance, serve, org.org_id, tmp_path)
    finally:
        serve.terminate()


def write_file(path: Path, mib: int) -> str:
    digest = hashlib.sha256()
    with path.open("wb") as out:
        for index in range(mib):
            block = plaintext_block(index)
            digest.update(block)
            out.write(block)
    return digest.hexdigest()


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(MIB):
            digest.update(block)
    return digest.hexdigest()


async def test_a_large_file_between_clients_with_flat_server_memory(served: Served) -> None:
    alice = await served.enrol("alice", "alice")
    alice2 = await served.enrol("alice-laptop", "alice")
    bob = await served.enrol("bob", "bob")
    source = served.tmp / "big.bin"
    expected = await asyncio.to_thread(write_file, source, SIZE_MIB)
    pid = served.serve.process.pid
    before = peak_rss_kib(pid)

    started = asyncio.get_running_loop().time()
    sent = (await alice.ok("--json", "send-file", str(source), bob.user_id, timeout=600)).json()
    send_seconds = asyncio.get_running_loop().time() - started
    assert sent["devices"] == 2 and sent["size"] == SIZE_MIB * MIB
    receive_seconds = {}
    for device in (bob, alice2):
        (msg,) = (await device.ok("--json", "listen", "--once")).lines()
        out = served.tmp / f"{device.home.name}.bin"
        started = asyncio.get_running_loop().time()
        await device.ok("--json", "get-file", msg["mid"], str(out), timeout=600)
        receive_seconds[device.home.name] = asyncio.get_running_loop().time() - started
        assert await asyncio.to_thread(sha256_of, out) == expected
    after = peak_rss_kib(pid)
    assert plaintext_in(served.appliance.data_dir / "blobs") == []
    growth = (after["VmHWM"] - before["VmHWM"]) / 1024
    print("\ncli files transfer:", json.dumps({
        "size_mib": SIZE_MIB,
        "send_file_seconds": round(send_seconds, 1),
        "get_file_seconds": {k: round(v, 1) for k, v in receive_seconds.items()},
        "server_vmhwm_before_mib": round(before["VmHWM"] / 1024, 1),
        "server_vmhwm_after_mib": round(after["VmHWM"] / 1024, 1),
    }))
    assert growth < MAX_RSS_GROWTH_MIB


def _damage(blob: Path, how: str, other: Path) -> None:
    data = bytearray(blob.read_bytes())
    sealed = 65536 + 16
    if how == "flipped":
        data[len(data) // 2] ^= 0x01
    elif how == "truncated":  # at a chunk boundary: only the last-chunk flag can tell
        data = data[: 8 + sealed]
    elif how == "reordered":
        first, second = data[8 : 8 + sealed], data[8 + sealed : 8 + 2 * sealed]
        data[8 : 8 + 2 * sealed] = second + first
    elif how == "swapped":  # another blob of the same length
        data = bytearray(other.read_bytes())
    blob.write_bytes(bytes(data))


@pytest.mark.parametrize("how", ["flipped", "truncated", "reordered", "swapped"])
async def test_blobs_damaged_on_the_server_are_refused_and_leave_no_file(
    served: Served, how: str
) -> None:
    alice = await served.enrol("alice", "alice")
    bob = await served.enrol("bob", "bob")
    for name in ("one.bin", "two.bin"):
        (served.tmp / name).write_bytes(os.urandom(3 * 65536 + 100))
    ids = []
    for name in ("one.bin", "two.bin"):
        sent = (await alice.ok("--json", "send-file", str(served.tmp / name), bob.user_id))
        ids.append(sent.json()["file_id"])
    blobs = served.appliance.data_dir / "blobs"
    first, second = (blobs / i[:2] / i for i in ids)
    _damage(first, how, second)
    messages = (await bob.ok("--json", "listen", "--once")).lines()
    out = served.tmp / "received"
    out.mkdir()
    result = await bob.run("get-file", messages[0]["mid"], str(out))
    assert result.code != 0
    assert "refused" in result.err or "integrity" in result.err, result.err
    assert list(out.iterdir()) == []  # no partial or temporary file either
    ok = await bob.run("get-file", messages[1]["mid"], str(out))
    assert ok.code == 0 and (out / "two.bin").read_bytes() == (served.tmp / "two.bin").read_bytes()
