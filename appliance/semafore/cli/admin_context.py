"""Opening the database and the admin-side services (audit log, admin sign-in) for an
operator command on the box, beside a running server (SQLite serialises the writes)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from semafore.cli.database_context import operator_database
from semafore.config import Settings
from semafore.services import SystemClock
from semafore.services.admin import AdminServices, build_admin_services
from semafore.services.identity import build_identity_services
from semafore.services.otp_providers import ConsoleProvider


@contextlib.asynccontextmanager
async def admin_services(settings: Settings) -> AsyncIterator[AdminServices]:
    async with operator_database(settings) as database:
        clock = SystemClock()
        # Operator commands never send codes; no need to reach the configured gateway.
        identity = build_identity_services(settings, clock, database, provider=ConsoleProvider())
        yield build_admin_services(settings, clock, database, identity)
