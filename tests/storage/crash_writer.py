"""Child process for test_crash: many concurrent writers, each id printed once write() returns.

Usage: python crash_writer.py DB_PATH WRITERS [KILL_AT [ROW_BYTES]]. Each of WRITERS coroutines
writes rows one after another until the process is killed (or stdout is closed); every id is
written to stdout (and flushed) the moment its write() has returned, i.e. the moment the caller
was told it is done. With KILL_AT the process SIGKILLs itself right after printing its KILL_AT-th
id: the harshest moment, before anything else the loop would do, such as finishing a COMMIT
that is still under way. ROW_BYTES (default 300) sizes each row: large rows make every COMMIT
write many pages, so a COMMIT still under way at that moment would be caught half-written.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import sys
from pathlib import Path

import aiosqlite

from semafore.storage import Database


async def create_table(conn: aiosqlite.Connection) -> None:
    await conn.execute(
        "CREATE TABLE IF NOT EXISTS acked (id INTEGER PRIMARY KEY, payload BLOB NOT NULL) STRICT"
    )


async def main(path: Path, writers: int, kill_at: int | None, row_bytes: int) -> None:
    db = Database(path)
    await db.open()
    await db.write("create", create_table)
    printed = 0

    async def writer(number: int) -> None:
        for round_ in itertools.count():
            ident = round_ * writers + number

            async def insert(conn: aiosqlite.Connection, ident: int = ident) -> None:
                await conn.execute(
                    "INSERT INTO acked VALUES (?, randomblob(?))", (ident, row_bytes)
                )

            await db.write("acked", insert)
            sys.stdout.write(f"{ident}\n")
            sys.stdout.flush()
            nonlocal printed
            printed += 1
            if printed == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)

    await asyncio.gather(*(writer(n) for n in range(writers)))


if __name__ == "__main__":
    kill_at = int(sys.argv[3]) if len(sys.argv) > 3 else None
    row_bytes = int(sys.argv[4]) if len(sys.argv) > 4 else 300
    asyncio.run(main(Path(sys.argv[1]), int(sys.argv[2]), kill_at, row_bytes))
