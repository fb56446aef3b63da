"""The audit log's byte format: entry hashes, checkpoint messages and the chain verifier.

Pure functions, no I/O: the same code links entries when they are written
(:mod:`semafore.storage.audit`) and checks a copied database offline (``semafore audit
verify``). docs/audit.md defines the encoding; a change here is a new version of the domain
strings, never an edit of v1.

Entry hash (SHA-256)::

    "semafore/audit-entry/v1" 0x00
    u64be(seq) i64be(at_ms) prev_hash[32]
    text(org_id) text(actor) text(event) text(target) text(data)

Checkpoint message (Ed25519)::

    "semafore/audit-checkpoint/v1" 0x00
    u64be(tree_size) head_hash[32] i64be(at_ms) text(key_id)

where ``text(None) = 0x00`` and ``text(s) = 0x01 u32be(len(utf8(s))) utf8(s)``. The genesis
``prev_hash`` (and the head of an empty log) is 32 zero bytes.
"""

from __future__ import annotations

import hashlib
import json
import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

ENTRY_DOMAIN = b"semafore/audit-entry/v1\x00"
CHECKPOINT_DOMAIN = b"semafore/audit-checkpoint/v1\x00"
GENESIS_HASH = bytes(32)
HASH_BYTES = 32
RECENT_HASHES = 4096  # how far back the verifier looks to explain a broken link

EVENT_NAME = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
# Keys that must never appear in an entry's data, at any depth (codes, tokens, numbers).
FORBIDDEN_DATA_KEYS = frozenset(
    {"code", "otp", "token", "secret", "password", "phone", "phone_number", "totp",
     "recovery_code", "refresh_token", "access_token", "content", "ciphertext"}
)
_E164_LIKE = re.compile(r"\+[1-9]\d{6,14}")


@dataclass(frozen=True, slots=True)
class AuditEntry:
    seq: int
    at_ms: int
    org_id: str | None
    actor: str
    event: str
    target: str | None
    data: str | None  # canonical JSON text, exactly as hashed
    prev_hash: bytes
    hash: bytes

    @property
    def data_dict(self) -> dict[str, Any]:
        return json.loads(self.data) if self.data else {}


@dataclass(frozen=True, slots=True)
class Checkpoint:
    id: int
    tree_size: int
    head_hash: bytes
    at_ms: int
    key_id: str
    signature: bytes


def _text(value: str | None) -> bytes:
    if value is None:
        return b"\x00"
    raw = value.encode("utf-8")
    return b"\x01" + struct.pack(">I", len(raw)) + raw


def entry_bytes(
    *, seq: int, at_ms: int, prev_hash: bytes, org_id: str | None, actor: str, event: str,
    target: str | None, data: str | None,
) -> bytes:
    if len(prev_hash) != HASH_BYTES:
        raise ValueError("prev_hash must be 32 bytes")
    return b"".join((
        ENTRY_DOMAIN, struct.pack(">Qq", seq, at_ms), prev_hash,
        _text(org_id), _text(actor), _text(event), _text(target), _text(data),
    ))


def entry_hash(**fields: Any) -> bytes:
    """SHA-256 of :func:`entry_bytes` (same keyword arguments)."""
    return hashlib.sha256(entry_bytes(**fields)).digest()


def hash_of(entry: AuditEntry) -> bytes:
    """The hash ``entry`` should carry, recomputed from its fields."""
    return entry_hash(
        seq=entry.seq, at_ms=entry.at_ms, prev_hash=entry.prev_hash, org_id=entry.org_id,
        actor=entry.actor, event=entry.event, target=entry.target, data=entry.data,
    )


def checkpoint_message(*, tree_size: int, head_hash: bytes, at_ms: int, key_id: str) -> bytes:
    if len(head_hash) != HASH_BYTES:
        raise ValueError("head_hash must be 32 bytes")
    return b"".join((
        CHECKPOINT_DOMAIN, struct.pack(">Q", tree_size), head_hash, struct.pack(">q", at_ms),
        _text(key_id),
    ))


def key_id_for(public_key: bytes) -> str:
    """A checkpoint key's id: the first 16 hex digits of SHA-256 of its raw 32 bytes."""
    return hashlib.sha256(public_key).hexdigest()[:16]


def to_ms(at: float) -> int:
    return round(at * 1000)


def canonical_data(data: Mapping[str, Any] | None) -> str | None:
    """The JSON text stored and hashed for ``data``; refuses anything that looks secret."""
    if not data:
        return None
    _check_data(data, "data")
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                      allow_nan=False)


def _check_data(value: Any, where: str) -> None:
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError(f"{where}: keys must be strings")
            if key.lower() in FORBIDDEN_DATA_KEYS:
                raise ValueError(f"{where}.{key}: never recorded in the audit log")
            _check_data(item, f"{where}.{key}")
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _check_data(item, f"{where}[{index}]")
    elif isinstance(value, str):
        if _E164_LIKE.fullmatch(value.replace(" ", "")):
            raise ValueError(f"{where}: looks like a phone number; never recorded in clear")
    elif value is not None and not isinstance(value, bool | int | float):
        raise ValueError(f"{where}: only JSON values can be recorded")


# -- verification -----------------------------------------------------------------------------


