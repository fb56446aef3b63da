"""Sending and acknowledging ciphertext (PROTOCOL.md s7.1-7.2): the relay's use cases.

The server reads only routing fields of an envelope (``v``, ``type``, ``from``, ``to``) and its
size; everything else stays opaque and is stored as compact JSON bytes. A send is accepted only
when its targets are exactly the recipients' approved devices plus the sender's own other
approved devices; it is stored in one unit of work (rows + idempotency record) and answered
after COMMIT, then handed to live sockets by the delivery hub.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from semafore.config import RelaySettings
from semafore.protocol.address import DeviceAddress
from semafore.protocol.errors import ProtocolError
from semafore.services.clock import Clock
from semafore.services.delivery import CLOSE_REVOKED, DeliveryHub, Frame, Outbox, deliveries
from semafore.services.errors import (
    Conflict,
    InvalidInput,
    LimitReached,
    NotFound,
    TooLarge,
    Unauthenticated,
)
from semafore.storage.keydir import KeyDirectory
from semafore.storage.relay_queue import (
    NewRow,
    QueueCapExceeded,
    QueueCaps,
    QueuedEnvelope,
    RelayQueue,
    SenderGone,
    SendRecord,
    TargetGone,
)

log = logging.getLogger("semafore.relay")

Address = tuple[str, int]
_MSG_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_SERVER_ID = re.compile(r"[1-9][0-9]{0,17}")
MAX_ACK_IDS = 10_000
_KNOWN_ADDRESSES = 100_000
_COMPACT = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
# How long a device list read for one burst of sends may serve later ones. Zero: every burst
# reads the lists it needs (one statement for all its members, on a reader), because an
# approval has no hook here (it may come from the CLI process) and a send accepted against a
# list that predates an approval would silently miss the new device (PROTOCOL.md s7.2).
DEVICE_CACHE_SECONDS = 0.0


@dataclass(frozen=True, slots=True)
class SendAnswer:
    msg_id: str
    stored: int
    ts: int

    def to_json(self) -> dict[str, Any]:
        return {"msg_id": self.msg_id, "stored": self.stored, "ts": self.ts}


@dataclass(slots=True)
class RelayStats:
    sends: int = 0
    envelopes: int = 0
    duplicates: int = 0
    refused: dict[str, int] = field(default_factory=dict)
    acks: int = 0

    def refuse(self, code: str) -> None:
        self.refused[code] = self.refused.get(code, 0) + 1


@dataclass(frozen=True, slots=True)
class _Devices:
    org_id: str | None
    ids: frozenset[int]
    loaded_at: float


class RelayService:
    def __init__(
        self,
        settings: RelaySettings,
        clock: Clock,
        queue: RelayQueue,
        keydir: KeyDirectory,
        hub: DeliveryHub,
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._queue = queue
        self._keydir = keydir
        self.hub = hub
        self.stats = RelayStats()
        self._caps = QueueCaps(settings.queue_max_messages, settings.queue_max_bytes)
        self._devices: dict[str, _Devices] = {}
        self._generation: dict[str, int] = {}
        self._loading: dict[str, asyncio.Future[dict[str, _Devices]]] = {}
        self._wanted: set[str] = set()
        self._read: asyncio.Future[dict[str, _Devices]] | None = None
        self._addresses: dict[Address, None] = {}  # envelope addresses already checked
        self._acks = _AckBatcher(queue, self.stats)

    # -- sending ------------------------------------------------------------------------------

    async def send(self, sender: Address, org_id: str, body: Mapping[str, Any]) -> SendAnswer:
        try:
            return await self._send(sender, org_id, body)
        except (InvalidInput, TooLarge, Conflict, LimitReached, NotFound) as error:
            self.stats.refuse(error.code)
            raise

    async def _send(self, sender: Address, org_id: str, body: Mapping[str, Any]) -> SendAnswer:
        if body.get("v") != 1 or type(body.get("v")) is not int:
            raise InvalidInput("unsupported version; expected v = 1", code="unsupported_version")
        msg_id = body.get("msg_id")
        if not isinstance(msg_id, str) or not _MSG_ID.fullmatch(msg_id):
            raise InvalidInput(
                "msg_id must be 1-64 characters of A-Z a-z 0-9 . _ : -", code="invalid_msg_id"
            )
        rows = self._rows(sender, body.get("envelopes"))
        targets = {row.target for row in rows}
        missing, extra = await self._compare(sender, org_id, targets, fresh=False)
        if missing or extra:
            missing, extra = await self._compare(sender, org_id, targets, fresh=True)
        if missing or extra:
            previous = await self._queue.find_send(sender, msg_id)
            if previous is not None:  # a retry of a send stored before the list changed
                return self._answer(msg_id, previous)
            raise _stale(missing, extra)
        try:
            record = await self._queue.store_send(
                sender, msg_id, rows, now_ms=int(self._clock.now() * 1000), caps=self._caps
            )
        except QueueCapExceeded as full:
            raise LimitReached(
                "a recipient device's queue is full; it must drain before it can take more",
                code="queue_full",
                details={"devices": [_addr(a) for a in full.devices]},
            ) from None
        except SenderGone:
            raise Unauthenticated(
                "this device is no longer approved", code="session_revoked"
            ) from None
        except TargetGone:
            for user_id in {t[0] for t in targets}:
                self.invalidate(user_id)
            missing, extra = await self._compare(sender, org_id, targets, fresh=True)
            raise _stale(missing, extra) from None
        if not record.duplicate:
            self.hub.publish(record.stored)
        return self._answer(msg_id, record)

    def _answer(self, msg_id: str, record: SendRecord) -> SendAnswer:
        if record.duplicate:
            self.stats.duplicates += 1
        else:
            self.stats.sends += 1
            self.stats.envelopes += record.envelopes
        return SendAnswer(msg_id, record.envelopes, record.sent_at)

    def _rows(self, sender: Address, envelopes: object) -> list[NewRow]:
        limit = self._settings.send_max_envelopes
        if not isinstance(envelopes, list) or not envelopes:
            raise InvalidInput("envelopes must be a non-empty list", code="invalid_envelope")
        if len(envelopes) > limit:
            raise TooLarge(f"at most {limit} envelopes per send", code="too_many_envelopes")
        rows: list[NewRow] = []
        seen: set[Address] = set()
        for index, envelope in enumerate(envelopes):
            target = _route(envelope, sender, index, self._addresses)
            if target in seen:
                raise InvalidInput(
                    f"envelopes[{index}]: a second envelope for the same device",
                    code="duplicate_target",
                )
            seen.add(target)
            data = _COMPACT.encode(envelope).encode()
            if len(data) > self._settings.envelope_max_bytes:
                raise TooLarge(
                    f"envelopes[{index}] is larger than "
                    f"{self._settings.envelope_max_bytes} bytes",
                    code="envelope_too_large",
                )
            rows.append(NewRow(target, data))
        return rows

    async def _compare(
        self, sender: Address, org_id: str, targets: set[Address], *, fresh: bool
    ) -> tuple[list[Address], list[Address]]:
        users = {user_id for user_id, _ in targets} | {sender[0]}
        expected: set[Address] = set()
        for user_id in users:
            devices = await self.approved_device_ids(user_id, fresh=fresh)
            if devices.org_id != org_id:
                raise NotFound("no such recipient", code="recipient_not_found")
            expected.update((user_id, device_id) for device_id in devices.ids)
        expected.discard(sender)
        return sorted(expected - targets), sorted(targets - expected)

    async def approved_device_ids(self, user_id: str, *, fresh: bool = False) -> _Devices:
        if not fresh:
            cached = self._devices.get(user_id)
            if cached is not None and time.monotonic() - cached.loaded_at < DEVICE_CACHE_SECONDS:
                return cached
            loading = self._loading.get(user_id)  # a read under way will do
            if loading is not None:
                return (await asyncio.shield(loading))[user_id]
        return (await asyncio.shield(self._next_read(user_id)))[user_id]

    def _next_read(self, user_id: str) -> asyncio.Future[dict[str, _Devices]]:
        """Join the device-list read that starts on the next loop turn: members missed by
        the same burst of sends are read together, in one statement."""
        self._wanted.add(user_id)
        if self._read is None:
            self._read = asyncio.ensure_future(self._read_wanted())
            self._read.add_done_callback(_retrieved)
        self._loading[user_id] = self._read
        return self._read

    async def _read_wanted(self) -> dict[str, _Devices]:
        await asyncio.sleep(0)
        users, self._wanted, self._read = self._wanted, set(), None
        generations = {u: self._generation.get(u, 0) for u in users}
        try:
            lists = await self._queue.device_lists(sorted(users))
        finally:
            for user_id in users:
                if self._loading.get(user_id) is asyncio.current_task():
                    del self._loading[user_id]
        now = time.monotonic()
        entries: dict[str, _Devices] = {}
        for user_id in users:
            org_id, ids = lists.get(user_id, (None, frozenset()))
            entries[user_id] = entry = _Devices(org_id, ids, now)
            # A revocation that committed while we read must not be undone by this entry.
            if self._generation.get(user_id, 0) == generations[user_id]:
                self._devices[user_id] = entry
        return entries

    def invalidate(self, user_id: str) -> None:
        """Forget the cached device list of a member (after an approval or revocation)."""
        self._generation[user_id] = self._generation.get(user_id, 0) + 1
        self._devices.pop(user_id, None)
        self._loading.pop(user_id, None)  # a read already under way may predate the change

    def device_revoked(self, device: Address) -> None:
        """The device is gone, its queue with it (cascade): close its socket at once."""
        self.invalidate(device[0])
        self.hub.close_device(device, CLOSE_REVOKED)

    def session_revoked(self, device: Address, session_id: str) -> None:
        """One sign-in of the device ended: close its socket if it came from that sign-in."""
        self.hub.close_device(device, CLOSE_REVOKED, session_id=session_id)

    # -- delivery -----------------------------------------------------------------------------

    async def fetch(self, device: Address, limit: int | None) -> tuple[list[QueuedEnvelope], bool]:
        """Up to ``limit`` queued envelopes, oldest first, and whether more are waiting."""
        cap = self._settings.fetch_max_envelopes
        limit = cap if limit is None else limit
        if not 1 <= limit <= cap:
            raise InvalidInput(f"limit must be between 1 and {cap}", code="invalid_limit")
        rows = await self._queue.fetch(device, after_id=0, limit=limit + 1)
        self.hub.note_fetched(device, rows[:limit])
        return rows[:limit], len(rows) > limit

    async def ack(self, device: Address, ids: object) -> int:
        """Delete acked rows (HTTP: answered after COMMIT). Returns how many were deleted."""
        checked = check_ack_ids(ids)
        self.hub.acked(device, checked)
        return await self._acks.add(device, checked)

    def ack_nowait(self, device: Address, ids: list[int]) -> None:
        """WebSocket acks: batched with other devices' acks into one unit, not awaited."""
        self.hub.acked(device, ids)
        self._acks.add_nowait(device, ids)

    def open_outbox(self, device: Address, session_id: str | None = None) -> Outbox:
        return self.hub.attach(device, session_id)

    def close_outbox(self, outbox: Outbox) -> None:
        self.hub.detach(outbox)

    def frames(self, outbox: Outbox) -> Any:
        """The frames for one socket (an async iterator of :class:`Frame`)."""

        async def fetch(device: Address, after_id: int, limit: int) -> list[QueuedEnvelope]:
            return await self._queue.fetch(device, after_id=after_id, limit=limit)

        iterator: Any = deliveries(
            self.hub,
            outbox,
            fetch,
            frame_max_envelopes=self._settings.frame_max_envelopes,
            frame_max_bytes=self._settings.frame_max_bytes,
        )
        return iterator

    async def flush_acks(self) -> None:
        await self._acks.drain()

    async def queue_depth(self) -> int:
        return await self._queue.total_depth()


