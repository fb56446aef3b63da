"""The file OTP provider's spool: one JSON file per message, written atomically (labs, tests)."""

from __future__ import annotations

import json
import os
import secrets
import time
from pathlib import Path


def write_spool_message(spool_dir: Path, record: dict[str, str]) -> Path:
    """Write ``record`` as ``<spool_dir>/<ns-time>-<random>.json`` (0600, temp → fsync → rename)."""
    spool_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    name = f"{time.time_ns():020d}-{secrets.token_hex(4)}"
    tmp = spool_dir / f".{name}.tmp"
    final = spool_dir / f"{name}.json"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        view = memoryview(json.dumps(record).encode("utf-8"))
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, final)
    return final


def read_spool(spool_dir: Path) -> list[dict[str, str]]:
    """Every spooled message, oldest first."""
    if not spool_dir.is_dir():
        return []
    return [
        json.loads(path.read_text("utf-8")) for path in sorted(spool_dir.glob("*.json"))
    ]
