"""Child process for test_crash: many concurrent writers, each id printed once write() returns.

Usage: python crash_writer.py DB_PATH WRITERS. Each of WRITERS coroutines writes rows one after
another until the process is killed (or stdout is closed); every id is written to stdout (and
flushed) the moment its write() has returned, i.e. the moment the caller was told it is done.
"""

from __future__ import annotations

import asyncio
import itertools
import sys
from pathlib import Path

import aiosqlite

from semafore.storage import Database


async def create_table(conn: aiosqlite.Connection) -> None:
    await conn.execute(
        "CREATE TABLE IF NOT EXISTS acked (id INTEGER PRIMARY KEY, payload BLOB NOT NULL) STRICT"
    )


async def main(path: Path, writers: int) -> None:
    db = Database(path)
    await db.open()
    await db.write("create", create_table)

    async def writer(number: int) -> None:
        for round_ in itertools.count():
            ident = round_ * writers + number

            async def insert(conn: aiosqlite.Connection, ident: int = ident) -> None:
                await conn.execute("INSERT INTO acked VALUES (?, randomblob(300))", (ident,))

            await db.write("acked", insert)
            sys.stdout.write(f"{ident}\n")
            sys.stdout.flush()

    await asyncio.gather(*(writer(n) for n in range(writers)))


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), int(sys.argv[2])))
