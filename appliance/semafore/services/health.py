"""Liveness and readiness."""

from __future__ import annotations

from semafore.storage import Database


class HealthService:
    def __init__(self, database: Database) -> None:
        self._database = database

    async def ready(self) -> bool:
        """True when the database answers a query."""
        return await self._database.ping()
