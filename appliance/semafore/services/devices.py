"""Devices: the admin's view (list, approve, reject, revoke), the relay's view (lookups and
device lists), and the per-request "is this device still allowed in?" check.

Revocation is one unit of work: the device row goes (and with it, by cascade, its pre keys,
refresh tokens and queued messages), its enrolment credentials go, a row in
``session_revocations`` and an audit entry are written. After COMMIT the approval cache drops
the device and every ``on_revoked`` hook runs (the relay closes WebSockets there). Revocations
committed by another process (the CLI) are picked up by :meth:`DeviceService.sync_revocations`:
the committing process replaces a signal file beside the database, and the server checks that
file before every per-request check (and every 100 ms for open WebSockets), with a full read of
the table every second as a backstop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from semafore.services import identity_events as events
from semafore.services.clock import Clock
from semafore.services.errors import Conflict, NotFound
from semafore.storage import Database, enrolment_store, refresh_tokens
from semafore.storage import devices as store
from semafore.storage import members as member_store
from semafore.storage.revocation_signal import RevocationSignal, Signature

log = logging.getLogger("semafore.devices")

DeviceStatus = Literal["pending", "approved"]
DAY = 86_400


@dataclass(frozen=True, slots=True)
class Device:
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

    @classmethod
    def from_row(cls, row: store.DeviceRow) -> Device:
        return cls(
            row.user_id, row.device_id, row.org_id, row.status, row.identity_key,
            row.identity_signing_key, row.identity_binding_signature, row.registered_at,
            row.approved_at, row.last_active_day, row.device_name,
        )


@dataclass(frozen=True, slots=True)
class RevokedSession:
    """A device lost access (``chain_id`` None) or one of its refresh chains was killed."""

    user_id: str
    device_id: int
    chain_id: str | None = None


RevocationHook = Callable[[RevokedSession], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class DeviceAccess:
    """What the approval cache knows about an approved device and one of its token chains."""

    org_id: str
    active_day: int | None


class DeviceService:
    def __init__(self, database: Database, clock: Clock) -> None:
        self._db = database
        self._clock = clock
        # Hooks run after COMMIT of every revocation, in-process or seen from another process.
        self.on_revoked: list[RevocationHook] = []
        self._access: dict[tuple[str, int, str], DeviceAccess] = {}
        self._generation = 0
        self._last_seq = 0
        self._handled_seqs: set[int] = set()
        self._signal = RevocationSignal(database.path)
        self._sync_started = False  # set by start_revocation_sync (the server)
        self._signal_seen: Signature | None = None
        self._sync_lock = asyncio.Lock()

    # -- lookups (relay) ------------------------------------------------------------------------

    async def get_device(self, user_id: str, device_id: int) -> Device | None:
        async with self._db.read() as conn:
            row = await store.get_device(conn, user_id, device_id)
        return None if row is None else Device.from_row(row)

    async def approved_devices(self, user_id: str) -> list[Device]:
        """The user's device list as senders see it: approved devices only."""
        async with self._db.read() as conn:
            rows = await store.approved_devices(conn, user_id)
        return [Device.from_row(r) for r in rows]

    # -- admin ----------------------------------------------------------------------------------

    async def list_devices(
        self, org_id: str, *, user_id: str | None = None, status: DeviceStatus | None = None
    ) -> list[Device]:
        async with self._db.read() as conn:
            rows = await store.list_devices(conn, org_id, user_id=user_id, status=status)
        return [Device.from_row(r) for r in rows]

    async def get_org_device(self, org_id: str, user_id: str, device_id: int) -> Device:
        """The device, if it belongs to ``org_id``; otherwise NotFound (same as absent)."""
        device = await self.get_device(user_id, device_id)
        if device is None or device.org_id != org_id:
            raise _device_not_found()
        return device

    async def approve(self, org_id: str, user_id: str, device_id: int, *, actor: str) -> Device:
        now = self._clock.now()

        async def unit(conn: Any) -> None:
            row = await _org_device(conn, org_id, user_id, device_id)
            if row.status != "pending":
                raise Conflict("the device is already approved", code="device_not_pending")
            await store.approve_device(conn, user_id, device_id, int(now))
            await events.record(
                conn, at=now, org_id=org_id, actor=actor, event="device.approved",
                target=events.device_ref(user_id, device_id),
            )

        await self._db.write("devices.approve", unit)
        return await self.get_org_device(org_id, user_id, device_id)

    async def reject(self, org_id: str, user_id: str, device_id: int, *, actor: str) -> None:
        now = self._clock.now()

        async def unit(conn: Any) -> int:
            row = await _org_device(conn, org_id, user_id, device_id)
            if row.status != "pending":
                raise Conflict(
                    "the device is approved; revoke it instead", code="device_not_pending"
                )
            seq = await _remove_device(conn, user_id, device_id, int(now))
            # The pending device may still poll: tell it it was rejected.
            await enrolment_store.mark_rejected(conn, user_id, device_id)
            await events.record(
                conn, at=now, org_id=org_id, actor=actor, event="device.rejected",
                target=events.device_ref(user_id, device_id),
            )
            return seq

        seq = await self._db.write("devices.reject", unit)
        await self.notify_revoked([(seq, RevokedSession(user_id, device_id))])

    async def revoke(self, org_id: str, user_id: str, device_id: int, *, actor: str) -> None:
        now = self._clock.now()

        async def unit(conn: Any) -> int:
            await _org_device(conn, org_id, user_id, device_id)
            seq = await _remove_device(conn, user_id, device_id, int(now))
            await enrolment_store.delete_device_credentials(conn, user_id, device_id)
            await events.record(
                conn, at=now, org_id=org_id, actor=actor, event="device.revoked",
                target=events.device_ref(user_id, device_id),
            )
            return seq

        seq = await self._db.write("devices.revoke", unit)
        await self.notify_revoked([(seq, RevokedSession(user_id, device_id))])

    # -- the per-request check (sessions) --------------------------------------------------------

    async def access(self, user_id: str, device_id: int, chain_id: str) -> DeviceAccess | None:
        """The device is approved and the token chain alive; None otherwise. Cached."""
        await self.catch_up_if_signalled()
        key = (user_id, device_id, chain_id)
        cached = self._access.get(key)
        if cached is not None:
            return cached
        generation = self._generation
        async with self._db.read() as conn:
            row = await store.get_device(conn, user_id, device_id)
            alive = row is not None and await refresh_tokens.chain_exists(conn, chain_id)
        if row is None or row.status != "approved" or not alive:
            return None
        access = DeviceAccess(row.org_id, row.last_active_day)
        # A revocation that committed while we were reading must not be undone by this entry.
        if generation == self._generation:
            self._access[key] = access
        return access

    async def note_active(self, user_id: str, device_id: int, chain_id: str, day: int) -> None:
        """Record day-granularity activity; writes at most once per device and day."""
        key = (user_id, device_id, chain_id)
        cached = self._access.get(key)
        if cached is None or (cached.active_day is not None and cached.active_day >= day):
            return
        async def unit(conn: Any) -> None:
            await member_store.touch_active(conn, user_id, device_id, day)

        await self._db.write("devices.note_active", unit)
        if key in self._access:
            self._access[key] = DeviceAccess(cached.org_id, day)

    # -- revocation propagation -------------------------------------------------------------------

    def forget(
        self, user_id: str, device_id: int | None = None, chain_id: str | None = None
    ) -> None:
        """Drop cached approvals at once (before any hook runs)."""
        self._generation += 1
        for key in [k for k in self._access if k[0] == user_id]:
            if (device_id is None or key[1] == device_id) and (
                chain_id is None or key[2] == chain_id
            ):
                del self._access[key]

    async def notify_revoked(self, revoked: list[tuple[int, RevokedSession]]) -> None:
        """After COMMIT of this process's revocations: tell other processes, apply them here."""
        if revoked:
            self._signal.announce(max(seq for seq, _ in revoked))
        self._handled_seqs.update(seq for seq, _ in revoked)
        await self._apply(revoked)

    async def _apply(self, revoked: list[tuple[int, RevokedSession]]) -> None:
        """Drop cached state, then run every hook (errors are logged)."""
        for _, session in revoked:
            self.forget(session.user_id, session.device_id, session.chain_id)
        for _, session in revoked:
            for hook in list(self.on_revoked):
                try:
                    await hook(session)
                except Exception:
                    log.exception("revocation hook failed")

    async def start_revocation_sync(self) -> None:
        """Start from the newest revocation on record (older ones concern nobody now)."""
        self._signal_seen = self._signal.signature()
        async with self._db.read() as conn:
            self._last_seq = await store.last_revocation_seq(conn)
        self._sync_started = True

    async def sync_revocations(self) -> int:
        """Apply revocations committed by other processes; return how many were new."""
        async with self._db.read() as conn:
            rows = await store.revocations_after(conn, self._last_seq)
        fresh: list[tuple[int, RevokedSession]] = []
        for row in rows:
            self._last_seq = max(self._last_seq, row.seq)
            if row.seq in self._handled_seqs:
                self._handled_seqs.discard(row.seq)
                continue
            fresh.append((row.seq, RevokedSession(row.user_id, row.device_id, row.chain_id)))
        if fresh:
            await self._apply(fresh)
        return len(fresh)

    async def catch_up_if_signalled(self) -> None:
        """If another process signalled a revocation since we last looked, apply it now.

        Every caller that saw the change waits for the one read of the table, so no request
        answers from the cache until the revocation is applied.
        """
        if not self._sync_started:
            return
        seen = self._signal.signature()
        if seen == self._signal_seen:
            return
        async with self._sync_lock:
            if seen != self._signal_seen:
                await self.sync_revocations()
                # Only what was seen before the read: a later signal triggers another read.
                self._signal_seen = seen

    async def run_revocation_sync(
        self, poll_seconds: float = 0.1, backstop_seconds: float = 1.0
    ) -> None:
        """Forever: pick up other processes' revocations (run as a background task).

        The signal file is checked often, so that WebSockets of a device revoked from the CLI
        close promptly; the table itself is read every ``backstop_seconds`` in case a process
        could not write the signal.
        """
        if not self._sync_started:
            await self.start_revocation_sync()
        loop = asyncio.get_running_loop()
        next_backstop = loop.time() + backstop_seconds
        while True:
            await asyncio.sleep(poll_seconds)
            try:
                if loop.time() >= next_backstop:
                    next_backstop = loop.time() + backstop_seconds
                    async with self._sync_lock:
                        await self.sync_revocations()
                else:
                    await self.catch_up_if_signalled()
            except Exception:
                log.exception("revocation sync failed")

    async def purge_expired(self, keep_seconds: int) -> None:
        before = int(self._clock.now()) - keep_seconds

        async def unit(conn: Any) -> None:
            await store.prune_revocations(conn, before)

        await self._db.write("devices.purge_revocations", unit)


async def _org_device(conn: Any, org_id: str, user_id: str, device_id: int) -> store.DeviceRow:
    row = await store.get_device(conn, user_id, device_id)
    if row is None or row.org_id != org_id:
        raise _device_not_found()
    return row


async def _remove_device(conn: Any, user_id: str, device_id: int, now: int) -> int:
    seq = await store.delete_device(conn, user_id, device_id, now)
    if seq is None:
        raise _device_not_found()
    return seq


def _device_not_found() -> NotFound:
    return NotFound("no such device", code="device_not_found")
