"""Opening the database and the admin-side services (audit log, admin sign-in) for an
operator command on the box, beside a running server (SQLite serialises the writes)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from semafore.config import Settings
from semafore.services import SystemClock
from semafore.services.admin import AdminServices, build_admin_services
from semafore.services.identity import build_identity_services
from semafore.services.otp_providers import ConsoleProvider
from semafore.storage import Database


@contextlib.asynccontextmanager
async def admin_services(settings: Settings) -> AsyncIterator[AdminServices]:
    storage = settings.storage
    database = Database(
        storage.database_path, busy_timeout_ms=storage.busy_timeout_ms, reader_connections=1
    )
    await database.open(migrate=False)
    try:
        clock = SystemClock()
        # Operator commands never send codes; no need to reach the configured gateway.
        identity = build_identity_services(settings, clock, database, provider=ConsoleProvider())
        yield build_admin_services(settings, clock, database, identity)
    finally:
        await database.close()
