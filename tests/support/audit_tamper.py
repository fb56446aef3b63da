"""Tampering with a *copy* of an appliance database, the way an intruder with file access
would: the append-only triggers are dropped first, then entries are edited, deleted, inserted,
reordered or rewritten with recomputed hashes, or a checkpoint is forged."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

from semafore.storage.audit_chain import entry_hash

TRIGGERS = (
    "audit_entries_no_update", "audit_entries_no_delete", "audit_entries_append_at_head",
    "audit_checkpoints_no_update", "audit_checkpoints_no_delete",
    "audit_checkpoint_keys_no_update", "audit_checkpoint_keys_no_delete",
)


def copy_database(source: Path, target: Path) -> Path:
    """A consistent copy of a live database (SQLite's online backup)."""
    with contextlib.closing(sqlite3.connect(source)) as src, \
            contextlib.closing(sqlite3.connect(target)) as dst:
        src.backup(dst)
    return target


@contextlib.contextmanager
def tampering(path: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        for name in TRIGGERS:
            conn.execute(f"DROP TRIGGER IF EXISTS {name}")
        conn.execute("BEGIN")
        yield conn
        conn.execute("COMMIT")
    finally:
        conn.close()


def edit(seq: int) -> Callable[[sqlite3.Connection], None]:
    def run(conn: sqlite3.Connection) -> None:
        conn.execute("UPDATE audit_entries SET actor = 'member:u_intruder' WHERE seq = ?", (seq,))
    return run


def delete(seq: int) -> Callable[[sqlite3.Connection], None]:
    def run(conn: sqlite3.Connection) -> None:
        conn.execute("DELETE FROM audit_entries WHERE seq = ?", (seq,))
    return run


def insert(seq: int) -> Callable[[sqlite3.Connection], None]:
    """A well-formed entry slipped in at ``seq``, hashed and linked to its predecessor; the
    later entries are renumbered to make room."""
    def run(conn: sqlite3.Connection) -> None:
        rows = conn.execute("SELECT seq FROM audit_entries WHERE seq >= ? ORDER BY seq DESC",
                            (seq,)).fetchall()
        for (old,) in rows:
            conn.execute("UPDATE audit_entries SET seq = ? WHERE seq = ?", (old + 1, old))
        prev = conn.execute("SELECT hash FROM audit_entries WHERE seq = ?", (seq - 1,)
                            ).fetchone()[0]
        fields = dict(seq=seq, at_ms=1_800_000_000_000, prev_hash=bytes(prev), org_id=None,
                      actor="operator", event="member.added", target="member:u_ghost",
                      data=None)
        conn.execute(
            "INSERT INTO audit_entries (seq, at_ms, org_id, actor, event, target, data,"
            " prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (seq, fields["at_ms"], None, "operator", "member.added", "member:u_ghost", None,
             fields["prev_hash"], entry_hash(**fields)),
        )
    return run


def reorder(first: int, second: int) -> Callable[[sqlite3.Connection], None]:
    def run(conn: sqlite3.Connection) -> None:
        conn.execute("UPDATE audit_entries SET seq = -1 WHERE seq = ?", (first,))
        conn.execute("UPDATE audit_entries SET seq = ? WHERE seq = ?", (first, second))
        conn.execute("UPDATE audit_entries SET seq = ? WHERE seq = -1", (second,))
    return run


def rewrite_from(seq: int) -> Callable[[sqlite3.Connection], None]:
    """Edit entry ``seq`` and recompute every hash from there on: the chain is consistent
    again, and only a signed checkpoint can tell."""
    def run(conn: sqlite3.Connection) -> None:
        conn.execute("UPDATE audit_entries SET actor = 'member:u_intruder' WHERE seq = ?", (seq,))
        prev = bytes(conn.execute("SELECT hash FROM audit_entries WHERE seq = ?",
                                  (seq - 1,)).fetchone()[0]) if seq > 1 else bytes(32)
        rows = conn.execute(
            "SELECT seq, at_ms, org_id, actor, event, target, data FROM audit_entries"
            " WHERE seq >= ? ORDER BY seq", (seq,)).fetchall()
        for row in rows:
            digest = entry_hash(seq=row[0], at_ms=row[1], prev_hash=prev, org_id=row[2],
                                actor=row[3], event=row[4], target=row[5], data=row[6])
            conn.execute("UPDATE audit_entries SET prev_hash = ?, hash = ? WHERE seq = ?",
                         (prev, digest, row[0]))
            prev = digest
    return run


def truncate_after(seq: int) -> Callable[[sqlite3.Connection], None]:
    def run(conn: sqlite3.Connection) -> None:
        conn.execute("DELETE FROM audit_entries WHERE seq > ?", (seq,))
    return run


def forge_checkpoint_signature(conn: sqlite3.Connection) -> None:
    conn.execute("UPDATE audit_checkpoints SET tree_size = tree_size - 1"
                 " WHERE id = (SELECT max(id) FROM audit_checkpoints)")


def flip_signature_bit(conn: sqlite3.Connection) -> None:
    sig = bytearray(conn.execute("SELECT signature FROM audit_checkpoints ORDER BY id LIMIT 1"
                                 ).fetchone()[0])
    sig[0] ^= 1
    conn.execute("UPDATE audit_checkpoints SET signature = ? WHERE id ="
                 " (SELECT min(id) FROM audit_checkpoints)", (bytes(sig),))
