"""`semafore-client send-file` killed (SIGKILL) in the middle of an upload, through a running
appliance over TLS: the next `send-file` of the same file to the same user continues the upload
where the server stopped, without encrypting again; a changed source, a deleted blob or a
record past its retention starts afresh and removes the stale upload. The attachment key is
never in a file of the device directory in clear.

The upload is stopped at a chosen point by a relay between the client and the appliance that
lets a set number of bytes through and holds the rest (holding_relay.py), so the server always
holds part of the blob when the client dies, however fast or loaded the machine is."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from client.cli_device import PASSPHRASE, CliDevice, enrol
from semafore.client.keysource import Passphrase
from semafore.client.keystore import Keystore
from semafore.client.pending_uploads import PendingUpload, PendingUploads
from semafore.protocol import AttachmentDecryptor
from semafore.protocol.encoding import b64u_encode
from semafore.services import ManualClock
from semafore.web.appkeys import FILES, SERVICES
from support.appliance import Appliance
from support.relay_client import RELAY_TEST_CONFIG

from .holding_relay import holding_relay

pytestmark = pytest.mark.slow

MIB = 1 << 20
FILE_BYTES = 8 * MIB + 12345
LET_THROUGH = 3 * MIB  # the server writes in runs of 1 MiB, so it holds 2 MiB or more
PHONES = {"alice": "+447700900401", "bob": "+447700900402"}
T = TypeVar("T")


@dataclass
class Org:
    server: Any
    clock: ManualClock
    settings: Any
    alice: CliDevice
    bob: CliDevice
    tmp: Path

    def uploads(self) -> list[tuple[str, str, int, int]]:
        """(file_id, state, received, length) of every upload and file on the server."""
        uri = f"file:{self.settings.storage.database_path}?mode=ro"
        with contextlib.closing(sqlite3.connect(uri, uri=True)) as db:
            return db.execute(
                "SELECT file_id, state, received, length FROM files ORDER BY created_at"
            ).fetchall()

    def partial_size(self, file_id: str) -> int:
        try:
            return (self.settings.storage.blob_dir / "partial" / file_id).stat().st_size
        except FileNotFoundError:
            return 0

    def partials(self) -> list[Path]:
        return list((self.settings.storage.blob_dir / "partial").iterdir())


@pytest.fixture
async def org(appliance: Appliance, start_server: Any, tmp_path: Path) -> Org:
    appliance.configure(**RELAY_TEST_CONFIG)
    clock = ManualClock(time.time())
    server = await start_server(clock=clock)
    services = server.app[SERVICES]
    created, _ = await services.orgs.create_org("Acme", PHONES["alice"], actor="operator")
    await services.members.add_member(created.org_id, PHONES["bob"], actor="operator")
    settings = appliance.settings()
    spool = settings.resolve(settings.otp.file_spool_dir)
    devices = []
    for name in ("alice", "bob"):
        device = CliDevice(tmp_path / name, server.url, appliance.ca_path)
        devices.append(await enrol(device, services, spool, created.org_id, PHONES[name]))
    return Org(server, clock, settings, devices[0], devices[1], tmp_path)


async def eventually(probe: Callable[[], Awaitable[T | None]], what: str, timeout: float = 120
                     ) -> T:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        found = await probe()
        if found:
            return found
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


async def held_send(org: Org, relay: Any, source: Path, to: str
                    ) -> tuple[asyncio.subprocess.Process, str]:
    """`send-file` through the holding relay, running until the server holds part of the blob;
    returns the process and the upload's id."""
    via_relay = CliDevice(org.alice.home, relay.url, org.alice.ca)
    proc = await via_relay.start("send-file", str(source), to)

    async def part_stored() -> str | None:
        if proc.returncode is not None:
            _, err = await proc.communicate()
            raise AssertionError(f"send-file ended early ({proc.returncode}): {err.decode()}")
        for file_id, state, _, _ in org.uploads():
            if state == "uploading" and relay.held.is_set() and org.partial_size(file_id):
                return str(file_id)
        return None

    return proc, await eventually(part_stored, "the server to store part of the upload")


