"""Public pre keys of devices (PROTOCOL s4.5): the current signed pre key and one-time keys."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import aiosqlite


@dataclass(frozen=True, slots=True)
class SignedPreKeyRow:
    key_id: int
    public_key: bytes
    signature: bytes
    uploaded_at: int


async def put_signed_pre_key(
    conn: aiosqlite.Connection,
    user_id: str,
    device_id: int,
    *,
    key_id: int,
    public_key: bytes,
    signature: bytes,
    now: int,
) -> None:
    await conn.execute(
        "INSERT INTO signed_pre_keys (user_id, device_id, key_id, public_key, signature,"
        " uploaded_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (user_id, device_id) DO UPDATE"
        " SET key_id = excluded.key_id, public_key = excluded.public_key,"
        " signature = excluded.signature, uploaded_at = excluded.uploaded_at",
        (user_id, device_id, key_id, public_key, signature, now),
    )


async def get_signed_pre_key(
    conn: aiosqlite.Connection, user_id: str, device_id: int
) -> SignedPreKeyRow | None:
    async with conn.execute(
        "SELECT key_id, public_key, signature, uploaded_at FROM signed_pre_keys"
        " WHERE user_id = ? AND device_id = ?",
        (user_id, device_id),
    ) as cursor:
        row = await cursor.fetchone()
    if row is None:
        return None
    return SignedPreKeyRow(int(row[0]), bytes(row[1]), bytes(row[2]), int(row[3]))


async def add_one_time_pre_keys(
    conn: aiosqlite.Connection, user_id: str, device_id: int, keys: Iterable[tuple[int, bytes]]
) -> None:
    """Insert (key_id, public_key) pairs; callers reject ids already present first."""
    await conn.executemany(
        "INSERT INTO one_time_pre_keys (user_id, device_id, key_id, public_key)"
        " VALUES (?, ?, ?, ?)",
        [(user_id, device_id, key_id, key) for key_id, key in keys],
    )


async def existing_one_time_pre_key_ids(
    conn: aiosqlite.Connection, user_id: str, device_id: int, key_ids: list[int]
) -> set[int]:
    found: set[int] = set()
    for start in range(0, len(key_ids), 500):
        chunk = key_ids[start : start + 500]
        marks = ",".join("?" * len(chunk))
        async with conn.execute(
            "SELECT key_id FROM one_time_pre_keys WHERE user_id = ? AND device_id = ?"  # noqa: S608
            f" AND key_id IN ({marks})",
            [user_id, device_id, *chunk],
        ) as cursor:
            found.update(int(r[0]) for r in await cursor.fetchall())
    return found


async def count_one_time_pre_keys(
    conn: aiosqlite.Connection, user_id: str, device_id: int
) -> int:
    async with conn.execute(
        "SELECT count(*) FROM one_time_pre_keys WHERE user_id = ? AND device_id = ?",
        (user_id, device_id),
    ) as cursor:
        row = await cursor.fetchone()
    return int(row[0]) if row else 0


async def take_one_time_pre_key(
    conn: aiosqlite.Connection, user_id: str, device_id: int
) -> tuple[int, bytes] | None:
    """Hand out one one-time pre key and delete it in the same statement (at most once)."""
    async with conn.execute(
        "DELETE FROM one_time_pre_keys WHERE rowid = (SELECT rowid FROM one_time_pre_keys"
        " WHERE user_id = ? AND device_id = ? ORDER BY key_id LIMIT 1)"
        " RETURNING key_id, public_key",
        (user_id, device_id),
    ) as cursor:
        row = await cursor.fetchone()
    return None if row is None else (int(row[0]), bytes(row[1]))
