"""Opening the appliance's database for an operator command on the box.

The command refuses a database whose schema is not current (run ``semafore migrate``), and
works beside a running server: SQLite's locking serialises the writes.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from semafore.config import Settings
from semafore.storage import Database


@contextlib.asynccontextmanager
async def operator_database(settings: Settings) -> AsyncIterator[Database]:
    storage = settings.storage
    database = Database(
        storage.database_path, busy_timeout_ms=storage.busy_timeout_ms, reader_connections=1
    )
    await database.open(migrate=False)
    try:
        yield database
    finally:
        await database.close()
