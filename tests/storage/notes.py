"""A throwaway ``notes`` table that storage tests write to."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import aiosqlite
import pytest

from semafore.storage import Database, StorageError

Unit = Callable[[aiosqlite.Connection], Awaitable[object]]


async def create_notes(conn: aiosqlite.Connection) -> None:
    await conn.execute(
        "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL UNIQUE) STRICT"
    )


def insert_note(note_id: int, body: str | None = None) -> Unit:
    async def unit(conn: aiosqlite.Connection) -> int:
        await conn.execute(
            "INSERT INTO notes (id, body) VALUES (?, ?)", (note_id, body or f"note {note_id}")
        )
        return note_id

    return unit


async def note_ids(db: Database) -> set[int]:
    async with db.read() as conn, conn.execute("SELECT id FROM notes") as cursor:
        return {row[0] for row in await cursor.fetchall()}


async def refused_open(db: Database, *, migrate: bool = True) -> StorageError:
    """The error ``db.open()`` raises; fails (after closing it) if the open succeeds."""
    try:
        await db.open(migrate=migrate)
    except StorageError as exc:
        return exc
    await db.close()
    pytest.fail("open() was expected to be refused")
