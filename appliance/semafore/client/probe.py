"""Throwaway devices for `semafore verify`: the bundled client enrolled against the live server,
plus a record of every secret it handled, so the verifier can search for them afterwards.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from semafore.client import transfer
from semafore.client.api import ACCESS, REFRESH, ApiClient
from semafore.client.attachments import open_blob, receive_path, seal_file
from semafore.client.device import Device
from semafore.client.device_state import DeviceState
from semafore.client.enrolment import ENROLMENT_SECRET, poll_status, register_device
from semafore.client.errors import ClientError
from semafore.client.keysource import RawKey
from semafore.client.keystore import Keystore
from semafore.client.messaging import Received


@dataclass
class Probe:
    name: str
    phone: str = field(repr=False)
    ks: Keystore
    api: ApiClient
    device: Device
    tokens: dict[str, str] = field(default_factory=dict, repr=False)  # label -> token

    def note_tokens(self) -> None:
        for name in (ACCESS, REFRESH):
            value = self.ks.credential(name)
            if value and value not in self.tokens.values():
                self.tokens[f"{name.replace('_', ' ')} ({len(self.tokens)})"] = value

    async def close(self) -> None:
        self.note_tokens()
        await self.api.close()
        self.ks.close()


async def enrol_probe(
    name: str,
    home: Path,
    server: str,
    ca: Path,
    phone: str,
    issue_code: Callable[[], Awaitable[str]],
    approve: Callable[[int], Awaitable[None]],
) -> Probe:
    """Enrol through the server's real enrolment API with a code issued by the operator."""
    api = ApiClient.connect(server, ca)
    try:
        code = await issue_code()
        ticket = await api.verify_code(phone, code)
        ks = await register_device(api, home, RawKey(secrets.token_bytes(32)), server, ticket)
    except BaseException:
        await api.close()
        raise
    tokens = {"enrolment ticket": str(ticket.get("ticket"))}
    secret = ks.credential(ENROLMENT_SECRET)
    if secret:
        tokens["enrolment secret"] = secret
    device_id = ks.device().device_id
    assert device_id is not None
    await approve(device_id)
    state = await poll_status(api, ks)
    if state.status != "approved":
        ks.close()
        await api.close()
        raise ClientError(f"{name}: device not approved ({state.status})")
    api.attach(ks)
    probe = Probe(name, phone, ks, api, Device(DeviceState(ks), api), tokens)
    probe.note_tokens()
    return probe


async def receive_text(probe: Probe, text: str, wait_seconds: float) -> Received:
    """Drain the probe's queue until `text` arrives (decrypted, committed, acked)."""
    deadline = time.monotonic() + wait_seconds
    while True:
        for received in await probe.device.drain():
            if received.content.body == text:
                return received
        if time.monotonic() >= deadline:
            raise ClientError(f"{probe.name}: the message did not arrive within {wait_seconds:g} s")
        await asyncio.sleep(0.2)


async def send_file(probe: Probe, to_user: str, source: Path) -> tuple[str, str]:
    """Encrypt, upload and send `source`; returns (message id, file id)."""
    sealed = await asyncio.to_thread(seal_file, source, probe.ks.path.parent)
    try:
        file_id = await transfer.upload(probe.api.http, sealed.blob_path, sealed.blob_size, _quiet)
        result = await probe.device.send_attachment(sealed.pointer(file_id), user_id=to_user)
    finally:
        sealed.discard()
    return result.msg_id, file_id


async def delete_file(probe: Probe, file_id: str) -> None:
    await transfer.delete(probe.api.http, file_id)


async def receive_file(probe: Probe, mid: str, out_dir: Path, wait_seconds: float) -> bytes:
    """Wait for the attachment message `mid`, then download, check and decrypt it."""
    deadline = time.monotonic() + wait_seconds
    while True:
        for received in await probe.device.drain():
            pointer = received.content.att
            if received.content.mid == mid and pointer is not None:
                target = receive_path(out_dir, pointer)
                download = transfer.download(probe.api.http, pointer.id, _quiet)
                await open_blob(download, pointer, target)
                return await asyncio.to_thread(target.read_bytes)
        if time.monotonic() >= deadline:
            raise ClientError(f"{probe.name}: the file did not arrive within {wait_seconds:g} s")
        await asyncio.sleep(0.2)


def _quiet(_done: int) -> None:
    pass
