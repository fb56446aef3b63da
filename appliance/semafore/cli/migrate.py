"""``semafore migrate``: bring the database schema up to date (run with the service stopped)."""

from __future__ import annotations

import argparse
import asyncio

import aiosqlite

from semafore.cli.common import add_config_option, load_settings
from semafore.config import Settings
from semafore.storage import Database, schema_version


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "migrate", help="apply pending database migrations",
        description=(
            "Apply every pending schema migration (each in its own transaction) and print the "
            "schema version before and after. Refuses a database newer than this SemaFore. "
            "`serve` also migrates at start; this command does it as a separate, visible step."
        ),
    )
    add_config_option(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = load_settings(args)
    before, after = asyncio.run(_migrate(settings))
    if before == after:
        print(f"schema version {after}: up to date")
    else:
        print(f"schema version {before} -> {after}: migrated")
    return 0


async def _migrate(settings: Settings) -> tuple[int, int]:
    storage = settings.storage
    database = Database(
        storage.database_path, busy_timeout_ms=storage.busy_timeout_ms, reader_connections=1
    )
    before = await _current_version(database)
    await database.open(migrate=True)
    try:
        async with database.read() as conn:
            after = await schema_version(conn)
    finally:
        await database.close()
    return before, after


async def _current_version(database: Database) -> int:
    """The schema version on disk before migrating (0 for a database not created yet)."""
    if not database.path.exists():
        return 0
    # A read-only peek; storage's schema_version runs the query.
    async with aiosqlite.connect(f"file:{database.path}?mode=ro", uri=True) as conn:
        return await schema_version(conn)
