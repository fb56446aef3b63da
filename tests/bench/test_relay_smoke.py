"""A short run of each bench/relay mode: the JSON has its fields and every accepted envelope
was delivered and acked. No timing assertions: figures are for docs/performance.md."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUNS = {
    "pairs": ["--devices", "6", "--rate", "60"],
    "group": ["--devices", "5", "--group-size", "5", "--rate", "10"],
    "idle": ["--devices", "6"],
    "crypto": ["--devices", "4", "--rate", "20"],
}


def _bench(mode: str, tmp_path: Path) -> dict:  # type: ignore[type-arg]
    argv = [sys.executable, "-m", "bench.relay", "--mode", mode, *RUNS[mode],
            "--duration", "2", "--warmup", "0", "--drain", "20",
            "--data-dir", str(tmp_path)]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:] + done.stdout[-3000:]
    return json.loads(done.stdout)


@pytest.mark.slow
@pytest.mark.parametrize("mode", sorted(RUNS))
def test_each_mode_reports_and_delivers_everything(mode: str, tmp_path: Path) -> None:
    report = _bench(mode, tmp_path)
    assert report["mode"] == mode
    assert report["tls"] == "TLSv1.3"
    assert report["connected"] == report["open_at_end"] == report["devices"]
    assert report["errors"] == {}
    for key in ("cpu_model", "cores", "memory_gib", "python", "sqlite", "openssl"):
        assert report["machine"][key]
    for key in ("pid", "sockets", "rss_connected_kib", "hwm_kib", "cpu_seconds", "cpu_percent"):
        assert key in report["server"]
    messages = report["messages"]
    for key in ("accepted_per_s", "delivered_per_s", "duplicates"):
        assert key in messages
    assert messages["undelivered"] == 0
    assert messages["delivered"] == messages["envelopes_accepted"]
    assert report["queue_depth_after"] == 0  # every delivered envelope was acked and deleted
    if mode == "idle":
        assert messages["sent"] == 0
        assert report["server"]["sockets"] >= report["devices"]
        return
    assert messages["accepted"] > 0 and messages["accepted"] == messages["sent"]
    assert set(report["latency_ms"]) >= {"count", "p50", "p95", "p99", "max"}
    if mode == "group":
        assert report["group"]["complete"] == report["group"]["messages"] > 0
        assert set(report["group"]["all_delivered_ms"]) >= {"p50", "p99", "max"}
    if mode == "crypto":
        assert report["crypto"]["encrypt_us_per_msg"] > 0
        assert report["crypto"]["decrypt_us_per_msg"] > 0
