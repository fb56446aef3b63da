"""Group commit throughput of the storage writer: rows/s and commits at 1, 100 and 1,000 writers.

Each writer inserts 300-byte rows one after another through ``Database.write`` (WAL,
synchronous=FULL, one SAVEPOINT per unit) into a fresh database; prints one JSON document.

    .venv/bin/python bench/storage_group_commit.py [--seconds 3] [--dir /var/tmp]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

import aiosqlite

from semafore.storage import Database

ROW_BYTES = 300


async def create_table(conn: aiosqlite.Connection) -> None:
    await conn.execute("CREATE TABLE bench (id INTEGER PRIMARY KEY, body BLOB NOT NULL) STRICT")


async def insert_row(conn: aiosqlite.Connection) -> None:
    await conn.execute("INSERT INTO bench (body) VALUES (?)", (os.urandom(ROW_BYTES),))


async def run(writers: int, seconds: float, directory: Path) -> dict[str, object]:
    db = Database(directory / f"bench-{writers}.db")
    await db.open()
    await db.write("create", create_table)
    batches: list[tuple[int, float]] = []
    db.add_commit_observer(lambda units, elapsed: batches.append((units, elapsed)))
    deadline = time.perf_counter() + seconds

    async def writer() -> int:
        done = 0
        while time.perf_counter() < deadline:
            await db.write("bench row", insert_row)
            done += 1
        return done

    started = time.perf_counter()
    rows = sum(await asyncio.gather(*(writer() for _ in range(writers))))
    elapsed = time.perf_counter() - started
    await db.close()
    commit_ms = sorted(e * 1000 for _, e in batches)
    return {
        "writers": writers,
        "rows": rows,
        "seconds": round(elapsed, 3),
        "rows_per_second": round(rows / elapsed),
        "commits": len(batches),
        "units_per_commit_mean": round(rows / len(batches), 1),
        "transaction_ms_p50": round(statistics.median(commit_ms), 2),
        "transaction_ms_max": round(commit_ms[-1], 2),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="per concurrency level")
    parser.add_argument("--dir", type=Path, default=None, help="where the databases go")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="semafore-bench-") as tmp:
        results = [await run(n, args.seconds, Path(tmp)) for n in (1, 100, 1000)]
    print(json.dumps({
        "benchmark": "storage_group_commit",
        "python": platform.python_version(),
        "sqlite_version": sqlite3.sqlite_version,
        "journal_mode": "wal",
        "synchronous": "FULL",
        "row_bytes": ROW_BYTES,
        "results": results,
    }, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
