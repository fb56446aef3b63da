"""The relay queue: one row of opaque ciphertext per (message, target device).

Units of work (run by the group-commit writer): ``relay.send_batch`` (the sends that arrived
while the writer was busy, see relay_sends.py) or ``relay.send`` (one send: idempotency record,
cap check, one multi-row INSERT), ``relay.ack`` (acks of many devices in one DELETE),
``relay.expire``.
Reads (fetch, depth) use the read-only connections. Per-device depth is kept exact by the
triggers of migration 0005, so a cap check reads one small row per target, never counts rows.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import aiosqlite

from semafore.storage.database import Database
from semafore.storage.errors import StorageError
from semafore.storage.relay_sends import SendBatcher

Address = tuple[str, int]  # (user_id, device_id)
T = TypeVar("T")
# Multi-row statements are built from "?" placeholders only (never from values), chunked to
# stay far below SQLite's limit on bound parameters.


@dataclass(frozen=True, slots=True)
class QueuedEnvelope:
    """One queue row as delivery needs it: server id, queue time (ms), the opaque envelope."""

    id: int
    queued_at: int
    envelope: bytes


@dataclass(frozen=True, slots=True)
class NewRow:
    target: Address
    envelope: bytes


@dataclass(frozen=True, slots=True)
class SendRecord:
    """What a send was answered with (stored once, answered the same on a retry)."""

    sent_at: int
    envelopes: int
    duplicate: bool
    # Only for a first send: the rows as stored, by target device.
    stored: dict[Address, QueuedEnvelope]


class TargetGone(StorageError):
    """A target device no longer exists (revoked while the send was on its way)."""

    code = "target_gone"


class SenderGone(StorageError):
    """The sending device no longer exists (revoked while its send was on its way)."""

    code = "sender_gone"


class QueueCapExceeded(StorageError):
    """A target device's queue would pass its message or byte cap; nothing was stored."""

    code = "queue_full"

    def __init__(self, devices: list[Address]) -> None:
        super().__init__("a target device's queue is full", code="queue_full")
        self.devices = devices


@dataclass(frozen=True, slots=True)
class QueueCaps:
    messages: int
    bytes: int


