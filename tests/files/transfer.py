"""A large encrypted transfer through a real ``semafore serve``: the test side encrypts a
generated file while uploading it (PROTOCOL.md s9) and checks every chunk while downloading it,
holding neither in memory; the server's peak RSS is read from /proc/<pid>/status."""

from __future__ import annotations

import contextlib
import hashlib
import ssl
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp

from semafore.config import load_settings
from semafore.protocol.attachment import AttachmentDecryptor, AttachmentEncryptor, blob_length
from semafore.services import SystemClock
from semafore.services.identity import build_identity_services
from semafore.storage import Database
from support.relay_client import World, setup_world

MIB = 1 << 20
MARKER = b"SEMAFORE-PLAINTEXT-MARKER:"  # every 4 KiB of the file starts with it
OCTETS = "application/offset+octet-stream"


def plaintext_block(index: int) -> bytes:
    """1 MiB of recognisable plaintext (the marker, a counter, filler) for block ``index``."""
    line = MARKER + f"{index:08d}".encode()
    return b"".join(
        (line + f":{i:04d}:".encode()).ljust(4096, b".") for i in range(MIB // 4096)
    )


async def world_before_serving(config_path: Path, members: list[int]) -> World:
    """Members and approved devices made on the appliance's database, before it is served."""
    settings = load_settings(config_path)
    database = Database(settings.storage.database_path)
    await database.open()
    try:
        identity = build_identity_services(settings, SystemClock(), database)
        services = SimpleNamespace(settings=settings, **{
            name: getattr(identity, name)
            for name in ("orgs", "members", "otp", "enrolment", "devices")
        })
        world = await setup_world(services, members)  # type: ignore[arg-type]
        await identity.otp.wait_for_deliveries()
        return world
    finally:
        await database.close()


def peak_rss_kib(pid: int) -> dict[str, int]:
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            found[key] = int(rest.split()[0])
    return found


@dataclass
class Transfer:
    file_id: str
    blob_bytes: int
    upload_seconds: float
    download_seconds: float
    plaintext_sha256: str


async def _encrypted(size_mib: int, encryptor: AttachmentEncryptor, digest: Any
                     ) -> AsyncIterator[bytes]:
    for index in range(size_mib):
        block = plaintext_block(index)
        digest.update(block)
        yield encryptor.update(block)
    yield encryptor.finalize()


async def transfer(
    url: str, context: ssl.SSLContext, sender_token: str, receiver_token: str, size_mib: int
) -> Transfer:
    """Upload ``size_mib`` MiB encrypted while generated; download it and check every chunk."""
    timeout = aiohttp.ClientTimeout(total=None, sock_read=120)
    connector = aiohttp.TCPConnector(ssl=context)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        length = blob_length(size_mib * MIB, 65536)
        sender = {"Authorization": f"Bearer {sender_token}"}
        async with session.post(url + "/v1/uploads", json={"length": length},
                                headers=sender) as response:
            assert response.status == 201, await response.text()
            file_id = (await response.json())["id"]
        encryptor = AttachmentEncryptor()
        sent_digest = hashlib.sha256()
        started = time.monotonic()
        async with session.patch(
            f"{url}/v1/uploads/{file_id}",
            data=_encrypted(size_mib, encryptor, sent_digest),
            headers={**sender, "Content-Type": OCTETS, "Upload-Offset": "0",
                     "Content-Length": str(length)},
        ) as response:
            state = await response.json()
            assert response.status == 200 and state["complete"], state
        upload_seconds = time.monotonic() - started
        pointer = encryptor.secrets.pointer(file_id)

        decryptor = AttachmentDecryptor(pointer)
        got_digest = hashlib.sha256()
        started = time.monotonic()
        async with session.get(
            f"{url}/v1/files/{file_id}", headers={"Authorization": f"Bearer {receiver_token}"}
        ) as response:
            assert response.status == 200
            async for chunk in response.content.iter_chunked(MIB):
                got_digest.update(decryptor.update(chunk))
        got_digest.update(decryptor.finalize())
        download_seconds = time.monotonic() - started
        assert got_digest.digest() == sent_digest.digest()
        return Transfer(file_id, length, upload_seconds, download_seconds,
                        got_digest.hexdigest())


def plaintext_in(root: Path) -> list[str]:
    """Files under ``root`` that contain the plaintext marker (there must be none)."""
    found = []
    for path in root.rglob("*"):
        if path.is_file():
            with path.open("rb") as handle, contextlib.suppress(OSError):
                tail = b""
                while chunk := handle.read(MIB):
                    if MARKER in tail + chunk:
                        found.append(str(path))
                        break
                    tail = chunk[-len(MARKER):]
    return found