def check_ack_ids(ids: object) -> list[int]:
    """Server ids as the wire carries them: decimal strings (opaque to clients)."""
    if not isinstance(ids, list) or not ids or len(ids) > MAX_ACK_IDS:
        raise InvalidInput(
            f"ids must be a list of 1 to {MAX_ACK_IDS} server message ids", code="invalid_ack"
        )
    parsed: list[int] = []
    for value in ids:
        if not isinstance(value, str) or not _SERVER_ID.fullmatch(value):
            raise InvalidInput("ids must be server message ids (strings)", code="invalid_ack")
        parsed.append(int(value))
    return parsed


def _route(
    envelope: object, sender: Address, index: int, known: dict[Address, None]
) -> Address:
    if not isinstance(envelope, dict):
        raise InvalidInput(f"envelopes[{index}] must be a JSON object", code="invalid_envelope")
    if type(envelope.get("v")) is not int or envelope.get("v") != 1:
        raise InvalidInput(f"envelopes[{index}]: unsupported version", code="unsupported_version")
    if envelope.get("type") not in ("prekey", "msg"):
        raise InvalidInput(
            f"envelopes[{index}]: type must be prekey or msg", code="invalid_envelope"
        )
    source = _address(envelope.get("from"), known)
    target = _address(envelope.get("to"), known)
    if source is None or target is None:
        raise InvalidInput(
            f"envelopes[{index}]: from and to must be device addresses", code="invalid_envelope"
        )
    if source != sender:
        raise InvalidInput(
            f"envelopes[{index}]: from must be the sending device", code="wrong_sender"
        )
    return target


