"""One-time codes (stored only as keyed hashes) and the send counters behind rate limits."""

from __future__ import annotations

from dataclasses import dataclass

import aiosqlite


@dataclass(frozen=True, slots=True)
class OtpCodeRow:
    code_hmac: bytes
    created_at: int
    expires_at: int
    failed_tries: int


async def put_code(
    conn: aiosqlite.Connection,
    *,
    phone_hmac: bytes,
    purpose: str,
    code_hmac: bytes,
    now: int,
    expires_at: int,
) -> None:
    """Store a fresh code; it replaces any earlier code for this number and purpose."""
    await conn.execute(
        "INSERT INTO otp_codes (phone_hmac, purpose, code_hmac, created_at, expires_at,"
        " failed_tries) VALUES (?, ?, ?, ?, ?, 0) ON CONFLICT (phone_hmac, purpose) DO UPDATE"
        " SET code_hmac = excluded.code_hmac, created_at = excluded.created_at,"
        " expires_at = excluded.expires_at, failed_tries = 0",
        (phone_hmac, purpose, code_hmac, now, expires_at),
    )


async def get_code(
    conn: aiosqlite.Connection, phone_hmac: bytes, purpose: str
) -> OtpCodeRow | None:
    async with conn.execute(
        "SELECT code_hmac, created_at, expires_at, failed_tries FROM otp_codes"
        " WHERE phone_hmac = ? AND purpose = ?",
        (phone_hmac, purpose),
    ) as cursor:
        row = await cursor.fetchone()
    if row is None:
        return None
    return OtpCodeRow(bytes(row[0]), int(row[1]), int(row[2]), int(row[3]))


async def record_failed_try(conn: aiosqlite.Connection, phone_hmac: bytes, purpose: str) -> int:
    async with conn.execute(
        "UPDATE otp_codes SET failed_tries = failed_tries + 1"
        " WHERE phone_hmac = ? AND purpose = ? RETURNING failed_tries",
        (phone_hmac, purpose),
    ) as cursor:
        row = await cursor.fetchone()
    return int(row[0]) if row else 0


async def delete_code(conn: aiosqlite.Connection, phone_hmac: bytes, purpose: str) -> None:
    await conn.execute(
        "DELETE FROM otp_codes WHERE phone_hmac = ? AND purpose = ?", (phone_hmac, purpose)
    )


async def delete_expired_codes(conn: aiosqlite.Connection, now: int) -> int:
    cursor = await conn.execute("DELETE FROM otp_codes WHERE expires_at <= ?", (now,))
    return cursor.rowcount


async def record_send(conn: aiosqlite.Connection, kind: str, subject: bytes, now: int) -> None:
    await conn.execute(
        "INSERT INTO otp_sends (kind, subject, sent_at) VALUES (?, ?, ?)", (kind, subject, now)
    )


async def sends_since(
    conn: aiosqlite.Connection, kind: str, subject: bytes, since: int
) -> list[int]:
    """Send times (ascending) for this subject at or after ``since``."""
    async with conn.execute(
        "SELECT sent_at FROM otp_sends WHERE kind = ? AND subject = ? AND sent_at >= ?"
        " ORDER BY sent_at",
        (kind, subject, since),
    ) as cursor:
        return [int(r[0]) for r in await cursor.fetchall()]


async def prune_sends(conn: aiosqlite.Connection, before: int) -> None:
    await conn.execute("DELETE FROM otp_sends WHERE sent_at < ?", (before,))
