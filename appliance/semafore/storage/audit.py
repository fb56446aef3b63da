"""Audit log storage: append entries to the hash chain, read them back, store checkpoints.

:func:`append_event` is called *inside* other units of work (``await db.write(name, unit)``),
so an event is committed together with the change it records, or not at all. The single
writer connection serialises appends, so reading the head and inserting the next entry in the
same transaction is race-free; a trigger in the schema refuses any other kind of insert.
The byte format is in :mod:`semafore.storage.audit_chain` and docs/audit.md.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiosqlite

from semafore.storage.audit_chain import (
    EVENT_NAME,
    GENESIS_HASH,
    AuditEntry,
    Checkpoint,
    canonical_data,
    entry_hash,
    to_ms,
)
from semafore.storage.errors import StorageError

_ENTRY_COLUMNS = "seq, at_ms, org_id, actor, event, target, data, prev_hash, hash"


async def append_event(
    conn: aiosqlite.Connection,
    *,
    at: float,
    org_id: str | None,
    actor: str,
    event: str,
    target: str | None = None,
    data: Mapping[str, Any] | None = None,
) -> int:
    """Append one event to the chain in the caller's transaction; return its sequence number.

    ``actor`` and ``target`` are ``kind:id`` strings (``member:…``, ``device:…``, ``token:…``)
    or ``operator`` / ``system``; ``event`` is a dotted name such as ``device.approved``.
    ``data`` holds a few non-secret facts; codes, tokens and phone numbers are refused.
    """
    if not EVENT_NAME.fullmatch(event):
        raise StorageError(f"audit event name {event!r} is not dotted lowercase",
                           code="audit_event_invalid")
    if not actor:
        raise StorageError("audit actor is required", code="audit_event_invalid")
    try:
        data_text = canonical_data(data)
    except ValueError as exc:
        raise StorageError(f"audit data refused: {exc}", code="audit_event_invalid") from None
    seq, prev = await _head(conn)
    seq += 1
    at_ms = to_ms(at)
    digest = entry_hash(seq=seq, at_ms=at_ms, prev_hash=prev, org_id=org_id, actor=actor,
                        event=event, target=target, data=data_text)
    await conn.execute(
        "INSERT INTO audit_entries (seq, at_ms, org_id, actor, event, target, data, prev_hash, "
        "hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (seq, at_ms, org_id, actor, event, target, data_text, prev, digest),
    )
    return seq


async def _head(conn: aiosqlite.Connection) -> tuple[int, bytes]:
    async with conn.execute(
        "SELECT seq, hash FROM audit_entries ORDER BY seq DESC LIMIT 1"
    ) as cursor:
        row = await cursor.fetchone()
    return (0, GENESIS_HASH) if row is None else (int(row[0]), bytes(row[1]))


async def head(conn: aiosqlite.Connection) -> tuple[int, bytes]:
    """(tree size, head hash) of the whole chain; (0, 32 zero bytes) when empty."""
    return await _head(conn)


def _entry(row: Any) -> AuditEntry:
    return AuditEntry(
        seq=int(row[0]), at_ms=int(row[1]), org_id=row[2], actor=row[3], event=row[4],
        target=row[5], data=row[6], prev_hash=bytes(row[7]), hash=bytes(row[8]),
    )


@dataclass(frozen=True, slots=True)
class EntryFilter:
    """Which entries to list or export. ``org_id=None`` with ``all_orgs`` means every org."""

    org_id: str | None = None
    all_orgs: bool = False
    event: str | None = None  # exact name, or a prefix ending in "." (e.g. "device.")
    actor: str | None = None
    since_ms: int | None = None
    until_ms: int | None = None  # exclusive

    def where(self) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        if not self.all_orgs:
            clauses.append("org_id IS ?")
            params.append(self.org_id)
        if self.event:
            if self.event.endswith("."):
                clauses.append("substr(event, 1, ?) = ?")
                params += [len(self.event), self.event]
            else:
                clauses.append("event = ?")
                params.append(self.event)
        if self.actor:
            clauses.append("actor = ?")
            params.append(self.actor)
        if self.since_ms is not None:
            clauses.append("at_ms >= ?")
            params.append(self.since_ms)
        if self.until_ms is not None:
            clauses.append("at_ms < ?")
            params.append(self.until_ms)
        return (" AND ".join(clauses) or "1"), params


async def list_entries(
    conn: aiosqlite.Connection, flt: EntryFilter, *, before_seq: int | None = None,
    limit: int = 50,
) -> list[AuditEntry]:
    """Newest first; ``before_seq`` continues a previous page."""
    where, params = flt.where()
    if before_seq is not None:
        where += " AND seq < ?"
        params.append(before_seq)
    async with conn.execute(
        f"SELECT {_ENTRY_COLUMNS} FROM audit_entries WHERE {where} "  # noqa: S608 - fixed clauses
        "ORDER BY seq DESC LIMIT ?",
        (*params, limit),
    ) as cursor:
        return [_entry(row) for row in await cursor.fetchall()]


async def entries_after(
    conn: aiosqlite.Connection, flt: EntryFilter, after_seq: int, limit: int
) -> list[AuditEntry]:
    """Up to ``limit`` matching entries with ``seq > after_seq``, oldest first."""
    where, params = flt.where()
    async with conn.execute(
        f"SELECT {_ENTRY_COLUMNS} FROM audit_entries WHERE {where} "  # noqa: S608
        "AND seq > ? ORDER BY seq LIMIT ?",
        (*params, after_seq, limit),
    ) as cursor:
        return [_entry(row) for row in await cursor.fetchall()]


async def iter_entries(
    conn: aiosqlite.Connection, flt: EntryFilter | None = None, *, batch: int = 1000,
) -> AsyncIterator[AuditEntry]:
    """Every matching entry, oldest first, read in batches (constant memory)."""
    flt = flt or EntryFilter(all_orgs=True)
    after = 0
    while True:
        entries = await entries_after(conn, flt, after, batch)
        for entry in entries:
            yield entry
        if len(entries) < batch:
            return
        after = entries[-1].seq


# -- checkpoints ------------------------------------------------------------------------------


async def add_checkpoint_key(
    conn: aiosqlite.Connection, *, key_id: str, public_key: bytes, at: float
) -> None:
    """Record a checkpoint public key (idempotent)."""
    await conn.execute(
        "INSERT INTO audit_checkpoint_keys (key_id, public_key, created_at_ms) VALUES (?, ?, ?) "
        "ON CONFLICT (key_id) DO NOTHING",
        (key_id, public_key, to_ms(at)),
    )


async def checkpoint_keys(conn: aiosqlite.Connection) -> dict[str, bytes]:
    async with conn.execute("SELECT key_id, public_key FROM audit_checkpoint_keys") as cursor:
        return {row[0]: bytes(row[1]) for row in await cursor.fetchall()}


async def add_checkpoint(
    conn: aiosqlite.Connection, *, tree_size: int, head_hash: bytes, at_ms: int, key_id: str,
    signature: bytes,
) -> Checkpoint:
    cursor = await conn.execute(
        "INSERT INTO audit_checkpoints (tree_size, head_hash, at_ms, key_id, signature) "
        "VALUES (?, ?, ?, ?, ?)",
        (tree_size, head_hash, at_ms, key_id, signature),
    )
    checkpoint_id = cursor.lastrowid
    await cursor.close()
    assert checkpoint_id is not None
    return Checkpoint(checkpoint_id, tree_size, head_hash, at_ms, key_id, signature)


async def checkpoints(conn: aiosqlite.Connection) -> list[Checkpoint]:
    async with conn.execute(
        "SELECT id, tree_size, head_hash, at_ms, key_id, signature FROM audit_checkpoints "
        "ORDER BY id"
    ) as cursor:
        return [_checkpoint(row) for row in await cursor.fetchall()]


async def latest_checkpoint(conn: aiosqlite.Connection) -> Checkpoint | None:
    async with conn.execute(
        "SELECT id, tree_size, head_hash, at_ms, key_id, signature FROM audit_checkpoints "
        "ORDER BY id DESC LIMIT 1"
    ) as cursor:
        row = await cursor.fetchone()
    return None if row is None else _checkpoint(row)


def _checkpoint(row: Any) -> Checkpoint:
    return Checkpoint(int(row[0]), int(row[1]), bytes(row[2]), int(row[3]), row[4], bytes(row[5]))


# -- offline access ---------------------------------------------------------------------------


async def open_copy(path: Path) -> aiosqlite.Connection:
    """Open a copied database read-only for offline verification or export (no migrations)."""
    resolved = await asyncio.to_thread(_existing_file, Path(path))
    conn = await aiosqlite.connect(f"file:{resolved}?mode=ro", uri=True, isolation_level=None)
    try:
        await conn.execute("PRAGMA query_only = ON")
        async with conn.execute(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'audit_entries'"
        ) as cursor:
            row = await cursor.fetchone()
    except Exception:
        await conn.close()
        raise StorageError(f"{path}: not a SemaFore database", code="storage_not_found") from None
    if not row or row[0] != 1:
        await conn.close()
        raise StorageError(f"{path}: has no audit log", code="storage_not_found")
    return conn


def _existing_file(path: Path) -> Path:
    if not path.is_file():
        raise StorageError(f"{path}: no such database file", code="storage_not_found")
    return path.resolve()
