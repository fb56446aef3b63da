"""Encrypted file transfer through a real ``semafore serve``: upload and download throughput and
the server's memory (VmRSS sampled, VmHWM peak) while it streams large blobs.

The benchmark client encrypts a generated file to disk before the clock starts, as
``semafore-client send-file`` seals a file before uploading it (PROTOCOL.md s9, 64 KiB chunks),
streams it up from there, and checks every chunk and the digest while downloading it, so
neither side holds a file in memory. One transfer of ``--size-mib``, then ``--parallel``
concurrent transfers of ``--size-mib / --parallel`` each. Prints one JSON document;
``upload_cpu_seconds`` is the server's and this process's CPU during the single upload, each
also for its main thread (the event loop; both processes share the machine). ``--profile FILE``
records the server with py-spy (raw collapsed stacks, one root frame per thread) during that
upload, and this process into ``FILE.client``.

    .venv/bin/python -m bench.files [--size-mib 512] [--parallel 4] [--data-dir DIR]
                                    [--profile FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import signal
import ssl
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from bench.relay.appliance import (
    Server,
    cpu_seconds,
    init_appliance,
    memory_kib,
    py_spy_record,
)
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
    p.add_argument("--profile", type=Path,
                   help="record the server (FILE) and this process (FILE.client) with py-spy"
                        " during the single upload")
    return p.parse_args(argv)


def _block(index: int) -> bytes:
    line = b"bench plaintext %08d\n" % index  # 25 bytes
    return (line * (MIB // len(line) + 1))[:MIB]


@dataclass(frozen=True)
class Sealed:
    """A generated file encrypted to disk before the clock starts, as ``semafore-client
    send-file`` seals a file before uploading it."""

    path: Path
    mib: int
    encryptor: AttachmentEncryptor
    digest: bytes  # of the plaintext


def seal(mib: int, path: Path) -> Sealed:
    encryptor, digest = AttachmentEncryptor(), hashlib.sha256()
    with path.open("wb") as out:
        for index in range(mib):
            block = _block(index)
            digest.update(block)
            out.write(encryptor.update(block))
        out.write(encryptor.finalize())
        out.flush()
        os.fsync(out.fileno())  # written back before the clock starts, not during the upload
    return Sealed(path, mib, encryptor, digest.digest())


async def sealed_files(directory: Path, sizes: list[int]) -> list[Sealed]:
    return list(await asyncio.gather(*(
        asyncio.to_thread(seal, mib, directory / f"sealed-{i}") for i, mib in enumerate(sizes)
    )))


async def _read(path: Path) -> AsyncIterator[bytes]:
    with path.open("rb") as blob:
        while chunk := await asyncio.to_thread(blob.read, MIB):
            yield chunk


@contextlib.contextmanager
def _profiled(output: Path | None, pids: dict[str, int]) -> Iterator[None]:
    """py-spy on each of ``pids`` (name: pid) while the block runs; FILE.<name>, FILE for
    "server"."""
    if output is None:
        yield
        return
    spies = [
        py_spy_record(
            pid, output if name == "server" else output.with_name(f"{output.name}.{name}"),
            "--threads",
        )
        for name, pid in pids.items()
    ]
    time.sleep(0.5)  # attached before the load starts
    try:
        yield
    finally:
        for spy in spies:
            spy.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
        for spy in spies:
            spy.wait(60)


async def one_transfer(
    session: aiohttp.ClientSession, url: str, sender: str, receiver: str, sealed: Sealed,
    upload_hook: Any = None,
) -> dict[str, float]:
    length = blob_length(sealed.mib * MIB, 65536)
    auth = {"Authorization": f"Bearer {sender}"}
    async with session.post(f"{url}/v1/uploads", json={"length": length}, headers=auth) as r:
        file_id = (await r.json())["id"]
    with upload_hook or contextlib.nullcontext():
        started = time.monotonic()
        async with session.patch(
            f"{url}/v1/uploads/{file_id}", data=_read(sealed.path),
            headers={**auth, "Content-Type": OCTETS, "Upload-Offset": "0",
                     "Content-Length": str(length)},
        ) as r:
            if r.status != 200 or not (await r.json())["complete"]:
                raise RuntimeError(f"upload failed: {r.status} {await r.text()}")
        uploaded = time.monotonic()
    sealed.path.unlink()
    decryptor = AttachmentDecryptor(sealed.encryptor.secrets.pointer(file_id))
    got = hashlib.sha256()
    downloading = time.monotonic()
    async with session.get(
        f"{url}/v1/files/{file_id}", headers={"Authorization": f"Bearer {receiver}"}
    ) as r:
        async for chunk in r.content.iter_chunked(MIB):
            got.update(await asyncio.to_thread(decryptor.update, chunk))
    got.update(decryptor.finalize())
    if got.digest() != sealed.digest:
        raise RuntimeError("downloaded plaintext differs")
    return {"upload_s": uploaded - started, "download_s": time.monotonic() - downloading}


async def _sample_rss(pid: int, samples: list[int]) -> None:
    while True:
        samples.append(memory_kib(pid)["VmRSS"])
        await asyncio.sleep(0.2)


async def drive(server: Server, context: ssl.SSLContext, creds: list[Any],
                args: argparse.Namespace, scratch: Path) -> dict[str, Any]:
    sender, receiver = creds[0].token, creds[1].token
    connector = aiohttp.TCPConnector(ssl=context, limit=64)
    each = max(1, args.size_mib // args.parallel)
    async with aiohttp.ClientSession(connector=connector, timeout=TIMEOUT) as session:
        (warm_up,) = await sealed_files(scratch, [1])
        await one_transfer(session, server.url, sender, receiver, warm_up)
        (sealed,) = await sealed_files(scratch, [args.size_mib])
        baseline = memory_kib(server.pid)
        samples: list[int] = []
        sampler = asyncio.create_task(_sample_rss(server.pid, samples))
        cpu_before = cpu_seconds(server.pid)
        upload_cpu: dict[str, float] = {}
        try:
            single = await one_transfer(
                session, server.url, sender, receiver, sealed,
                _upload_cpu(server.pid, upload_cpu, args.profile),
            )
            batch = await sealed_files(scratch, [each] * args.parallel)
            started = time.monotonic()
            await asyncio.gather(*(
                one_transfer(session, server.url, sender, receiver, one) for one in batch
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
        "upload_cpu_seconds": upload_cpu,
    }


@contextlib.contextmanager
def _upload_cpu(server_pid: int, out: dict[str, float], profile: Path | None) -> Iterator[None]:
    pids = {"server": server_pid, "client": os.getpid()}
    with _profiled(profile, pids):
        before = {name: _cpu(pid) for name, pid in pids.items()}
        yield
        for name, pid in pids.items():
            spent = [round(b - a, 2) for a, b in zip(before[name], _cpu(pid), strict=True)]
            out[name], out[f"{name}_main_thread"] = spent


def _cpu(pid: int) -> tuple[float, float]:
    """CPU seconds of a process and of its main thread (the event loop)."""
    return cpu_seconds(pid), cpu_seconds(pid, thread=pid)


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
        report = asyncio.run(drive(server, context, creds, args, data_dir.parent))
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
