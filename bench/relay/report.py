"""Percentiles and the machine description for the JSON report."""

from __future__ import annotations

import os
import platform
import sqlite3
import ssl
from importlib.metadata import version
from pathlib import Path


def percentiles_ms(values_us: list[int]) -> dict[str, float | int]:
    if not values_us:
        return {"count": 0}
    ordered = sorted(values_us)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1000, 2)

    return {
        "count": len(ordered), "p50": at(0.50), "p95": at(0.95), "p99": at(0.99),
        "max": round(ordered[-1] / 1000, 2),
    }


def machine() -> dict[str, object]:
    model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem_kib = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kib = int(line.split()[1])
    return {
        "cpu_model": model,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "openssl": ssl.OPENSSL_VERSION,
        "aiohttp": version("aiohttp"),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
