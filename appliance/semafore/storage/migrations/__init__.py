"""Append-only numbered schema migrations.

Each file ``NNNN_name.sql`` in this directory is applied once, in order, inside its own
transaction, and ``PRAGMA user_version`` records the number of the last one applied. Files are
never edited after they ship; a change is a new file. A database whose version is newer than the
newest file here was written by newer code, and opening it is refused.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from importlib import resources

import aiosqlite

from semafore.storage.errors import StorageError

_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def available_migrations() -> list[Migration]:
    found: list[Migration] = []
    for entry in resources.files(__package__).iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), entry.name, entry.read_text("utf-8")))
    found.sort(key=lambda m: m.version)
    for expected, migration in enumerate(found, start=1):
        if migration.version != expected:
            raise StorageError(f"migration numbering has a gap at {migration.name}")
    return found


def latest_version() -> int:
    migrations = available_migrations()
    return migrations[-1].version if migrations else 0


async def schema_version(conn: aiosqlite.Connection) -> int:
    async with conn.execute("PRAGMA user_version") as cursor:
        row = await cursor.fetchone()
    return int(row[0]) if row else 0


async def apply_migrations(conn: aiosqlite.Connection, *, migrate: bool = True) -> list[str]:
    """Bring the schema up to date; return the names applied. Refuse a newer database."""
    current = await schema_version(conn)
    migrations = available_migrations()
    newest = migrations[-1].version if migrations else 0
    if current > newest:
        raise StorageError(
            f"database schema version {current} is newer than this SemaFore supports "
            f"({newest}); upgrade SemaFore or restore a matching backup",
            code="schema_too_new",
        )
    pending = [m for m in migrations if m.version > current]
    if pending and not migrate:
        raise StorageError(
            f"database schema version {current} is older than {newest}; run `semafore migrate`",
            code="schema_too_old",
        )
    applied: list[str] = []
    for migration in pending:
        script = (
            "BEGIN IMMEDIATE;\n"
            f"{migration.sql}\n"
            f"PRAGMA user_version = {migration.version};\n"
            "COMMIT;\n"
        )
        try:
            await conn.executescript(script)
        except sqlite3.Error as exc:
            if conn.in_transaction:
                await conn.execute("ROLLBACK")
            raise StorageError(
                f"migration {migration.name} failed: {exc}", code="migration_failed"
            ) from None
        applied.append(migration.name)
    return applied