async def interrupted_send(org: Org, source: Path, to: str) -> tuple[str, int]:
    """`send-file` through the holding relay, SIGKILLed once the server holds part of the blob;
    returns the upload's id and the offset the server committed."""
    assert org.uploads() == [] or all(state == "complete" for _, state, *_ in org.uploads())
    async with holding_relay(int(org.server.port), LET_THROUGH) as relay:
        proc, file_id = await held_send(org, relay, source, to)
        proc.kill()
        await proc.communicate()
        assert proc.returncode == -9
    # The relay has reset the connection: the server keeps what arrived and records it.

    async def committed() -> int | None:
        rows = [r for r in org.uploads() if r[0] == file_id]
        return int(rows[0][2]) if rows and rows[0][2] else None

    offset = await eventually(committed, "the server to record the interrupted upload")
    (row,) = [r for r in org.uploads() if r[0] == file_id]
    assert row[1] == "uploading" and 0 < offset < row[3]
    return file_id, offset


def pending_of(device: CliDevice) -> list[PendingUpload]:
    with Keystore.open(device.home, Passphrase(PASSPHRASE)) as ks:
        return PendingUploads(ks, device.home).all()


def files_under(home: Path) -> list[Path]:
    return [p for p in home.rglob("*") if p.is_file()]


async def received_by_bob(org: Org) -> bytes:
    (msg,) = (await org.bob.ok("--json", "listen", "--once")).lines()
    out = org.tmp / f"received-{msg['mid']}"
    await org.bob.ok("get-file", msg["mid"], str(out))
    return out.read_bytes()


async def test_a_killed_send_file_resumes_where_the_server_stopped(org: Org) -> None:
    original = os.urandom(FILE_BYTES)
    source = org.tmp / "minutes.bin"
    source.write_bytes(original)

    file_id, offset = await interrupted_send(org, source, org.bob.user_id or "")

    # The record and the blob survived the kill; the key is only in the keystore, sealed.
    (pending,) = pending_of(org.alice)
    assert pending.file_id == file_id and pending.source.path == str(source.resolve())
    assert pending.blob_intact()
    decryptor = AttachmentDecryptor(pending.sealed.pointer(file_id))
    blob = pending.sealed.blob_path.read_bytes()
    assert decryptor.update(blob) + decryptor.finalize() == original  # it is the real key
    key = pending.sealed.secrets.key
    for path in files_under(org.alice.home):
        raw = path.read_bytes()
        for form in (key, key.hex().encode(), b64u_encode(key).encode()):
            assert form not in raw, f"the attachment key is in {path} in clear"

    result = await org.alice.ok("--json", "send-file", str(source), org.bob.user_id or "")
    resumed = [line for line in result.err.splitlines() if line.startswith("resuming upload at")]
    assert resumed == [
        f"resuming upload at {offset / MIB:.1f} MiB of {pending.sealed.blob_size / MIB:.1f} MiB"
    ]
    assert result.json()["file_id"] == file_id
    assert org.uploads() == [(file_id, "complete", pending.sealed.blob_size,
                              pending.sealed.blob_size)]  # one upload, continued
    assert org.partials() == []
    assert pending_of(org.alice) == []  # sent: never resumed again
    assert list((org.alice.home / "outgoing").iterdir()) == []
    assert await received_by_bob(org) == original

    again = await org.alice.ok("--json", "send-file", str(source), org.bob.user_id or "")
    assert "resuming" not in again.err and again.json()["file_id"] != file_id


