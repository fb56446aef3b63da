"""A 200 MiB encrypted file through a real `semafore serve` subprocess with the upload limit
raised: byte-identical at the other end, the server's peak RSS (VmHWM) flat, no plaintext in
the blob directory. Figures go to the test output (-s) and to files-transfer.json."""

from __future__ import annotations

import json
import os
import ssl

import pytest

from support.appliance import Appliance, ServeProcess
from support.relay_client import RELAY_TEST_CONFIG

from .transfer import MIB, peak_rss_kib, plaintext_in, transfer, world_before_serving

pytestmark = pytest.mark.slow

SIZE_MIB = int(os.environ.get("SEMAFORE_TEST_TRANSFER_MIB", "200"))
# Streaming keeps the server's memory independent of the file size; allow for TLS buffers,
# the write run (1 MiB) and allocator noise, far below the file size.
MAX_RSS_GROWTH_MIB = 48


async def test_large_transfer_keeps_server_memory_flat(
    appliance: Appliance, ca_ssl_context: ssl.SSLContext, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    appliance.configure(
        **RELAY_TEST_CONFIG,
        files={"max_upload_bytes": 1 << 30, "org_quota_bytes": 4 << 30},
        logging={"access_log": False},
    )
    world = await world_before_serving(appliance.config_path, [1, 1])
    sender, receiver = (devices[0] for devices in world.members.values())
    served = ServeProcess.start(appliance)
    try:
        # Warm up (first TLS handshakes, imports, first upload) before the baseline.
        await transfer(served.url, ca_ssl_context, sender.access_token, receiver.access_token, 1)
        before = peak_rss_kib(served.process.pid)
        done = await transfer(
            served.url, ca_ssl_context, sender.access_token, receiver.access_token, SIZE_MIB
        )
        after = peak_rss_kib(served.process.pid)
    finally:
        served.terminate()
    blob_dir = appliance.data_dir / "blobs"
    stored = blob_dir / done.file_id[:2] / done.file_id
    assert stored.stat().st_size == done.blob_bytes
    assert plaintext_in(blob_dir) == []
    growth_mib = (after["VmHWM"] - before["VmHWM"]) / 1024
    report = {
        "size_mib": SIZE_MIB,
        "server_vmhwm_before_mib": round(before["VmHWM"] / 1024, 1),
        "server_vmhwm_after_mib": round(after["VmHWM"] / 1024, 1),
        "server_vmhwm_growth_mib": round(growth_mib, 1),
        "upload_mib_s": round(SIZE_MIB / done.upload_seconds, 1),
        "download_mib_s": round(SIZE_MIB / done.download_seconds, 1),
        "blob_bytes": done.blob_bytes,
    }
    print("\nfiles transfer:", json.dumps(report))
    (tmp_path / "files-transfer.json").write_text(json.dumps(report))
    assert done.blob_bytes > SIZE_MIB * MIB
    assert growth_mib < MAX_RSS_GROWTH_MIB, report