class RelayQueue:
    def __init__(self, database: Database) -> None:
        self._db = database
        self._sends = SendBatcher(database, self._store_one)

    # -- writes -------------------------------------------------------------------------------

    async def store_send(
        self,
        sender: Address,
        msg_id: str,
        rows: Sequence[NewRow],
        *,
        now_ms: int,
        caps: QueueCaps,
    ) -> SendRecord:
        """Store a send once: idempotency record + every row, or nothing (cap, duplicate).

        Concurrent sends share one unit of work; the answer comes after its COMMIT.
        """
        return await self._sends.submit(sender, msg_id, rows, now_ms, caps)

    async def _store_one(self, send: Any) -> SendRecord:
        sender, msg_id, rows, now_ms, caps = (
            send.sender, send.msg_id, send.rows, send.now_ms, send.caps
        )

        async def unit(conn: aiosqlite.Connection) -> SendRecord:
            try:
                cursor = await conn.execute(
                    "INSERT INTO relay_sends (user_id, device_id, msg_id, sent_at, envelopes) "
                    "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    (sender[0], sender[1], msg_id, now_ms, len(rows)),
                )
            except sqlite3.IntegrityError:  # the foreign key: the sender was just removed
                raise SenderGone("the sending device no longer exists") from None
            if cursor.rowcount == 0:
                previous = await _find_send(conn, sender, msg_id)
                assert previous is not None
                return previous
            if rows:
                await _check_caps(conn, rows, caps)
                return SendRecord(now_ms, len(rows), False, await _insert(conn, rows, now_ms))
            return SendRecord(now_ms, 0, False, {})

        return await self._db.write("relay.send", unit)

    async def ack(
        self, acks: Sequence[tuple[Address, Sequence[int]]]
    ) -> dict[Address, set[int]]:
        """Delete acked rows of many devices in one unit; an id only counts for its owner.

        Returns the ids deleted per device (unknown, foreign or already acked ids are skipped).
        """
        triples = [(i, addr[0], addr[1]) for addr, ids in acks for i in ids]
        if not triples:
            return {}

        async def unit(conn: aiosqlite.Connection) -> dict[Address, set[int]]:
            deleted: dict[Address, set[int]] = {}
            for chunk in _chunks(triples, 3000):
                values = ",".join("(?,?,?)" for _ in chunk)
                params = [p for triple in chunk for p in triple]
                returned = await conn.execute_fetchall(
                    "DELETE FROM relay_queue WHERE id IN (SELECT q.id FROM "  # noqa: S608
                    f"(VALUES {values}) AS v JOIN relay_queue AS q ON q.id = v.column1 "
                    "AND q.user_id = v.column2 AND q.device_id = v.column3) "
                    "RETURNING id, user_id, device_id",
                    params,
                )
                for row_id, user_id, device_id in returned:
                    deleted.setdefault((user_id, device_id), set()).add(row_id)
            return deleted

        return await self._db.write("relay.ack", unit)

    async def expire(
        self, *, queued_before_ms: int, sends_before_ms: int, limit: int
    ) -> tuple[int, int]:
        """Remove up to ``limit`` queue rows older than the TTL and up to ``limit`` idempotency
        records older than their window; returns how many of each."""

        async def unit(conn: aiosqlite.Connection) -> tuple[int, int]:
            cursor = await conn.execute(
                "DELETE FROM relay_queue WHERE id IN (SELECT id FROM relay_queue "
                "WHERE queued_at < ? ORDER BY queued_at LIMIT ?)",
                (queued_before_ms, limit),
            )
            expired = cursor.rowcount
            cursor = await conn.execute(
                "DELETE FROM relay_sends WHERE (user_id, device_id, msg_id) IN "
                "(SELECT user_id, device_id, msg_id FROM relay_sends WHERE sent_at < ? LIMIT ?)",
                (sends_before_ms, limit),
            )
            return expired, cursor.rowcount

        return await self._db.write("relay.expire", unit)

    async def purge_device(self, device: Address) -> int:
        """Drop a device's whole queue (revocation). Returns rows removed."""

        async def unit(conn: aiosqlite.Connection) -> int:
            cursor = await conn.execute(
                "DELETE FROM relay_queue WHERE user_id = ? AND device_id = ?", device
            )
            return cursor.rowcount

        return await self._db.write("relay.purge_device", unit)

    # -- reads --------------------------------------------------------------------------------

    async def fetch(self, device: Address, *, after_id: int, limit: int) -> list[QueuedEnvelope]:
        """The device's rows with id > after_id, oldest first."""
        async with self._db.read() as conn:
            rows = await conn.execute_fetchall(
                "SELECT id, queued_at, envelope FROM relay_queue "
                "WHERE user_id = ? AND device_id = ? AND id > ? ORDER BY id LIMIT ?",
                (device[0], device[1], after_id, limit),
            )
        return [QueuedEnvelope(r[0], r[1], bytes(r[2])) for r in rows]

    async def depth(self, device: Address) -> tuple[int, int]:
        """(messages, bytes) queued for one device."""
        async with self._db.read() as conn, conn.execute(
            "SELECT messages, bytes FROM relay_depth WHERE user_id = ? AND device_id = ?", device
        ) as cursor:
            row = await cursor.fetchone()
        return (int(row[0]), int(row[1])) if row else (0, 0)

    async def total_depth(self) -> int:
        async with self._db.read() as conn, conn.execute(
            "SELECT total(messages) FROM relay_depth"
        ) as cursor:
            row = await cursor.fetchone()
        return int(row[0]) if row else 0

    async def device_lists(
        self, user_ids: Sequence[str]
    ) -> dict[str, tuple[str, frozenset[int]]]:
        """Routing view of many members at once: org_id and approved device ids per member
        (members that do not exist are left out). One read, one statement per 500 members."""
        found: dict[str, tuple[str, set[int]]] = {}
        async with self._db.read() as conn:
            for chunk in _chunks(list(user_ids), 500):
                values = ",".join("(?)" for _ in chunk)
                rows = await conn.execute_fetchall(
                    "SELECT m.user_id, m.org_id, d.device_id FROM "  # noqa: S608
                    f"(VALUES {values}) AS v JOIN members AS m ON m.user_id = v.column1 "
                    "LEFT JOIN devices AS d ON d.user_id = m.user_id AND d.status = 'approved'",
                    chunk,
                )
                for user_id, org_id, device_id in rows:
                    entry = found.setdefault(user_id, (org_id, set()))
                    if device_id is not None:
                        entry[1].add(device_id)
        return {u: (org, frozenset(ids)) for u, (org, ids) in found.items()}

    async def find_send(self, sender: Address, msg_id: str) -> SendRecord | None:
        async with self._db.read() as conn:
            return await _find_send(conn, sender, msg_id)


