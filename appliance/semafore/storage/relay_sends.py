"""Concurrent sends coalesced into one unit of work (``relay.send_batch``).

Every send waiting while the writer is busy goes into the next batch: a handful of statements
for the whole batch (one multi-row INSERT of idempotency records, one cap check over every
target, one multi-row INSERT of queue rows), instead of ~5 statements per send. Each caller is
answered after the batch's COMMIT. Anything a single send can cause (a duplicate msg_id, a
queue near its cap, a removed sender or target) makes the batch unit give up; its sends then
run one at a time (one unit each, still one group commit), so one bad send never fails others.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import aiosqlite

from semafore.storage.database import Database
from semafore.storage.errors import StorageError

if TYPE_CHECKING:
    from semafore.storage.relay_queue import NewRow, QueueCaps, SendRecord

log = logging.getLogger("semafore.storage")

Address = tuple[str, int]
SingleSend = Callable[["_Send"], Awaitable["SendRecord"]]
# Rows per multi-row INSERT: 5 bound parameters each, far below SQLite's limit of 32,766.
_CHUNK = 1000


@dataclass(slots=True, eq=False)
class _Send:
    sender: Address
    msg_id: str
    rows: Sequence[NewRow]
    now_ms: int
    caps: QueueCaps
    future: asyncio.Future[SendRecord] = field(repr=False)


class _GiveUp(Exception):
    """Something only one send of the batch can be answered for: run them one at a time."""


class SendBatcher:
    """Collects sends while the previous batch is at the writer; one unit per batch."""

    def __init__(self, database: Database, single: SingleSend) -> None:
        self._db = database
        self._single = single
        self._pending: list[_Send] = []
        self._task: asyncio.Task[None] | None = None

    async def submit(
        self, sender: Address, msg_id: str, rows: Sequence[NewRow], now_ms: int, caps: QueueCaps
    ) -> SendRecord:
        loop = asyncio.get_running_loop()
        send = _Send(sender, msg_id, rows, now_ms, caps, loop.create_future())
        self._pending.append(send)
        if self._task is None:
            self._task = loop.create_task(self._run(), name="relay-sends")
        return await send.future

    async def _run(self) -> None:
        try:
            while self._pending:
                batch = [s for s in self._pending if not s.future.done()]
                self._pending = []
                try:
                    if batch:  # even a batch of one: three statements instead of five
                        await self._many(batch)
                except BaseException:  # cancelled at shutdown: nobody may wait forever
                    for send in batch:
                        _settle(send, error=StorageError(
                            "the send was not stored", code="storage_unavailable"
                        ))
                    raise
        finally:
            self._task = None

    async def _many(self, batch: list[_Send]) -> None:
        try:
            records = await self._db.write("relay.send_batch", lambda c: _store_batch(c, batch))
        except StorageError as error:
            if error.code == "storage_unavailable":  # disk full or failing: nothing stored
                for send in batch:
                    _settle(send, error=error)
                return
            log.warning("send batch failed (%s); storing its sends one by one", error)
            await asyncio.gather(*(self._one(send) for send in batch))
            return
        except Exception as error:
            if not isinstance(error, _GiveUp):
                log.warning("send batch failed (%s); storing its sends one by one",
                            type(error).__name__)
            await asyncio.gather(*(self._one(send) for send in batch))
            return
        for send, record in zip(batch, records, strict=True):
            _settle(send, record=record)

    async def _one(self, send: _Send) -> None:
        try:
            record = await self._single(send)
        except Exception as error:
            _settle(send, error=error)
        else:
            _settle(send, record=record)


def _settle(
    send: _Send, *, record: SendRecord | None = None, error: BaseException | None = None
) -> None:
    if send.future.done():
        return
    if error is not None:
        send.future.set_exception(error)
    else:
        send.future.set_result(record)  # type: ignore[arg-type]


async def _store_batch(conn: aiosqlite.Connection, batch: list[_Send]) -> list[SendRecord]:
    from semafore.storage.relay_queue import QueuedEnvelope, SendRecord

    keys = [(s.sender[0], s.sender[1], s.msg_id) for s in batch]
    if len(set(keys)) != len(keys):
        raise _GiveUp("the same msg_id twice in one batch")
    for chunk in _chunks(batch, _CHUNK):
        values = ",".join("(?,?,?,?,?)" for _ in chunk)
        params = [p for s in chunk for p in (*s.sender, s.msg_id, s.now_ms, len(s.rows))]
        try:
            inserted = await conn.execute_fetchall(
                "INSERT INTO relay_sends (user_id, device_id, msg_id, sent_at, envelopes) "  # noqa: S608
                f"VALUES {values} ON CONFLICT DO NOTHING RETURNING 1",
                params,
            )
        except aiosqlite.IntegrityError:  # a sender was just removed
            raise _GiveUp("a sender is gone") from None
        if len(list(inserted)) != len(chunk):
            raise _GiveUp("a retried send")
    rows = [(s, row) for s in batch for row in s.rows]
    await _check_caps(conn, rows)
    records = [SendRecord(s.now_ms, len(s.rows), False, {}) for s in batch]
    index = {id(s): n for n, s in enumerate(batch)}
    for chunk in _chunks(rows, _CHUNK):
        values = ",".join("(?,?,?,?,?)" for _ in chunk)
        params: list[object] = []
        for send, row in chunk:
            params += (*row.target, send.now_ms, len(row.envelope), row.envelope)
        try:
            returned = await conn.execute_fetchall(
                "INSERT INTO relay_queue (user_id, device_id, queued_at, size, envelope) "  # noqa: S608
                f"VALUES {values} RETURNING id, user_id, device_id",
                params,
            )
        except aiosqlite.IntegrityError:  # a target device was just removed
            raise _GiveUp("a target is gone") from None
        # One statement, one writer: AUTOINCREMENT hands out ids in VALUES order.
        ids = sorted(returned, key=lambda r: r[0])
        if len(ids) != len(chunk):
            raise _GiveUp("unexpected RETURNING rows")
        for (row_id, user_id, device_id), (send, row) in zip(ids, chunk, strict=True):
            if (user_id, device_id) != row.target:
                raise _GiveUp("unexpected RETURNING order")
            records[index[id(send)]].stored[row.target] = QueuedEnvelope(
                row_id, send.now_ms, row.envelope
            )
    return records


async def _check_caps(conn: aiosqlite.Connection, rows: list[tuple[_Send, NewRow]]) -> None:
    """Give up if any target would pass its cap with the whole batch (exact per send then)."""
    adding: dict[Address, list[int]] = {}
    caps = rows[0][0].caps
    for _, row in rows:
        entry = adding.setdefault(row.target, [0, 0])
        entry[0] += 1
        entry[1] += len(row.envelope)
    for count, size in adding.values():
        if count > caps.messages or size > caps.bytes:
            raise _GiveUp("a target near its cap")
    for chunk in _chunks(list(adding), 400):
        values = ",".join("(?,?)" for _ in chunk)
        found = await conn.execute_fetchall(
            "SELECT d.user_id, d.device_id, d.messages, d.bytes FROM "  # noqa: S608
            f"(VALUES {values}) AS v JOIN relay_depth AS d "
            "ON d.user_id = v.column1 AND d.device_id = v.column2",
            [p for address in chunk for p in address],
        )
        for user_id, device_id, messages, size in found:
            count, added = adding[(user_id, device_id)]
            if messages + count > caps.messages or size + added > caps.bytes:
                raise _GiveUp("a target near its cap")


def _chunks(items: list, size: int) -> list[list]:  # type: ignore[type-arg]
    return [items[start : start + size] for start in range(0, len(items), size)]