def _address(value: object, known: dict[Address, None]) -> Address | None:
    """A checked ``(user_id, device_id)``, or None. An address already checked in exactly this
    shape (two members, a str and an int) skips the full check: most sends repeat addresses."""
    plain = type(value) is dict and len(value) == 2
    if plain:
        user_id, device_id = value.get("user_id"), value.get("device_id")  # type: ignore[union-attr]
        if type(user_id) is str and type(device_id) is int and (user_id, device_id) in known:
            return (user_id, device_id)
    try:
        address = DeviceAddress.from_dict(value)  # type: ignore[arg-type]
    except ProtocolError:
        return None
    checked = (address.user_id, address.device_id)
    if plain:
        if len(known) >= _KNOWN_ADDRESSES:
            known.clear()
        known[checked] = None
    return checked


def _retrieved(done: asyncio.Future[Any]) -> None:
    if not done.cancelled():
        done.exception()  # the waiters got it; not "never retrieved"


def _addr(address: Address) -> dict[str, Any]:
    return {"user_id": address[0], "device_id": address[1]}


def _stale(missing: Sequence[Address], extra: Sequence[Address]) -> Conflict:
    return Conflict(
        "the device list is out of date; refresh it and send again",
        code="device_list_stale",
        details={"missing": [_addr(a) for a in missing], "extra": [_addr(a) for a in extra]},
    )


