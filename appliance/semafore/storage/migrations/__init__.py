"""Append-only numbered schema migrations.

Each file ``NNNN_name.sql`` in this directory is applied once, in order, inside its own
transaction, and ``PRAGMA user_version`` records the number of the last one applied. Files are
never edited after they ship; a change is a new file. Numbers run 0001, 0002, ... without gaps;
any other ``.sql`` file here is an error, not silently skipped. A database whose version is newer
than the newest file here was written by newer code, and opening it is refused.

Migrations run with foreign keys off, so SQLite's table-rebuild procedure works, and
``PRAGMA foreign_key_check`` must come back empty before each one commits. A migration must not
contain BEGIN/COMMIT of its own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable

import aiosqlite

from semafore.storage.errors import StorageError

_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def available_migrations(directory: Traversable | None = None) -> list[Migration]:
    """The migrations shipped in ``directory`` (default: this package), in order and checked."""
    source = directory if directory is not None else resources.files(__package__)
    found: list[Migration] = []
    for entry in source.iterdir():
        if not entry.name.endswith(".sql"):
            continue
        match = _NAME.match(entry.name)
        if not match:
            raise StorageError(
                f"migration file {entry.name} is not named NNNN_lowercase_name.sql",
                code="migration_invalid",
            )
        found.append(Migration(int(match.group(1)), entry.name, entry.read_text("utf-8")))
    found.sort(key=lambda m: (m.version, m.name))
    for expected, migration in enumerate(found, start=1):
        if migration.version != expected:
            raise StorageError(
                f"migrations must be numbered without gaps or duplicates: expected "
                f"{expected:04d}, found {migration.name}",
                code="migration_invalid",
            )
    return found


def latest_version(directory: Traversable | None = None) -> int:
    migrations = available_migrations(directory)
    return migrations[-1].version if migrations else 0


async def schema_version(conn: aiosqlite.Connection) -> int:
    async with conn.execute("PRAGMA user_version") as cursor:
        row = await cursor.fetchone()
    return int(row[0]) if row else 0


def pending_migrations(
    current: int, migrations: list[Migration], *, migrate: bool
) -> list[Migration]:
    """The migrations a database at version ``current`` still needs; refuse what we cannot run."""
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
    return pending


async def apply_migrations(
    conn: aiosqlite.Connection, *, migrate: bool = True, directory: Traversable | None = None
) -> list[str]:
    """Bring the schema up to date; return the names applied. Refuse a newer database."""
    current = await schema_version(conn)
    pending = pending_migrations(current, available_migrations(directory), migrate=migrate)
    if not pending:
        return []
    async with conn.execute("PRAGMA foreign_keys") as cursor:
        row = await cursor.fetchone()
    foreign_keys = bool(row and row[0])
    await conn.execute("PRAGMA foreign_keys = OFF")
    try:
        for migration in pending:
            await _apply(conn, migration)
    finally:
        await conn.execute(f"PRAGMA foreign_keys = {'ON' if foreign_keys else 'OFF'}")
    return [m.name for m in pending]


async def _apply(conn: aiosqlite.Connection, migration: Migration) -> None:
    # executescript() runs the whole file; the transaction is left open so the checks below
    # decide between COMMIT and ROLLBACK.
    script = f"BEGIN IMMEDIATE;\n{migration.sql}\n;\nPRAGMA user_version = {migration.version};\n"
    try:
        await conn.executescript(script)
        if not conn.in_transaction:
            raise StorageError("it must not end the transaction itself")
        async with conn.execute("PRAGMA foreign_key_check") as cursor:
            violations = await cursor.fetchall()
        if violations:
            tables = sorted({str(row[0]) for row in violations})
            raise StorageError(f"it leaves foreign key violations in {', '.join(tables)}")
        await conn.execute("COMMIT")
    except Exception as exc:
        if conn.in_transaction:
            await conn.execute("ROLLBACK")
        detail = exc if isinstance(exc, StorageError) else f"{type(exc).__name__}: {exc}"
        raise StorageError(
            f"migration {migration.name} failed: {detail}", code="migration_failed"
        ) from exc
