"""Admin sign-in storage: TOTP secrets, recovery codes, sign-in tickets, admin sessions,
failed sign-in counters. (API tokens: :mod:`semafore.storage.admin_tokens`.)

Only keyed hashes of presented secrets and the sealed TOTP secret are stored here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiosqlite

# -- TOTP -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TotpRow:
    user_id: str
    secret_sealed: bytes
    created_at: int
    confirmed_at: int | None
    last_step: int


async def get_totp(conn: aiosqlite.Connection, user_id: str) -> TotpRow | None:
    async with conn.execute(
        "SELECT user_id, secret_sealed, created_at, confirmed_at, last_step FROM admin_totp"
        " WHERE user_id = ?",
        (user_id,),
    ) as cursor:
        row = await cursor.fetchone()
    if row is None:
        return None
    return TotpRow(str(row[0]), bytes(row[1]), int(row[2]),
                   None if row[3] is None else int(row[3]), int(row[4]))


async def put_pending_totp(
    conn: aiosqlite.Connection, user_id: str, secret_sealed: bytes, now: int
) -> None:
    """Start (or restart) enrolment: a new unconfirmed secret replaces an unconfirmed one."""
    await conn.execute(
        "INSERT INTO admin_totp (user_id, secret_sealed, created_at) VALUES (?, ?, ?)"
        " ON CONFLICT (user_id) DO UPDATE SET secret_sealed = excluded.secret_sealed,"
        " created_at = excluded.created_at, last_step = 0 WHERE confirmed_at IS NULL",
        (user_id, secret_sealed, now),
    )


async def accept_step(
    conn: aiosqlite.Connection, user_id: str, step: int, *, confirm_at: int | None = None
) -> bool:
    """Record ``step`` as used (and confirm enrolment); False if it is not newer than the last."""
    cursor = await conn.execute(
        "UPDATE admin_totp SET last_step = ?, confirmed_at = COALESCE(confirmed_at, ?)"
        " WHERE user_id = ? AND last_step < ?",
        (step, confirm_at, user_id, step),
    )
    changed = cursor.rowcount
    await cursor.close()
    return changed == 1


async def delete_totp(conn: aiosqlite.Connection, user_id: str) -> bool:
    cursor = await conn.execute("DELETE FROM admin_totp WHERE user_id = ?", (user_id,))
    deleted = cursor.rowcount
    await cursor.close()
    await conn.execute("DELETE FROM admin_recovery_codes WHERE user_id = ?", (user_id,))
    return deleted == 1


# -- recovery codes ---------------------------------------------------------------------------


async def replace_recovery_codes(
    conn: aiosqlite.Connection, user_id: str, code_hashes: list[bytes], now: int
) -> None:
    await conn.execute("DELETE FROM admin_recovery_codes WHERE user_id = ?", (user_id,))
    await conn.executemany(
        "INSERT INTO admin_recovery_codes (user_id, code_hash, created_at) VALUES (?, ?, ?)",
        [(user_id, h, now) for h in code_hashes],
    )


async def use_recovery_code(
    conn: aiosqlite.Connection, user_id: str, code_hash: bytes, now: int
) -> bool:
    """Mark the code used; False if there is no such unused code (single use)."""
    cursor = await conn.execute(
        "UPDATE admin_recovery_codes SET used_at = ? WHERE user_id = ? AND code_hash = ?"
        " AND used_at IS NULL",
        (now, user_id, code_hash),
    )
    changed = cursor.rowcount
    await cursor.close()
    return changed == 1


async def unused_recovery_codes(conn: aiosqlite.Connection, user_id: str) -> int:
    async with conn.execute(
        "SELECT count(*) FROM admin_recovery_codes WHERE user_id = ? AND used_at IS NULL",
        (user_id,),
    ) as cursor:
        row = await cursor.fetchone()
    return int(row[0]) if row else 0


# -- sign-in tickets --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TicketRow:
    user_id: str
    expires_at: int
    failed_tries: int


async def insert_ticket(
    conn: aiosqlite.Connection, ticket_hash: bytes, user_id: str, now: int, expires_at: int
) -> None:
    # One sign-in in progress per admin: a newer one replaces the others.
    await conn.execute("DELETE FROM admin_sign_ins WHERE user_id = ?", (user_id,))
    await conn.execute(
        "INSERT INTO admin_sign_ins (ticket_hash, user_id, created_at, expires_at)"
        " VALUES (?, ?, ?, ?)",
        (ticket_hash, user_id, now, expires_at),
    )


async def get_ticket(conn: aiosqlite.Connection, ticket_hash: bytes) -> TicketRow | None:
    async with conn.execute(
        "SELECT user_id, expires_at, failed_tries FROM admin_sign_ins WHERE ticket_hash = ?",
        (ticket_hash,),
    ) as cursor:
        row = await cursor.fetchone()
    return None if row is None else TicketRow(str(row[0]), int(row[1]), int(row[2]))


async def record_ticket_failure(conn: aiosqlite.Connection, ticket_hash: bytes) -> int:
    async with conn.execute(
        "UPDATE admin_sign_ins SET failed_tries = failed_tries + 1 WHERE ticket_hash = ?"
        " RETURNING failed_tries",
        (ticket_hash,),
    ) as cursor:
        row = await cursor.fetchone()
    return int(row[0]) if row else 0


async def delete_ticket(conn: aiosqlite.Connection, ticket_hash: bytes) -> None:
    await conn.execute("DELETE FROM admin_sign_ins WHERE ticket_hash = ?", (ticket_hash,))


# -- sessions ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SessionRow:
    session_id: str
    user_id: str
    org_id: str
    created_at: int
    last_seen_at: int
    expires_at: int
    reauth_at: int


_SESSION = (
    "SELECT session_id, user_id, org_id, created_at, last_seen_at, expires_at, reauth_at"
    " FROM admin_sessions"
)


def _session(row: Any) -> SessionRow:
    return SessionRow(str(row[0]), str(row[1]), str(row[2]), int(row[3]), int(row[4]),
                      int(row[5]), int(row[6]))


async def insert_session(
    conn: aiosqlite.Connection, *, token_hash: bytes, session_id: str, user_id: str,
    org_id: str, now: int, expires_at: int,
) -> None:
    await conn.execute(
        "INSERT INTO admin_sessions (token_hash, session_id, user_id, org_id, created_at,"
        " last_seen_at, expires_at, reauth_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (token_hash, session_id, user_id, org_id, now, now, expires_at, now),
    )


async def get_session(conn: aiosqlite.Connection, token_hash: bytes) -> SessionRow | None:
    async with conn.execute(f"{_SESSION} WHERE token_hash = ?", (token_hash,)) as cursor:
        row = await cursor.fetchone()
    return None if row is None else _session(row)


async def touch_session(conn: aiosqlite.Connection, token_hash: bytes, now: int) -> None:
    await conn.execute(
        "UPDATE admin_sessions SET last_seen_at = ? WHERE token_hash = ? AND last_seen_at < ?",
        (now, token_hash, now),
    )


async def mark_reauthenticated(conn: aiosqlite.Connection, token_hash: bytes, now: int) -> None:
    await conn.execute(
        "UPDATE admin_sessions SET reauth_at = ?, last_seen_at = ? WHERE token_hash = ?",
        (now, now, token_hash),
    )


async def delete_session(conn: aiosqlite.Connection, token_hash: bytes) -> bool:
    cursor = await conn.execute("DELETE FROM admin_sessions WHERE token_hash = ?", (token_hash,))
    deleted = cursor.rowcount
    await cursor.close()
    return deleted == 1


async def delete_sessions_of(conn: aiosqlite.Connection, user_id: str) -> int:
    cursor = await conn.execute("DELETE FROM admin_sessions WHERE user_id = ?", (user_id,))
    deleted = cursor.rowcount
    await cursor.close()
    await conn.execute("DELETE FROM admin_sign_ins WHERE user_id = ?", (user_id,))
    return deleted


# -- failed sign-ins --------------------------------------------------------------------------


async def record_failure(
    conn: aiosqlite.Connection, kind: str, subject: bytes, now: int
) -> None:
    await conn.execute(
        "INSERT INTO admin_sign_in_failures (kind, subject, failed_at) VALUES (?, ?, ?)",
        (kind, subject, now),
    )


async def failures_since(
    conn: aiosqlite.Connection, kind: str, subject: bytes, since: int
) -> list[int]:
    """Times of failures at or after ``since``, oldest first."""
    async with conn.execute(
        "SELECT failed_at FROM admin_sign_in_failures WHERE kind = ? AND subject = ?"
        " AND failed_at >= ? ORDER BY failed_at",
        (kind, subject, since),
    ) as cursor:
        return [int(r[0]) for r in await cursor.fetchall()]


# -- housekeeping -----------------------------------------------------------------------------


async def purge_expired(
    conn: aiosqlite.Connection, *, now: int, idle_before: int, failures_before: int
) -> None:
    await conn.execute("DELETE FROM admin_sign_ins WHERE expires_at <= ?", (now,))
    await conn.execute(
        "DELETE FROM admin_sessions WHERE expires_at <= ? OR last_seen_at <= ?",
        (now, idle_before),
    )
    await conn.execute(
        "DELETE FROM admin_sign_in_failures WHERE failed_at < ?", (failures_before,)
    )