class _AckBatcher:
    """Acks of many devices go to the writer as one unit; new ones queue while it runs."""

    def __init__(self, queue: RelayQueue, stats: RelayStats) -> None:
        self._queue = queue
        self._stats = stats
        self._pending: dict[Address, list[int]] = {}
        self._waiters: list[tuple[Address, list[int], asyncio.Future[int]]] = []
        self._task: asyncio.Task[None] | None = None

    def add_nowait(self, device: Address, ids: list[int]) -> None:
        self._pending.setdefault(device, []).extend(ids)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="relay-acks")

    async def add(self, device: Address, ids: list[int]) -> int:
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._waiters.append((device, ids, future))
        self.add_nowait(device, ids)
        return await future

    async def drain(self) -> None:
        while self._task is not None:
            await asyncio.shield(self._task)

    async def _run(self) -> None:
        try:
            while self._pending:
                pending, self._pending = self._pending, {}
                waiters, self._waiters = self._waiters, []
                try:
                    deleted = await self._queue.ack(list(pending.items()))
                except Exception as error:
                    log.warning("ack batch failed (%s); rows stay queued", type(error).__name__)
                    for _, _, future in waiters:
                        if not future.done():
                            future.set_exception(error)
                    continue
                self._stats.acks += sum(len(ids) for ids in deleted.values())
                for device, ids, future in waiters:
                    if not future.done():
                        gone = deleted.get(device, set())
                        future.set_result(sum(1 for i in set(ids) if i in gone))
        finally:
            self._task = None


__all__ = ["Frame", "RelayService", "RelayStats", "SendAnswer", "check_ack_ids"]
