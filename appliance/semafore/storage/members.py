"""Members: accounts, identified by an opaque ``user_id``; phone numbers sealed at rest."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiosqlite

from semafore.storage.devices import log_revocation


@dataclass(frozen=True, slots=True)
class MemberRow:
    user_id: str
    org_id: str
    phone_hmac: bytes
    phone_sealed: bytes
    role: str
    joined_at: int
    last_active_day: int | None
    device_count: int = 0
    display_name: str | None = None


_SELECT = (
    "SELECT m.user_id, m.org_id, m.phone_hmac, m.phone_sealed, m.role, m.joined_at,"
    " m.last_active_day, (SELECT count(*) FROM devices d WHERE d.user_id = m.user_id),"
    " m.display_name FROM members m"
)


def _row(row: Any) -> MemberRow:
    return MemberRow(
        user_id=str(row[0]), org_id=str(row[1]), phone_hmac=bytes(row[2]),
        phone_sealed=bytes(row[3]), role=str(row[4]), joined_at=int(row[5]),
        last_active_day=None if row[6] is None else int(row[6]), device_count=int(row[7]),
        display_name=None if row[8] is None else str(row[8]),
    )


async def insert_member(
    conn: aiosqlite.Connection,
    *,
    user_id: str,
    org_id: str,
    phone_hmac: bytes,
    phone_sealed: bytes,
    role: str,
    now: int,
    display_name: str | None = None,
) -> None:
    await conn.execute(
        "INSERT INTO members (user_id, org_id, phone_hmac, phone_sealed, role, joined_at,"
        " display_name) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (user_id, org_id, phone_hmac, phone_sealed, role, now, display_name),
    )


async def get_member(conn: aiosqlite.Connection, user_id: str) -> MemberRow | None:
    async with conn.execute(f"{_SELECT} WHERE m.user_id = ?", (user_id,)) as cursor:
        row = await cursor.fetchone()
    return None if row is None else _row(row)


async def member_by_phone(conn: aiosqlite.Connection, phone_hmac: bytes) -> MemberRow | None:
    async with conn.execute(f"{_SELECT} WHERE m.phone_hmac = ?", (phone_hmac,)) as cursor:
        row = await cursor.fetchone()
    return None if row is None else _row(row)


async def existing_phone_hmacs(
    conn: aiosqlite.Connection, phone_hmacs: list[bytes]
) -> set[bytes]:
    """Which of these lookup hashes already belong to a member (any organisation)."""
    found: set[bytes] = set()
    for start in range(0, len(phone_hmacs), 500):
        chunk = phone_hmacs[start : start + 500]
        marks = ",".join("?" * len(chunk))
        async with conn.execute(
            f"SELECT phone_hmac FROM members WHERE phone_hmac IN ({marks})",  # noqa: S608
            chunk,
        ) as cursor:
            found.update(bytes(r[0]) for r in await cursor.fetchall())
    return found


async def list_members(conn: aiosqlite.Connection, org_id: str) -> list[MemberRow]:
    async with conn.execute(
        f"{_SELECT} WHERE m.org_id = ? ORDER BY m.joined_at, m.rowid", (org_id,)
    ) as cursor:
        return [_row(r) for r in await cursor.fetchall()]


async def count_members(conn: aiosqlite.Connection, org_id: str) -> int:
    async with conn.execute("SELECT count(*) FROM members WHERE org_id = ?", (org_id,)) as cur:
        row = await cur.fetchone()
    return int(row[0]) if row else 0


async def count_admins(conn: aiosqlite.Connection, org_id: str) -> int:
    async with conn.execute(
        "SELECT count(*) FROM members WHERE org_id = ? AND role = 'admin'", (org_id,)
    ) as cursor:
        row = await cursor.fetchone()
    return int(row[0]) if row else 0


async def set_role(conn: aiosqlite.Connection, user_id: str, role: str) -> None:
    await conn.execute("UPDATE members SET role = ? WHERE user_id = ?", (role, user_id))


async def set_display_name(
    conn: aiosqlite.Connection, user_id: str, display_name: str | None
) -> None:
    await conn.execute(
        "UPDATE members SET display_name = ? WHERE user_id = ?", (display_name, user_id)
    )


async def delete_member(
    conn: aiosqlite.Connection, user_id: str, now: int
) -> list[tuple[int, int]]:
    """Delete the account and (by cascade) its devices, keys, tokens and queues.

    Each device it had is logged as revoked; returns (device_id, revocation seq) pairs.
    """
    async with conn.execute(
        "SELECT device_id FROM devices WHERE user_id = ? ORDER BY device_id", (user_id,)
    ) as cursor:
        device_ids = [int(r[0]) for r in await cursor.fetchall()]
    await conn.execute("DELETE FROM members WHERE user_id = ?", (user_id,))
    return [
        (device_id, await log_revocation(conn, user_id, device_id, now))
        for device_id in device_ids
    ]


async def reserve_device_id(conn: aiosqlite.Connection, user_id: str) -> int:
    """The next device id for this user; ids are never handed out twice."""
    async with conn.execute(
        "UPDATE members SET next_device_id = next_device_id + 1 WHERE user_id = ?"
        " RETURNING next_device_id - 1",
        (user_id,),
    ) as cursor:
        row = await cursor.fetchone()
    if row is None:
        raise LookupError(user_id)
    return int(row[0])


async def touch_active(
    conn: aiosqlite.Connection, user_id: str, device_id: int, day: int
) -> None:
    """Record activity at day granularity (no finer timestamps are kept)."""
    await conn.execute(
        "UPDATE members SET last_active_day = ? WHERE user_id = ?"
        " AND (last_active_day IS NULL OR last_active_day < ?)",
        (day, user_id, day),
    )
    await conn.execute(
        "UPDATE devices SET last_active_day = ? WHERE user_id = ? AND device_id = ?"
        " AND (last_active_day IS NULL OR last_active_day < ?)",
        (day, user_id, device_id, day),
    )
