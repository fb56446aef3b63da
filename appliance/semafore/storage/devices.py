"""Devices: one row per registered device; deleting the row purges everything hanging off it.

Tables that hold per-device data (pre keys, refresh tokens, message queues) reference
``devices(user_id, device_id)`` with ``ON DELETE CASCADE``, so a revocation is one DELETE in
the revoking unit of work. ``session_revocations`` records each removal so that other processes
(the server, when the CLI revokes) can drop cached state and close connections.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiosqlite


@dataclass(frozen=True, slots=True)
class DeviceRow:
    user_id: str
    device_id: int
    org_id: str
    status: str
    identity_key: bytes
    identity_signing_key: bytes
    identity_binding_signature: bytes
    registered_at: int
    approved_at: int | None
    last_active_day: int | None
    device_name: str | None = None


_SELECT = (
    "SELECT d.user_id, d.device_id, m.org_id, d.status, d.identity_key,"
    " d.identity_signing_key, d.identity_binding_signature, d.registered_at, d.approved_at,"
    " d.last_active_day, d.device_name FROM devices d JOIN members m ON m.user_id = d.user_id"
)


def _row(row: Any) -> DeviceRow:
    return DeviceRow(
        user_id=str(row[0]), device_id=int(row[1]), org_id=str(row[2]), status=str(row[3]),
        identity_key=bytes(row[4]), identity_signing_key=bytes(row[5]),
        identity_binding_signature=bytes(row[6]), registered_at=int(row[7]),
        approved_at=None if row[8] is None else int(row[8]),
        last_active_day=None if row[9] is None else int(row[9]),
        device_name=None if row[10] is None else str(row[10]),
    )


async def insert_device(
    conn: aiosqlite.Connection,
    *,
    user_id: str,
    device_id: int,
    identity_key: bytes,
    identity_signing_key: bytes,
    identity_binding_signature: bytes,
    now: int,
    device_name: str | None = None,
) -> None:
    await conn.execute(
        "INSERT INTO devices (user_id, device_id, status, identity_key, identity_signing_key,"
        " identity_binding_signature, registered_at, device_name)"
        " VALUES (?, ?, 'pending', ?, ?, ?, ?, ?)",
        (user_id, device_id, identity_key, identity_signing_key, identity_binding_signature,
         now, device_name),
    )


async def get_device(
    conn: aiosqlite.Connection, user_id: str, device_id: int
) -> DeviceRow | None:
    async with conn.execute(
        f"{_SELECT} WHERE d.user_id = ? AND d.device_id = ?", (user_id, device_id)
    ) as cursor:
        row = await cursor.fetchone()
    return None if row is None else _row(row)


async def list_devices(
    conn: aiosqlite.Connection,
    org_id: str,
    *,
    user_id: str | None = None,
    status: str | None = None,
) -> list[DeviceRow]:
    clauses, params = ["m.org_id = ?"], [org_id]
    if user_id is not None:
        clauses.append("d.user_id = ?")
        params.append(user_id)
    if status is not None:
        clauses.append("d.status = ?")
        params.append(status)
    async with conn.execute(
        f"{_SELECT} WHERE {' AND '.join(clauses)} ORDER BY d.registered_at, d.user_id,"
        " d.device_id",
        params,
    ) as cursor:
        return [_row(r) for r in await cursor.fetchall()]


async def pending_registered_before(
    conn: aiosqlite.Connection, before: int, limit: int = 500
) -> list[DeviceRow]:
    """Pending devices registered at or before ``before`` (their enrolment has lapsed)."""
    async with conn.execute(
        f"{_SELECT} WHERE d.status = 'pending' AND d.registered_at <= ?"
        " ORDER BY d.registered_at LIMIT ?",
        (before, limit),
    ) as cursor:
        return [_row(r) for r in await cursor.fetchall()]


async def approved_devices(conn: aiosqlite.Connection, user_id: str) -> list[DeviceRow]:
    """The user's current device list: approved devices only, by device id."""
    async with conn.execute(
        f"{_SELECT} WHERE d.user_id = ? AND d.status = 'approved' ORDER BY d.device_id",
        (user_id,),
    ) as cursor:
        return [_row(r) for r in await cursor.fetchall()]


async def count_devices(conn: aiosqlite.Connection, user_id: str) -> int:
    """Pending and approved devices of a user (both count towards the cap)."""
    async with conn.execute("SELECT count(*) FROM devices WHERE user_id = ?", (user_id,)) as c:
        row = await c.fetchone()
    return int(row[0]) if row else 0


async def approve_device(
    conn: aiosqlite.Connection, user_id: str, device_id: int, now: int
) -> bool:
    cursor = await conn.execute(
        "UPDATE devices SET status = 'approved', approved_at = ?"
        " WHERE user_id = ? AND device_id = ? AND status = 'pending'",
        (now, user_id, device_id),
    )
    return cursor.rowcount == 1


async def delete_device(
    conn: aiosqlite.Connection, user_id: str, device_id: int, now: int
) -> int | None:
    """Remove the device and, by cascade, its pre keys, refresh tokens and queued messages.

    Returns the sequence number of the revocation record, or None if there was no device.
    """
    cursor = await conn.execute(
        "DELETE FROM devices WHERE user_id = ? AND device_id = ?", (user_id, device_id)
    )
    if cursor.rowcount != 1:
        return None
    return await log_revocation(conn, user_id, device_id, now)


async def log_revocation(
    conn: aiosqlite.Connection,
    user_id: str,
    device_id: int,
    now: int,
    chain_id: str | None = None,
) -> int:
    """Record that a device (or one of its refresh chains) lost access; return its seq."""
    cursor = await conn.execute(
        "INSERT INTO session_revocations (user_id, device_id, chain_id, revoked_at)"
        " VALUES (?, ?, ?, ?)",
        (user_id, device_id, chain_id, now),
    )
    return int(cursor.lastrowid or 0)


@dataclass(frozen=True, slots=True)
class RevocationRow:
    seq: int
    user_id: str
    device_id: int
    chain_id: str | None


async def revocations_after(
    conn: aiosqlite.Connection, seq: int, limit: int = 1000
) -> list[RevocationRow]:
    async with conn.execute(
        "SELECT seq, user_id, device_id, chain_id FROM session_revocations WHERE seq > ?"
        " ORDER BY seq LIMIT ?",
        (seq, limit),
    ) as cursor:
        return [
            RevocationRow(int(r[0]), str(r[1]), int(r[2]), r[3])
            for r in await cursor.fetchall()
        ]


async def last_revocation_seq(conn: aiosqlite.Connection) -> int:
    async with conn.execute("SELECT coalesce(max(seq), 0) FROM session_revocations") as cursor:
        row = await cursor.fetchone()
    return int(row[0]) if row else 0


async def prune_revocations(conn: aiosqlite.Connection, before: int) -> None:
    await conn.execute("DELETE FROM session_revocations WHERE revoked_at < ?", (before,))
