"""Push endpoints: at most one per device (a UnifiedPush endpoint or an HTTPS webhook)."""

from __future__ import annotations

from dataclasses import dataclass

import aiosqlite

from semafore.storage.database import Database

Address = tuple[str, int]


@dataclass(frozen=True, slots=True)
class PushEndpoint:
    kind: str
    url: str


class PushStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def set_endpoint(self, device: Address, endpoint: PushEndpoint, *, now_ms: int) -> None:
        async def unit(conn: aiosqlite.Connection) -> None:
            await conn.execute(
                "INSERT INTO push_endpoints (user_id, device_id, kind, url, registered_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (user_id, device_id) DO UPDATE SET "
                "kind = excluded.kind, url = excluded.url, registered_at = excluded.registered_at",
                (device[0], device[1], endpoint.kind, endpoint.url, now_ms),
            )

        await self._db.write("push.set_endpoint", unit)

    async def delete_endpoint(self, device: Address) -> bool:
        async def unit(conn: aiosqlite.Connection) -> bool:
            cursor = await conn.execute(
                "DELETE FROM push_endpoints WHERE user_id = ? AND device_id = ?", device
            )
            return cursor.rowcount > 0

        return await self._db.write("push.delete_endpoint", unit)

    async def endpoint(self, device: Address) -> PushEndpoint | None:
        async with self._db.read() as conn, conn.execute(
            "SELECT kind, url FROM push_endpoints WHERE user_id = ? AND device_id = ?", device
        ) as cursor:
            row = await cursor.fetchone()
        return PushEndpoint(str(row[0]), str(row[1])) if row else None
