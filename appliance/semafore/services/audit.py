"""The audit log as admins and operators use it: list with filters, export as JSON Lines,
verify the chain, sign checkpoints (periodically and on demand).

Events are *written* by the feature that causes them, inside its own unit of work, with
:func:`semafore.storage.audit.append_event`; this service only reads, verifies and signs.
One global chain holds every organisation's events (each entry carries ``org_id``); an admin
sees and exports only their organisation's entries; verification covers the whole chain.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from semafore.config import AuditSettings
from semafore.services.clock import Clock
from semafore.services.errors import InvalidInput
from semafore.storage import Database
from semafore.storage import audit as store
from semafore.storage.audit_chain import (
    AuditEntry,
    ChainVerifier,
    Checkpoint,
    VerifyReport,
    checkpoint_message,
    key_id_for,
    to_ms,
)

log = logging.getLogger("semafore.audit")

PAGE_DEFAULT = 50
PAGE_MAX = 500
EXPORT_BATCH = 500
_EVENT_FILTER = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*\.?$")
_ACTOR_FILTER = re.compile(r"^[A-Za-z0-9_:/.\-]{1,200}$")


@dataclass(frozen=True, slots=True)
class AuditPage:
    entries: list[AuditEntry]
    next_before: int | None  # pass as ``before`` for the next (older) page


def entry_dict(entry: AuditEntry) -> dict[str, Any]:
    """An entry as JSON (API and export): the hashed fields plus a readable time."""
    return {
        "seq": entry.seq,
        "at": iso_ms(entry.at_ms),
        "at_ms": entry.at_ms,
        "org_id": entry.org_id,
        "actor": entry.actor,
        "event": entry.event,
        "target": entry.target,
        "data": entry.data_dict,
        "prev_hash": entry.prev_hash.hex(),
        "hash": entry.hash.hex(),
    }


def iso_ms(at_ms: int) -> str:
    return datetime.fromtimestamp(at_ms / 1000, UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


def parse_time(value: object, name: str) -> int | None:
    """Epoch milliseconds from an ISO 8601 date or date-time (UTC if no offset) or None."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return to_ms(float(value))
    if isinstance(value, str) and len(value) <= 40:
        text = value.strip().replace("Z", "+00:00").replace("z", "+00:00")
        try:
            if len(text) == 10:
                parsed = datetime.combine(date.fromisoformat(text), datetime.min.time())
            else:
                parsed = datetime.fromisoformat(text)
        except ValueError:
            pass
        else:
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=UTC)
            return to_ms(parsed.timestamp())
    raise InvalidInput(f"{name} must be an ISO 8601 date or date-time, e.g. 2025-01-31",
                       code="audit_filter_invalid")


def parse_filter(
    org_id: str | None, *, event: object = None, actor: object = None, since: object = None,
    until: object = None, all_orgs: bool = False,
) -> store.EntryFilter:
    if event not in (None, "") and not (
        isinstance(event, str) and _EVENT_FILTER.fullmatch(event)
    ):
        raise InvalidInput("event must be an event name such as device.approved, or a prefix "
                           "ending in a dot such as device.", code="audit_filter_invalid")
    if actor not in (None, "") and not (
        isinstance(actor, str) and _ACTOR_FILTER.fullmatch(actor)
    ):
        raise InvalidInput("actor must look like member:<id>, token:<id> or operator",
                           code="audit_filter_invalid")
    return store.EntryFilter(
        org_id=org_id, all_orgs=all_orgs, event=str(event) if event else None,
        actor=str(actor) if actor else None, since_ms=parse_time(since, "since"),
        until_ms=parse_time(until, "until"),
    )


def _parse_int(value: object, name: str, low: int, high: int) -> int | None:
    if value is None or value == "":
        return None
    try:
        number = int(value) if isinstance(value, str | int) and not isinstance(value, bool) \
            else None
    except ValueError:
        number = None
    if number is None or not low <= number <= high:
        raise InvalidInput(f"{name} must be an integer from {low} to {high}",
                           code="audit_filter_invalid")
    return number


