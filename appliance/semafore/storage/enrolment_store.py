"""Enrolment tickets (code proven, device not yet registered) and the credentials a pending
device uses to poll its status. Both are stored only as keyed hashes."""

from __future__ import annotations

from dataclasses import dataclass

import aiosqlite


@dataclass(frozen=True, slots=True)
class TicketRow:
    user_id: str
    device_id: int
    expires_at: int


@dataclass(frozen=True, slots=True)
class CredentialRow:
    user_id: str
    device_id: int
    expires_at: int
    outcome: str | None


async def insert_ticket(
    conn: aiosqlite.Connection, *, ticket_hash: bytes, user_id: str, device_id: int,
    expires_at: int,
) -> None:
    await conn.execute(
        "INSERT INTO enrolment_tickets (ticket_hash, user_id, device_id, expires_at)"
        " VALUES (?, ?, ?, ?)",
        (ticket_hash, user_id, device_id, expires_at),
    )


async def get_ticket(conn: aiosqlite.Connection, ticket_hash: bytes) -> TicketRow | None:
    async with conn.execute(
        "SELECT user_id, device_id, expires_at FROM enrolment_tickets WHERE ticket_hash = ?",
        (ticket_hash,),
    ) as cursor:
        row = await cursor.fetchone()
    return None if row is None else TicketRow(str(row[0]), int(row[1]), int(row[2]))


async def take_ticket(conn: aiosqlite.Connection, ticket_hash: bytes) -> TicketRow | None:
    """Consume a ticket (single use): delete it and return what it named."""
    async with conn.execute(
        "DELETE FROM enrolment_tickets WHERE ticket_hash = ?"
        " RETURNING user_id, device_id, expires_at",
        (ticket_hash,),
    ) as cursor:
        row = await cursor.fetchone()
    return None if row is None else TicketRow(str(row[0]), int(row[1]), int(row[2]))


async def delete_expired(conn: aiosqlite.Connection, now: int) -> None:
    await conn.execute("DELETE FROM enrolment_tickets WHERE expires_at <= ?", (now,))
    await conn.execute("DELETE FROM enrolment_credentials WHERE expires_at <= ?", (now,))


async def insert_credential(
    conn: aiosqlite.Connection, *, secret_hash: bytes, user_id: str, device_id: int, now: int,
    expires_at: int,
) -> None:
    await conn.execute(
        "INSERT INTO enrolment_credentials (secret_hash, user_id, device_id, created_at,"
        " expires_at) VALUES (?, ?, ?, ?, ?)",
        (secret_hash, user_id, device_id, now, expires_at),
    )


async def get_credential(
    conn: aiosqlite.Connection, secret_hash: bytes
) -> CredentialRow | None:
    async with conn.execute(
        "SELECT user_id, device_id, expires_at, outcome FROM enrolment_credentials"
        " WHERE secret_hash = ?",
        (secret_hash,),
    ) as cursor:
        row = await cursor.fetchone()
    if row is None:
        return None
    return CredentialRow(str(row[0]), int(row[1]), int(row[2]), row[3])


async def delete_credential(conn: aiosqlite.Connection, secret_hash: bytes) -> None:
    await conn.execute("DELETE FROM enrolment_credentials WHERE secret_hash = ?", (secret_hash,))


async def mark_rejected(conn: aiosqlite.Connection, user_id: str, device_id: int) -> None:
    await conn.execute(
        "UPDATE enrolment_credentials SET outcome = 'rejected' WHERE user_id = ? AND"
        " device_id = ?",
        (user_id, device_id),
    )


async def delete_device_credentials(
    conn: aiosqlite.Connection, user_id: str, device_id: int
) -> None:
    await conn.execute(
        "DELETE FROM enrolment_credentials WHERE user_id = ? AND device_id = ?",
        (user_id, device_id),
    )
