"""The delivery hub and the per-socket frame stream, driven without sockets or a database."""

from __future__ import annotations

import asyncio

from semafore.services.delivery import CLOSE_REPLACED, DeliveryHub, Frame, deliveries
from semafore.storage.relay_queue import QueuedEnvelope

DEVICE = ("user:bob", 1)


class FakeQueue:
    """Committed rows of one device, as the database would return them."""

    def __init__(self) -> None:
        self.rows: list[QueuedEnvelope] = []
        self.fetches = 0

    def commit(self, hub: DeliveryHub, count: int) -> list[QueuedEnvelope]:
        start = self.rows[-1].id + 1 if self.rows else 1
        new = [QueuedEnvelope(i, 0, b'{"n":%d}' % i) for i in range(start, start + count)]
        self.rows.extend(new)
        for row in new:
            hub.publish({DEVICE: row})
        return new

    async def fetch(self, device: object, after_id: int, limit: int) -> list[QueuedEnvelope]:
        self.fetches += 1
        await asyncio.sleep(0)
        return [r for r in self.rows if r.id > after_id][:limit]


async def _collect(stream, frames: list[Frame], until_ids: int) -> None:  # type: ignore[no-untyped-def]
    async for frame in stream:
        frames.append(frame)
        if sum(len(f.rows) for f in frames) >= until_ids:
            return


def _ids(frames: list[Frame]) -> list[int]:
    return [row.id for frame in frames for row in frame.rows]


async def test_backlog_then_queue_empty_then_live_rows_coalesced_into_frames() -> None:
    hub = DeliveryHub(outbox_capacity=1000, max_unacked=10_000)
    queue = FakeQueue()
    queue.rows = [QueuedEnvelope(i, 0, b"{}") for i in range(1, 251)]
    outbox = hub.attach(DEVICE)
    stream = deliveries(hub, outbox, queue.fetch, frame_max_envelopes=100, frame_max_bytes=1 << 20)
    frames: list[Frame] = []
    await _collect(stream, frames, 250)
    assert [len(f.rows) for f in frames] == [100, 100, 50]
    assert frames[-1].queue_empty and not frames[0].queue_empty
    queue.commit(hub, 30)  # published while the socket is idle: one frame, no database read
    fetches = queue.fetches
    await _collect(stream, frames, 280)
    assert len(frames) == 4 and queue.fetches == fetches
    assert _ids(frames) == list(range(1, 281))
    assert hub.stats.delivered == 280 and hub.stats.redelivered == 0


async def test_a_slow_socket_falls_back_to_the_database_and_loses_nothing() -> None:
    hub = DeliveryHub(outbox_capacity=10, max_unacked=100_000)
    queue = FakeQueue()
    outbox = hub.attach(DEVICE)
    stream = deliveries(hub, outbox, queue.fetch, frame_max_envelopes=7, frame_max_bytes=1 << 20)
    frames: list[Frame] = []
    await _collect(stream, frames, 0)  # the empty backlog's queue_empty marker
    queue.commit(hub, 500)  # far more than the outbox holds: it overflows
    assert hub.stats.overflows >= 1
    await _collect(stream, frames, 500)
    assert _ids(frames) == list(range(1, 501))


async def test_at_most_max_unacked_in_flight_until_acks_arrive() -> None:
    hub = DeliveryHub(outbox_capacity=1000, max_unacked=20)
    queue = FakeQueue()
    queue.rows = [QueuedEnvelope(i, 0, b"{}") for i in range(1, 101)]
    outbox = hub.attach(DEVICE)
    stream = deliveries(hub, outbox, queue.fetch, frame_max_envelopes=8, frame_max_bytes=1 << 20)
    frames: list[Frame] = []
    await _collect(stream, frames, 20)
    waiting = asyncio.ensure_future(_collect(stream, frames, 30))
    await asyncio.sleep(0.01)
    assert not waiting.done() and len(_ids(frames)) == 20
    hub.acked(DEVICE, _ids(frames)[:10])
    await asyncio.wait_for(waiting, 1)
    assert _ids(frames) == list(range(1, 31))


async def test_a_new_socket_replaces_the_old_one_and_revocation_closes_it() -> None:
    hub = DeliveryHub(outbox_capacity=10, max_unacked=10)
    first = hub.attach(DEVICE, "chain-1")
    second = hub.attach(DEVICE, "chain-2")
    assert first.closed == CLOSE_REPLACED and second.closed is None
    hub.close_device(DEVICE, "revoked", session_id="chain-1")  # another sign-in: untouched
    assert second.closed is None
    hub.close_device(DEVICE, "revoked", session_id="chain-2")
    assert second.closed == "revoked" and hub.open_sockets == 0


async def test_offline_devices_are_reported_for_push() -> None:
    hub = DeliveryHub(outbox_capacity=10, max_unacked=10)
    reported: list[list[tuple[str, int]]] = []
    hub.on_offline = reported.append
    hub.attach(DEVICE)
    other = ("user:bob", 2)
    hub.publish({DEVICE: QueuedEnvelope(1, 0, b"{}"), other: QueuedEnvelope(2, 0, b"{}")})
    assert reported == [[other]]