class AuditService:
    def __init__(
        self, database: Database, clock: Clock, settings: AuditSettings, signing_seed: bytes
    ) -> None:
        self._db = database
        self._clock = clock
        self._settings = settings
        self._signer = Ed25519PrivateKey.from_private_bytes(signing_seed)
        self.public_key = self._signer.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.key_id = key_id_for(self.public_key)

    # -- reading --------------------------------------------------------------------------------

    async def list_entries(
        self, flt: store.EntryFilter, *, before: object = None, limit: object = None
    ) -> AuditPage:
        before_seq = _parse_int(before, "before", 1, 2**62)
        page = _parse_int(limit, "limit", 1, PAGE_MAX) or PAGE_DEFAULT
        async with self._db.read() as conn:
            entries = await store.list_entries(conn, flt, before_seq=before_seq, limit=page + 1)
        more = len(entries) > page
        entries = entries[:page]
        return AuditPage(entries, entries[-1].seq if more and entries else None)

    async def export(self, flt: store.EntryFilter) -> AsyncIterator[AuditEntry]:
        """Every matching entry, oldest first; a reader is held only per batch."""
        after = 0
        while True:
            async with self._db.read() as conn:
                batch = await store.entries_after(conn, flt, after, EXPORT_BATCH)
            for entry in batch:
                yield entry
            if len(batch) < EXPORT_BATCH:
                return
            after = batch[-1].seq

    async def latest_checkpoint(self) -> Checkpoint | None:
        async with self._db.read() as conn:
            return await store.latest_checkpoint(conn)

    # -- verifying ------------------------------------------------------------------------------

    async def verify(self, *, actor: str | None = None, org_id: str | None = None) -> VerifyReport:
        """Check the whole chain and every checkpoint; record the run when ``actor`` is given."""
        async with self._db.read() as conn:
            report = await verify_connection(conn)
        if actor is not None:
            now = self._clock.now()

            async def unit(conn: Any) -> None:
                await store.append_event(
                    conn, at=now, org_id=org_id, actor=actor, event="audit.verified",
                    data={"ok": report.ok, "entries": report.entries,
                          "first_bad_seq": report.first_bad_seq},
                )

            await self._db.write("audit.record_verification", unit)
        return report

    # -- checkpoints ----------------------------------------------------------------------------

    async def checkpoint(self, *, only_if_grown: bool = False) -> Checkpoint | None:
        """Sign (tree size, head hash) now. With ``only_if_grown``, skip it when nothing was
        appended since the last checkpoint (the periodic task)."""
        now = self._clock.now()

        async def unit(conn: Any) -> Checkpoint | None:
            size, head = await store.head(conn)
            if only_if_grown:
                latest = await store.latest_checkpoint(conn)
                if size == 0 or (latest is not None and latest.tree_size == size):
                    return None
            await store.add_checkpoint_key(conn, key_id=self.key_id, public_key=self.public_key,
                                           at=now)
            at_ms = to_ms(now)
            signature = self._signer.sign(checkpoint_message(
                tree_size=size, head_hash=head, at_ms=at_ms, key_id=self.key_id))
            return await store.add_checkpoint(conn, tree_size=size, head_hash=head, at_ms=at_ms,
                                              key_id=self.key_id, signature=signature)

        return await self._db.write("audit.checkpoint", unit)

    async def run_checkpoints(
        self, sleep: Callable[[float], Awaitable[object]] = asyncio.sleep
    ) -> None:
        """Background task: every ``audit.checkpoint_interval_seconds``, sign a checkpoint if
        the log grew since the last one."""
        while True:
            await sleep(self._settings.checkpoint_interval_seconds)
            try:
                await self.checkpoint(only_if_grown=True)
            except Exception:
                log.exception("signing an audit checkpoint failed")


async def verify_connection(
    conn: Any, *, trusted_key_ids: set[str] | None = None
) -> VerifyReport:
    """Run the chain verifier over a database connection (live reader or an offline copy)."""
    verifier = ChainVerifier(await store.checkpoints(conn), await store.checkpoint_keys(conn),
                             trusted_key_ids)
    async for entry in store.iter_entries(conn):
        if not verifier.add(entry):
            break
    return verifier.finish()

