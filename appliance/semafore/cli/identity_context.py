"""Opening the database and the identity services for an operator command on the box.

The command refuses a database whose schema is not current (run ``semafore migrate``), and
works beside a running server: SQLite's locking serialises the writes, and the server picks up
revocations made here within a second.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import AsyncIterator, Sequence
from typing import Any

from semafore.config import Settings
from semafore.services import SystemClock
from semafore.services.identity import IdentityServices, build_identity_services
from semafore.services.otp_providers import ConsoleProvider
from semafore.storage import Database

OPERATOR = "operator"


@contextlib.asynccontextmanager
async def identity_services(settings: Settings) -> AsyncIterator[IdentityServices]:
    storage = settings.storage
    database = Database(
        storage.database_path, busy_timeout_ms=storage.busy_timeout_ms, reader_connections=1
    )
    await database.open(migrate=False)
    try:
        # Operator commands never send codes; no need to reach the configured gateway.
        yield build_identity_services(
            settings, SystemClock(), database, provider=ConsoleProvider()
        )
    finally:
        await database.close()


def print_table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> None:
    """A plain aligned table on stdout (or a line saying there is nothing)."""
    if not rows:
        print("(none)")
        return
    cells = [[str(h) for h in headers]]
    cells += [["-" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for row in cells:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def print_json(data: Any) -> None:
    json.dump(data, sys.stdout, ensure_ascii=False, indent=1)
    print()
