"""Admin API tokens: scoped, expiring, revocable; stored only as keyed hashes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiosqlite


@dataclass(frozen=True, slots=True)
class ApiTokenRow:
    token_id: str
    org_id: str
    created_by: str
    name: str
    scopes: tuple[str, ...]
    created_at: int
    expires_at: int
    revoked_at: int | None
    last_used_day: int | None
    creator_role: str | None = None  # the creator's current role (None: no longer a member)


_SELECT = (
    "SELECT t.token_id, t.org_id, t.created_by, t.name, t.scopes, t.created_at, t.expires_at,"
    " t.revoked_at, t.last_used_day,"
    " (SELECT m.role FROM members m WHERE m.user_id = t.created_by AND m.org_id = t.org_id)"
    " FROM admin_api_tokens t"
)


def _row(row: Any) -> ApiTokenRow:
    return ApiTokenRow(
        token_id=str(row[0]), org_id=str(row[1]), created_by=str(row[2]), name=str(row[3]),
        scopes=tuple(str(row[4]).split()), created_at=int(row[5]), expires_at=int(row[6]),
        revoked_at=None if row[7] is None else int(row[7]),
        last_used_day=None if row[8] is None else int(row[8]),
        creator_role=None if row[9] is None else str(row[9]),
    )


async def insert_token(
    conn: aiosqlite.Connection, *, token_id: str, token_hash: bytes, org_id: str,
    created_by: str, name: str, scopes: tuple[str, ...], now: int, expires_at: int,
) -> None:
    await conn.execute(
        "INSERT INTO admin_api_tokens (token_id, token_hash, org_id, created_by, name, scopes,"
        " created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (token_id, token_hash, org_id, created_by, name, " ".join(sorted(scopes)), now,
         expires_at),
    )


async def token_by_hash(conn: aiosqlite.Connection, token_hash: bytes) -> ApiTokenRow | None:
    async with conn.execute(f"{_SELECT} WHERE t.token_hash = ?", (token_hash,)) as cursor:
        row = await cursor.fetchone()
    return None if row is None else _row(row)


async def get_token(
    conn: aiosqlite.Connection, org_id: str, token_id: str
) -> ApiTokenRow | None:
    async with conn.execute(
        f"{_SELECT} WHERE t.token_id = ? AND t.org_id = ?", (token_id, org_id)
    ) as cursor:
        row = await cursor.fetchone()
    return None if row is None else _row(row)


async def list_tokens(conn: aiosqlite.Connection, org_id: str) -> list[ApiTokenRow]:
    async with conn.execute(
        f"{_SELECT} WHERE t.org_id = ? ORDER BY t.created_at DESC, t.token_id", (org_id,)
    ) as cursor:
        return [_row(r) for r in await cursor.fetchall()]


async def revoke_token(conn: aiosqlite.Connection, org_id: str, token_id: str, now: int) -> bool:
    cursor = await conn.execute(
        "UPDATE admin_api_tokens SET revoked_at = ? WHERE token_id = ? AND org_id = ?"
        " AND revoked_at IS NULL",
        (now, token_id, org_id),
    )
    changed = cursor.rowcount
    await cursor.close()
    return changed == 1


async def note_used(conn: aiosqlite.Connection, token_id: str, day: int) -> None:
    await conn.execute(
        "UPDATE admin_api_tokens SET last_used_day = ? WHERE token_id = ?"
        " AND (last_used_day IS NULL OR last_used_day < ?)",
        (day, token_id, day),
    )
