"""The in-process delivery hub: committed rows go straight to live sockets.

After a send commits, :meth:`DeliveryHub.publish` hands each new row to the target device's
:class:`Outbox` (no database read on the hot path); devices without a live socket are reported
to the offline callback (push). Each socket drains its outbox with :func:`deliveries`, which
coalesces rows into frames and merges them with the database backlog:

* An outbox starts in *resync* mode: the backlog is read from the database in pages after the
  highest id already sent, then a ``queue_empty`` marker follows (once per connection).
* Rows published meanwhile are buffered; an id at or below the highest id sent is dropped (it
  came with a database page). Ids grow in commit order (one writer), so nothing is skipped.
* Back-pressure: the buffer is bounded. When a slow socket lets it overflow, the buffer is
  dropped and the outbox falls back to resync mode, i.e. database-driven delivery. At most
  ``max_unacked`` envelopes are in flight; past that the stream waits for acks.

Services know nothing of WebSockets: the web layer writes what :func:`deliveries` yields and
closes the socket when :attr:`Outbox.closed` says so.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass

from semafore.storage.relay_queue import QueuedEnvelope

log = logging.getLogger("semafore.delivery")

Address = tuple[str, int]
FetchPage = Callable[[Address, int, int], Awaitable[list[QueuedEnvelope]]]

# Why a socket is closed by the server (web layer maps these to close codes).
CLOSE_REVOKED = "revoked"
CLOSE_REPLACED = "replaced"
CLOSE_SHUTDOWN = "shutdown"


@dataclass(slots=True)
class DeliveryStats:
    delivered: int = 0
    redelivered: int = 0
    frames: int = 0
    overflows: int = 0


class Outbox:
    """The per-socket queue of rows waiting to be framed; bounded."""

    def __init__(
        self, address: Address, *, capacity: int, max_unacked: int, stats: DeliveryStats
    ) -> None:
        self.address = address
        self._capacity = capacity
        self._max_unacked = max_unacked
        self._stats = stats
        self._buffer: list[QueuedEnvelope] = []
        self._wake = asyncio.Event()
        self.resync = True
        self.last_sent_id = 0
        self.unacked: set[int] = set()
        self.closed: str | None = None
        self.session_id: str | None = None

    def offer(self, rows: Iterable[QueuedEnvelope]) -> None:
        if self.closed is not None:
            return
        rows = list(rows)
        if len(self._buffer) + len(rows) > self._capacity:
            self._buffer.clear()
            self.resync = True
            self._stats.overflows += 1
        else:
            self._buffer.extend(rows)
        self._wake.set()

    def acked(self, ids: Iterable[int]) -> None:
        before = len(self.unacked)
        self.unacked.difference_update(ids)
        if len(self.unacked) != before:
            self._wake.set()

    def close(self, reason: str) -> None:
        if self.closed is None:
            self.closed = reason
        self._wake.set()

    @property
    def window(self) -> int:
        """How many more envelopes may be sent before acks must come back."""
        return max(0, self._max_unacked - len(self.unacked))

    def take_live(self, limit: int, max_bytes: int) -> list[QueuedEnvelope]:
        fresh = [row for row in self._buffer if row.id > self.last_sent_id]
        fresh.sort(key=lambda row: row.id)
        taken = _fit(fresh[:limit], max_bytes)
        self._buffer = fresh[len(taken) :]
        return taken

    def sent(self, rows: list[QueuedEnvelope]) -> None:
        self.last_sent_id = max(self.last_sent_id, rows[-1].id)
        self.unacked.update(row.id for row in rows)

    async def wait(self) -> None:
        await self._wake.wait()
        self._wake.clear()


@dataclass(frozen=True, slots=True)
class Frame:
    """What to send next: envelopes (possibly empty) and whether the backlog is now drained."""

    rows: list[QueuedEnvelope]
    queue_empty: bool = False


class DeliveryHub:
    """Live outboxes by device. One socket per device: a newer one replaces the older."""

    def __init__(self, *, outbox_capacity: int, max_unacked: int) -> None:
        self._outbox_capacity = outbox_capacity
        self._max_unacked = max_unacked
        self._live: dict[Address, Outbox] = {}
        self.on_offline: Callable[[list[Address]], None] | None = None
        self.stats = DeliveryStats()
        # Highest id ever framed per device in this process (to count redeliveries).
        self._high_water: dict[Address, int] = {}

    @property
    def open_sockets(self) -> int:
        return len(self._live)

    def is_live(self, address: Address) -> bool:
        return address in self._live

    def attach(self, address: Address, session_id: str | None = None) -> Outbox:
        """A new outbox for the device's new socket; an older socket is told to close."""
        outbox = Outbox(
            address,
            capacity=self._outbox_capacity,
            max_unacked=self._max_unacked,
            stats=self.stats,
        )
        outbox.session_id = session_id
        previous = self._live.get(address)
        if previous is not None:
            previous.close(CLOSE_REPLACED)
        self._live[address] = outbox
        return outbox

    def detach(self, outbox: Outbox) -> None:
        if self._live.get(outbox.address) is outbox:
            del self._live[outbox.address]

    def publish(self, rows: dict[Address, QueuedEnvelope]) -> None:
        """After COMMIT: give each row to its device's live outbox, report the others."""
        offline: list[Address] = []
        for address, row in rows.items():
            outbox = self._live.get(address)
            if outbox is None:
                offline.append(address)
            else:
                outbox.offer((row,))
        if offline and self.on_offline is not None:
            self.on_offline(offline)

    def acked(self, address: Address, ids: Iterable[int]) -> None:
        outbox = self._live.get(address)
        if outbox is not None:
            outbox.acked(ids)

    def close_device(
        self, address: Address, reason: str, *, session_id: str | None = None
    ) -> None:
        """Close the device's socket (only if it came from ``session_id``, when given)."""
        outbox = self._live.get(address)
        if outbox is None or (session_id is not None and outbox.session_id != session_id):
            return
        del self._live[address]
        outbox.close(reason)
        if session_id is None:
            self._high_water.pop(address, None)

    def close_all(self, reason: str) -> None:
        for outbox in list(self._live.values()):
            outbox.close(reason)
        self._live.clear()

    def note_framed(self, address: Address, rows: list[QueuedEnvelope]) -> None:
        self.stats.frames += 1
        self.note_fetched(address, rows)

    def note_fetched(self, address: Address, rows: list[QueuedEnvelope]) -> None:
        """Count delivered rows; a row at or below the device's high-water mark is a repeat."""
        if not rows:
            return
        high = self._high_water.get(address, 0)
        self.stats.delivered += len(rows)
        self.stats.redelivered += sum(1 for row in rows if row.id <= high)
        self._high_water[address] = max(high, rows[-1].id)


