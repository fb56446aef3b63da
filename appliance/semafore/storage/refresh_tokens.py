"""Refresh tokens: rotating, single use, stored as keyed hashes, grouped in chains."""

from __future__ import annotations

from dataclasses import dataclass

import aiosqlite


@dataclass(frozen=True, slots=True)
class RefreshTokenRow:
    chain_id: str
    user_id: str
    device_id: int
    issued_at: int
    expires_at: int
    used_at: int | None


async def insert_refresh_token(
    conn: aiosqlite.Connection, *, token_hash: bytes, chain_id: str, user_id: str,
    device_id: int, now: int, expires_at: int,
) -> None:
    await conn.execute(
        "INSERT INTO refresh_tokens (token_hash, chain_id, user_id, device_id, issued_at,"
        " expires_at) VALUES (?, ?, ?, ?, ?, ?)",
        (token_hash, chain_id, user_id, device_id, now, expires_at),
    )


async def get_refresh_token(
    conn: aiosqlite.Connection, token_hash: bytes
) -> RefreshTokenRow | None:
    async with conn.execute(
        "SELECT chain_id, user_id, device_id, issued_at, expires_at, used_at"
        " FROM refresh_tokens WHERE token_hash = ?",
        (token_hash,),
    ) as cursor:
        row = await cursor.fetchone()
    if row is None:
        return None
    return RefreshTokenRow(
        str(row[0]), str(row[1]), int(row[2]), int(row[3]), int(row[4]),
        None if row[5] is None else int(row[5]),
    )


async def mark_used(conn: aiosqlite.Connection, token_hash: bytes, now: int) -> bool:
    """Mark an unused token used; False when it was already used (a replay)."""
    cursor = await conn.execute(
        "UPDATE refresh_tokens SET used_at = ? WHERE token_hash = ? AND used_at IS NULL",
        (now, token_hash),
    )
    return cursor.rowcount == 1


async def delete_chain(conn: aiosqlite.Connection, chain_id: str) -> None:
    await conn.execute("DELETE FROM refresh_tokens WHERE chain_id = ?", (chain_id,))


async def delete_device_tokens(conn: aiosqlite.Connection, user_id: str, device_id: int) -> None:
    await conn.execute(
        "DELETE FROM refresh_tokens WHERE user_id = ? AND device_id = ?", (user_id, device_id)
    )


async def delete_expired(conn: aiosqlite.Connection, now: int) -> None:
    await conn.execute("DELETE FROM refresh_tokens WHERE expires_at <= ?", (now,))


async def chain_exists(conn: aiosqlite.Connection, chain_id: str) -> bool:
    async with conn.execute(
        "SELECT 1 FROM refresh_tokens WHERE chain_id = ? LIMIT 1", (chain_id,)
    ) as cursor:
        return await cursor.fetchone() is not None
