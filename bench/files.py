"""Encrypted file transfer through a real ``semafore serve``: upload and download throughput and
the server's memory (VmRSS sampled, VmHWM peak) while it streams large blobs.

The benchmark client encrypts a generated file while uploading it (PROTOCOL.md s9, 64 KiB
chunks) and checks every chunk and the digest while downloading it, so neither side holds a
file in memory. One transfer of ``--size-mib``, then ``--parallel`` concurrent transfers of
``--size-mib / --parallel`` each. Prints one JSON document.

    .venv/bin/python -m bench.files [--size-mib 512] [--parallel 4] [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import ssl
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
from bench.relay.appliance import Server, cpu_seconds, init_appliance, memory_kib
from bench.relay.enrol import enrol_devices, operator_members
from bench.relay.report import machine

from semafore.protocol.attachment import AttachmentDecryptor, AttachmentEncryptor, blob_length

MIB = 1 << 20
OCTETS = "application/offset+octet-stream"
TIMEOUT = aiohttp.ClientTimeout(total=None, sock_read=300)


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench.files", description=__doc__.split("\n\n")[0])
    p.add_argument("--size-mib", type=int, default=512, help="size of the single transfer")
    p.add_argument("--parallel", type=int, default=4, help="concurrent transfers afterwards")
    p.add_argument("--data-dir", type=Path, help="keep the appliance here (default: temporary)")
    return p.parse_args(argv)


def _block(index: int) -> bytes:
    line = b"bench plaintext %08d\n" % index  # 25 bytes
    return (line * (MIB // len(line) + 1))[:MIB]


async def _encrypted(mib: int, encryptor: AttachmentEncryptor, digest: Any
                     ) -> AsyncIterator[bytes]:
    for index in range(mib):
        block = _block(index)
        digest.update(block)
        yield await asyncio.to_thread(encryptor.update, block)
    yield encryptor.finalize()


async def one_transfer(
    session: aiohttp.ClientSession, url: str, sender: str, receiver: str, mib: int
) -> dict[str, float]:
    length = blob_length(mib * MIB, 65536)
    auth = {"Authorization": f"Bearer {sender}"}
    async with session.post(f"{url}/v1/uploads", json={"length": length}, headers=auth) as r:
        file_id = (await r.json())["id"]
    encryptor, sent = AttachmentEncryptor(), hashlib.sha256()
    started = time.monotonic()
    async with session.patch(
        f"{url}/v1/uploads/{file_id}", data=_encrypted(mib, encryptor, sent),
        headers={**auth, "Content-Type": OCTETS, "Upload-Offset": "0",
                 "Content-Length": str(length)},
    ) as r:
        if r.status != 200 or not (await r.json())["complete"]:
            raise RuntimeError(f"upload failed: {r.status} {await r.text()}")
    uploaded = time.monotonic()
    decryptor, got = AttachmentDecryptor(encryptor.secrets.pointer(file_id)), hashlib.sha256()
    async with session.get(
        f"{url}/v1/files/{file_id}", headers={"Authorization": f"Bearer {receiver}"}
    ) as r:
        async for chunk in r.content.iter_chunked(MIB):
            got.update(await asyncio.to_thread(decryptor.update, chunk))
    got.update(decryptor.finalize())
    if got.digest() != sent.digest():
        raise RuntimeError("downloaded plaintext differs")
    return {"upload_s": uploaded - started, "download_s": time.monotonic() - uploaded}


async def _sample_rss(pid: int, samples: list[int]) -> None:
    while True:
        samples.append(memory_kib(pid)["VmRSS"])
        await asyncio.sleep(0.2)


async def drive(server: Server, context: ssl.SSLContext, creds: list[Any],
                args: argparse.Namespace) -> dict[str, Any]:
    sender, receiver = creds[0].token, creds[1].token
    connector = aiohttp.TCPConnector(ssl=context, limit=64)
    async with aiohttp.ClientSession(connector=connector, timeout=TIMEOUT) as session:
        await one_transfer(session, server.url, sender, receiver, 1)  # warm-up
        baseline = memory_kib(server.pid)
        samples: list[int] = []
        sampler = asyncio.create_task(_sample_rss(server.pid, samples))
        cpu_before = cpu_seconds(server.pid)
        try:
            single = await one_transfer(session, server.url, sender, receiver, args.size_mib)
            each = max(1, args.size_mib // args.parallel)
            started = time.monotonic()
            await asyncio.gather(*(
                one_transfer(session, server.url, sender, receiver, each)
                for _ in range(args.parallel)
            ))
            parallel_s = time.monotonic() - started
        finally:
            sampler.cancel()
        peak = memory_kib(server.pid)
    return {
        "single": {
            "size_mib": args.size_mib,
            "upload_mib_s": round(args.size_mib / single["upload_s"], 1),
            "download_mib_s": round(args.size_mib / single["download_s"], 1),
        },
        "parallel": {
            "transfers": args.parallel,
            "size_mib_each": each,
            "seconds": round(parallel_s, 1),
            "mib_s_up_and_down": round(2 * each * args.parallel / parallel_s, 1),
        },
        "server_memory_mib": {
            "vmrss_before": round(baseline["VmRSS"] / 1024, 1),
            "vmhwm_before": round(baseline["VmHWM"] / 1024, 1),
            "vmrss_max_sampled": round(max(samples, default=0) / 1024, 1),
            "vmhwm_after": round(peak["VmHWM"] / 1024, 1),
            "vmhwm_growth": round((peak["VmHWM"] - baseline["VmHWM"]) / 1024, 1),
        },
        "server_cpu_seconds": round(cpu_seconds(server.pid) - cpu_before, 1),
    }


def run(args: argparse.Namespace, data_dir: Path) -> dict[str, Any]:
    quota = max(4 << 30, 4 * args.size_mib * MIB)
    config = init_appliance(data_dir, {
        "files": {"max_upload_bytes": args.size_mib * MIB + 64 * MIB, "org_quota_bytes": quota},
    })
    ca_path = data_dir / "tls" / "ca.crt"
    org_id, phones = asyncio.run(operator_members(config, 2))
    server = Server.start(config, ca_path)
    try:
        context = ssl.create_default_context(cafile=str(ca_path))
        creds = asyncio.run(enrol_devices(server.url, context, config, phones, org_id))
        report = asyncio.run(drive(server, context, creds, args))
    finally:
        server.stop()
    report["machine"] = machine()
    return report


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    with tempfile.TemporaryDirectory(prefix="semafore-bench-files-") as scratch:
        report = run(args, (args.data_dir or Path(scratch)) / "appliance")
    json.dump(report, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
