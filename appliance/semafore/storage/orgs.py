"""Organisations: every account belongs to exactly one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiosqlite


@dataclass(frozen=True, slots=True)
class OrgRow:
    org_id: str
    name: str
    member_limit: int
    created_at: int
    member_count: int = 0


_SELECT = (
    "SELECT o.org_id, o.name, o.member_limit, o.created_at,"
    " (SELECT count(*) FROM members m WHERE m.org_id = o.org_id) FROM orgs o"
)


def _row(row: Any) -> OrgRow:
    return OrgRow(str(row[0]), str(row[1]), int(row[2]), int(row[3]), int(row[4]))


async def insert_org(
    conn: aiosqlite.Connection, *, org_id: str, name: str, member_limit: int, now: int
) -> None:
    await conn.execute(
        "INSERT INTO orgs (org_id, name, member_limit, created_at) VALUES (?, ?, ?, ?)",
        (org_id, name, member_limit, now),
    )


async def get_org(conn: aiosqlite.Connection, org_id: str) -> OrgRow | None:
    async with conn.execute(f"{_SELECT} WHERE o.org_id = ?", (org_id,)) as cursor:
        row = await cursor.fetchone()
    return None if row is None else _row(row)


async def org_by_name(conn: aiosqlite.Connection, name: str) -> OrgRow | None:
    """The oldest organisation called exactly ``name`` (names are not unique)."""
    async with conn.execute(
        f"{_SELECT} WHERE o.name = ? ORDER BY o.created_at, o.rowid LIMIT 1", (name,)
    ) as cursor:
        row = await cursor.fetchone()
    return None if row is None else _row(row)


async def list_orgs(conn: aiosqlite.Connection) -> list[OrgRow]:
    async with conn.execute(f"{_SELECT} ORDER BY o.created_at, o.rowid") as cursor:
        return [_row(r) for r in await cursor.fetchall()]


async def set_member_limit(conn: aiosqlite.Connection, org_id: str, limit: int) -> bool:
    cursor = await conn.execute(
        "UPDATE orgs SET member_limit = ? WHERE org_id = ?", (limit, org_id)
    )
    return cursor.rowcount == 1