@dataclass(slots=True)
class VerifyReport:
    """What :class:`ChainVerifier` found. ``first_bad_seq`` names the first bad entry."""

    ok: bool = True
    entries: int = 0
    head_hash: bytes = GENESIS_HASH
    checkpoints: int = 0
    latest_checkpoint: Checkpoint | None = None
    first_bad_seq: int | None = None
    problem: str | None = None
    key_ids: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        cp = self.latest_checkpoint
        return {
            "ok": self.ok,
            "entries": self.entries,
            "head_hash": self.head_hash.hex(),
            "checkpoints": self.checkpoints,
            "first_bad_seq": self.first_bad_seq,
            "problem": self.problem,
            "key_ids": list(self.key_ids),
            "latest_checkpoint": None if cp is None else checkpoint_dict(cp),
        }


def checkpoint_dict(cp: Checkpoint) -> dict[str, Any]:
    return {
        "id": cp.id, "tree_size": cp.tree_size, "head_hash": cp.head_hash.hex(),
        "at_ms": cp.at_ms, "key_id": cp.key_id, "signature": cp.signature.hex(),
    }


class ChainVerifier:
    """Checks entries fed in ``seq`` order against each other and against signed checkpoints.

    Build it with every checkpoint and the public keys (``key_id -> raw 32 bytes``); if
    ``trusted_key_ids`` is given, checkpoints signed by any other key are refused. Feed entries
    with :meth:`add` until it returns False (a problem was found), then call :meth:`finish`.
    """

    def __init__(
        self, checkpoints: list[Checkpoint], keys: Mapping[str, bytes],
        trusted_key_ids: set[str] | None = None,
    ) -> None:
        self.report = VerifyReport(key_ids=sorted(keys))
        self._by_size: dict[int, list[Checkpoint]] = {}
        self._expected_seq = 1
        self._head = GENESIS_HASH
        self._recent: dict[bytes, int] = {}  # hash -> seq of the last RECENT_HASHES entries
        for cp in sorted(checkpoints, key=lambda c: c.id):
            problem = _checkpoint_signature_problem(cp, keys, trusted_key_ids)
            if problem is not None:
                self._fail(None, f"checkpoint {cp.id}: {problem}")
                return
            self._by_size.setdefault(cp.tree_size, []).append(cp)
            self.report.checkpoints += 1
            latest = self.report.latest_checkpoint
            if latest is None or cp.tree_size >= latest.tree_size:
                self.report.latest_checkpoint = cp
        self._check_checkpoints_at(0)

    def _fail(self, seq: int | None, problem: str) -> None:
        if self.report.ok:
            self.report.ok = False
            self.report.first_bad_seq = seq
            self.report.problem = problem

    def add(self, entry: AuditEntry) -> bool:
        if not self.report.ok:
            return False
        expected = self._expected_seq
        if entry.seq != expected:
            if entry.seq > expected:
                self._fail(expected, f"entry {expected} is missing (found entry {entry.seq} next)")
            else:
                self._fail(entry.seq, f"entry {entry.seq} is out of order")
            return False
        intact = hash_of(entry) == entry.hash
        if entry.prev_hash != self._head:
            self._fail(*self._link_problem(entry, intact))
            return False
        if not intact:
            self._fail(entry.seq, f"entry {entry.seq} was altered: its contents do not match "
                                  "its hash")
            return False
        self._head = entry.hash
        self._recent[entry.hash] = entry.seq
        if len(self._recent) > RECENT_HASHES:
            del self._recent[next(iter(self._recent))]
        self._expected_seq += 1
        self.report.entries = entry.seq
        self.report.head_hash = entry.hash
        return self._check_checkpoints_at(entry.seq)

    def _link_problem(self, entry: AuditEntry, intact: bool) -> tuple[int, str]:
        """Which entry is to blame when ``entry`` does not link to the one before it."""
        seq = entry.seq
        earlier = self._recent.get(entry.prev_hash)
        if earlier is not None and earlier < seq - 1:
            return earlier + 1, (f"entries {earlier + 1}..{seq - 1} were inserted: entry {seq} "
                                 f"links to entry {earlier}")
        if intact and seq > 1:
            return seq - 1, (f"entry {seq - 1} was altered and its hash recomputed: entry {seq} "
                             f"was linked to different contents")
        return seq, (f"entry {seq} does not link to the entry before it (altered, or an entry "
                     f"before it was removed)")

    def _check_checkpoints_at(self, size: int) -> bool:
        for cp in self._by_size.get(size, ()):
            if cp.head_hash != self._head:
                last_good = max((s for s in self._by_size if s < size), default=0)
                self._fail(size if size else None,
                           f"checkpoint {cp.id} signed a different head at entry {size}: "
                           f"entries {last_good + 1}..{size} were rewritten")
                return False
        return self.report.ok

    def finish(self) -> VerifyReport:
        if self.report.ok:
            size = self.report.entries
            longer = [cp for cps in self._by_size.values() for cp in cps if cp.tree_size > size]
            if longer:
                cp = min(longer, key=lambda c: c.tree_size)
                self._fail(size + 1, f"entry {size + 1} is missing: checkpoint {cp.id} signed "
                                     f"{cp.tree_size} entries but the log ends at {size}")
        return self.report


def _checkpoint_signature_problem(
    cp: Checkpoint, keys: Mapping[str, bytes], trusted: set[str] | None
) -> str | None:
    public = keys.get(cp.key_id)
    if public is None:
        return f"signed by unknown key {cp.key_id}"
    if key_id_for(public) != cp.key_id:
        return f"key {cp.key_id} does not match its id"
    if trusted is not None and cp.key_id not in trusted:
        return f"signed by key {cp.key_id}, which is not a trusted key"
    message = checkpoint_message(
        tree_size=cp.tree_size, head_hash=cp.head_hash, at_ms=cp.at_ms, key_id=cp.key_id
    )
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(cp.signature, message)
    except (InvalidSignature, ValueError):
        return "signature is not valid"
    return None
