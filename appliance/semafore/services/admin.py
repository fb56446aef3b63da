"""Builds the admin-side services (audit log, admin sign-in, API tokens) and runs their
background work: periodic audit checkpoints and removal of expired sign-in state."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

from semafore.config import Settings
from semafore.services.admin_auth import AdminAuthService
from semafore.services.admin_tokens import ApiTokenService
from semafore.services.audit import AuditService
from semafore.services.clock import Clock
from semafore.services.identity import IdentityServices
from semafore.storage import Database

log = logging.getLogger("semafore.admin")

HOUSEKEEPING_SECONDS = 300.0


@dataclass(slots=True)
class AdminServices:
    audit: AuditService
    admin_auth: AdminAuthService
    api_tokens: ApiTokenService

    @contextlib.asynccontextmanager
    async def background(self) -> AsyncIterator[None]:
        """Periodic checkpoints and housekeeping; a last checkpoint at shutdown."""
        tasks = [
            asyncio.create_task(self.audit.run_checkpoints(), name="audit-checkpoints"),
            asyncio.create_task(self._housekeeping(), name="admin-housekeeping"),
        ]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            try:
                await self.audit.checkpoint(only_if_grown=True)
            except Exception:
                log.exception("signing the shutdown audit checkpoint failed")

    async def _housekeeping(self) -> None:
        while True:
            await asyncio.sleep(HOUSEKEEPING_SECONDS)
            try:
                await self.admin_auth.purge_expired()
            except Exception:
                log.exception("admin housekeeping failed")


def build_admin_services(
    settings: Settings, clock: Clock, database: Database, identity: IdentityServices
) -> AdminServices:
    keys = identity.keys
    token_key = keys.secret("token")
    audit = AuditService(database, clock, settings.audit, keys.secret("audit-checkpoint"))
    api_tokens = ApiTokenService(database, clock, settings.admin, token_key)
    admin_auth = AdminAuthService(
        database, clock, settings.admin, identity.phones, identity.otp,
        token_key=token_key, totp_key=keys.secret("admin-totp"), api_tokens=api_tokens,
    )
    return AdminServices(audit, admin_auth, api_tokens)