async def deliveries(
    hub: DeliveryHub,
    outbox: Outbox,
    fetch: FetchPage,
    *,
    frame_max_envelopes: int,
    frame_max_bytes: int,
) -> AsyncIterator[Frame]:
    """Frames for one socket until its outbox is closed."""
    announced_empty = False
    while outbox.closed is None:
        room = min(outbox.window, frame_max_envelopes)
        if room == 0:
            await outbox.wait()
            continue
        if outbox.resync:
            outbox.resync = False
            page = await fetch(outbox.address, outbox.last_sent_id, room)
            if outbox.closed is not None:
                return
            rows = _fit(page, frame_max_bytes)
            if len(page) == room or len(rows) < len(page):
                outbox.resync = True  # more backlog: the next page on the next turn
        else:
            rows = outbox.take_live(room, frame_max_bytes)
        marker = not announced_empty and not outbox.resync
        if rows:
            outbox.sent(rows)
            hub.note_framed(outbox.address, rows)
        if rows or marker:
            announced_empty = announced_empty or marker
            yield Frame(rows, queue_empty=marker)
        elif not outbox.resync:
            await outbox.wait()


def _fit(rows: list[QueuedEnvelope], max_bytes: int) -> list[QueuedEnvelope]:
    """The longest prefix under ``max_bytes`` (always at least one row)."""
    total = 0
    for index, row in enumerate(rows):
        total += len(row.envelope) + 48
        if total > max_bytes and index > 0:
            return rows[:index]
    return rows