async def _find_send(
    conn: aiosqlite.Connection, sender: Address, msg_id: str
) -> SendRecord | None:
    async with conn.execute(
        "SELECT sent_at, envelopes FROM relay_sends "
        "WHERE user_id = ? AND device_id = ? AND msg_id = ?",
        (sender[0], sender[1], msg_id),
    ) as cursor:
        row = await cursor.fetchone()
    return SendRecord(int(row[0]), int(row[1]), True, {}) if row else None


async def _check_caps(conn: aiosqlite.Connection, rows: Sequence[NewRow], caps: QueueCaps) -> None:
    adding: dict[Address, list[int]] = {}
    for row in rows:
        count_bytes = adding.setdefault(row.target, [0, 0])
        count_bytes[0] += 1
        count_bytes[1] += len(row.envelope)
    full: list[Address] = []
    for chunk in _chunks(list(adding), 400):
        values = ",".join("(?,?)" for _ in chunk)
        params = [p for addr in chunk for p in addr]
        found = await conn.execute_fetchall(
            "SELECT d.user_id, d.device_id, d.messages, d.bytes FROM "  # noqa: S608
            f"(VALUES {values}) AS v JOIN relay_depth AS d "
            "ON d.user_id = v.column1 AND d.device_id = v.column2",
            params,
        )
        for user_id, device_id, messages, size in found:
            extra = adding[(user_id, device_id)]
            if messages + extra[0] > caps.messages or size + extra[1] > caps.bytes:
                full.append((user_id, device_id))
    for addr, (count, size) in adding.items():
        if (count > caps.messages or size > caps.bytes) and addr not in full:
            full.append(addr)
    if full:
        raise QueueCapExceeded(sorted(full))


async def _insert(
    conn: aiosqlite.Connection, rows: Sequence[NewRow], now_ms: int
) -> dict[Address, QueuedEnvelope]:
    by_target = {row.target: row for row in rows}
    stored: dict[Address, QueuedEnvelope] = {}
    for chunk in _chunks(list(rows), 1000):
        values = ",".join("(?,?,?,?,?)" for _ in chunk)
        params: list[object] = []
        for row in chunk:
            params += (row.target[0], row.target[1], now_ms, len(row.envelope), row.envelope)
        try:
            returned = await conn.execute_fetchall(
                "INSERT INTO relay_queue (user_id, device_id, queued_at, size, envelope) "  # noqa: S608
                f"VALUES {values} RETURNING id, user_id, device_id",
                params,
            )
            for row_id, user_id, device_id in returned:
                key = (user_id, device_id)
                stored[key] = QueuedEnvelope(row_id, now_ms, by_target[key].envelope)
        except sqlite3.IntegrityError:  # the foreign key: a target device was removed
            raise TargetGone("a target device no longer exists", code="target_gone") from None
    return stored


def _chunks(items: list[T], size: int) -> Iterable[list[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