async def test_an_upload_the_appliance_removed_is_uploaded_again_from_the_same_blob(
    org: Org,
) -> None:
    original = os.urandom(FILE_BYTES)
    source = org.tmp / "minutes.bin"
    source.write_bytes(original)
    stale_id, _ = await interrupted_send(org, source, org.bob.user_id or "")
    (pending,) = pending_of(org.alice)
    blob = pending.sealed.blob_path.read_bytes()
    org.clock.advance(org.settings.files.abandoned_upload_seconds + 60)
    assert await org.server.app[FILES].sweep() == 1  # abandoned: removed by the appliance
    assert org.uploads() == []

    result = await org.alice.ok("--json", "send-file", str(source), org.bob.user_id or "")
    assert "resuming" not in result.err
    assert "no longer has the earlier upload" in result.err
    fresh_id = result.json()["file_id"]
    assert fresh_id != stale_id
    assert org.uploads() == [(fresh_id, "complete", len(blob), len(blob))]
    stored = org.settings.storage.blob_dir / fresh_id[:2] / fresh_id
    assert stored.read_bytes() == blob  # the same blob, not encrypted again
    assert pending_of(org.alice) == []
    assert list((org.alice.home / "outgoing").iterdir()) == []
    assert await received_by_bob(org) == original


def _modify(org: Org, source: Path) -> bytes:
    changed = os.urandom(FILE_BYTES)
    stat = source.stat()
    source.write_bytes(changed)  # same size; the modification time tells
    os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns + 2_000_000_000))
    return changed


def _delete_blob(org: Org, source: Path) -> bytes:
    (blob,) = (org.alice.home / "outgoing").iterdir()
    blob.unlink()
    return source.read_bytes()


def _age_record(org: Org, source: Path) -> bytes:
    with Keystore.open(org.alice.home, Passphrase(PASSPHRASE)) as ks, ks.transaction():
        ks.conn.execute("UPDATE uploads SET created_at = created_at - 8 * 86400")
    return source.read_bytes()


@pytest.mark.parametrize("change", [_modify, _delete_blob, _age_record],
                         ids=["source-modified", "blob-deleted", "record-expired"])
async def test_a_stale_interrupted_upload_is_dropped_and_the_file_sent_afresh(
    org: Org, change: Callable[[Org, Path], bytes]
) -> None:
    source = org.tmp / "minutes.bin"
    source.write_bytes(os.urandom(FILE_BYTES))
    stale_id, _ = await interrupted_send(org, source, org.bob.user_id or "")
    expected = change(org, source)

    result = await org.alice.ok("--json", "send-file", str(source), org.bob.user_id or "")
    assert "resuming" not in result.err
    fresh_id = result.json()["file_id"]
    assert fresh_id != stale_id
    assert [(i, state) for i, state, *_ in org.uploads()] == [(fresh_id, "complete")]
    assert org.partials() == []  # the stale upload was cancelled on the server
    assert pending_of(org.alice) == []
    assert list((org.alice.home / "outgoing").iterdir()) == []
    assert await received_by_bob(org) == expected


async def test_the_same_send_file_twice_at_once_sends_the_file_once(org: Org) -> None:
    """The second run stops with a clear error and touches nothing of the first's upload; once
    the first has died, the next run continues that upload."""
    original = os.urandom(FILE_BYTES)
    source = org.tmp / "minutes.bin"
    source.write_bytes(original)
    bob = org.bob.user_id or ""
    async with holding_relay(int(org.server.port), LET_THROUGH) as relay:
        first, file_id = await held_send(org, relay, source, bob)
        second = await org.alice.run("--json", "send-file", str(source), bob)
        assert second.code == 1, second.err
        assert "another send-file is sending" in second.err, second.err
        assert "resuming" not in second.err
        (pending,) = pending_of(org.alice)
        assert pending.file_id == file_id and pending.blob_intact()
        assert [(i, state) for i, state, *_ in org.uploads()] == [(file_id, "uploading")]
        first.kill()
        await first.communicate()

    result = await org.alice.ok("--json", "send-file", str(source), bob)
    assert "resuming upload at" in result.err
    assert result.json()["file_id"] == file_id
    assert await received_by_bob(org) == original
    again = await org.bob.ok("--json", "listen", "--once")
    assert again.lines() == []  # one pointer message, not two
