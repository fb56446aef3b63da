"""Sessions with one remote device (s7.3, s7.4 step 8) as immutable, serialisable values."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from .address import DeviceAddress
from .constants import AD_LEN, ARCHIVED_SESSION_RETENTION_MS, KEY_LEN, MAX_ARCHIVED_SESSIONS
from .encoding import b64u_encode, dump_json, get_bytes, get_int, load_json_object, require_object
from .envelope import PreKeyBlock
from .errors import DecodeError
from .keys import DHPublicKey, SigningPublicKey
from .ratchet import RatchetState

_MAX_MS = 2**63 - 1


@dataclass(frozen=True)
class Session:
    """One X3DH run plus its Double Ratchet.

    `(initiator_ik, base_key)` = `(IK_A, EK_A)` names the X3DH run (s7.4 step 4).
    `pending_prekey` is set on the initiator until its first successful decryption (s7.3).
    `archived_ms` is set while the session is kept for decryption only.
    """

    ratchet: RatchetState
    associated_data: bytes
    remote_ik: DHPublicKey
    remote_isk: SigningPublicKey
    initiator_ik: DHPublicKey
    base_key: DHPublicKey
    pending_prekey: PreKeyBlock | None = None
    archived_ms: int | None = None

    def __post_init__(self) -> None:
        if len(self.associated_data) != AD_LEN:
            raise DecodeError("invalid associated data")

    def is_run(self, ik: DHPublicKey, ek: DHPublicKey) -> bool:
        return self.initiator_ik == ik and self.base_key == ek

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "ratchet": b64u_encode(self.ratchet.to_bytes()),
            "ad": b64u_encode(self.associated_data),
            "remote_ik": b64u_encode(self.remote_ik.data),
            "remote_isk": b64u_encode(self.remote_isk.data),
            "initiator_ik": b64u_encode(self.initiator_ik.data),
            "base_key": b64u_encode(self.base_key.data),
        }
        if self.pending_prekey is not None:
            out["pending_prekey"] = self.pending_prekey.to_dict()
        if self.archived_ms is not None:
            out["archived_ms"] = self.archived_ms
        return out

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any]) -> Session:
        obj = require_object(obj, "session")
        pending = obj.get("pending_prekey")
        return cls(
            ratchet=RatchetState.from_bytes(get_bytes(obj, "ratchet")),
            associated_data=get_bytes(obj, "ad", AD_LEN),
            remote_ik=DHPublicKey(get_bytes(obj, "remote_ik", KEY_LEN)),
            remote_isk=SigningPublicKey(get_bytes(obj, "remote_isk", KEY_LEN)),
            initiator_ik=DHPublicKey(get_bytes(obj, "initiator_ik", KEY_LEN)),
            base_key=DHPublicKey(get_bytes(obj, "base_key", KEY_LEN)),
            pending_prekey=PreKeyBlock.from_dict(pending) if pending is not None else None,
            archived_ms=get_int(obj, "archived_ms", hi=_MAX_MS, optional=True),
        )


@dataclass(frozen=True)
class SessionRecord:
    """All sessions with one remote device: the active one first, then decrypt-only ones.

    At most MAX_ARCHIVED_SESSIONS archived sessions, each for at most 30 days (s7.4 step 8).
    New messages go out on the most recently established or used session.
    """

    address: DeviceAddress
    active: Session | None = None
    archived: tuple[Session, ...] = ()  # most recently archived first

    def sessions(self) -> tuple[Session, ...]:
        return ((self.active,) if self.active else ()) + self.archived

    @property
    def is_empty(self) -> bool:
        return self.active is None and not self.archived

    def with_active(self, session: Session, now_ms: int, replaces: Session | None) -> SessionRecord:
        """Make `session` active; `replaces` (one of ours, or None for a new session) is dropped
        from the list, and the previous active session is archived."""
        archived = [s for s in self.archived if s is not replaces]
        if self.active is not None and self.active is not replaces:
            archived.insert(0, replace(self.active, archived_ms=now_ms))
        return SessionRecord(
            self.address,
            replace(session, archived_ms=None),
            tuple(archived[:MAX_ARCHIVED_SESSIONS]),
        )

    def with_replaced(self, old: Session, new: Session) -> SessionRecord:
        """Update one session in place (it keeps its position and archive time)."""
        if self.active is old:
            return replace(self, active=new)
        archived = tuple(
            replace(new, archived_ms=s.archived_ms) if s is old else s for s in self.archived
        )
        return replace(self, archived=archived)

    def archive_all(self, now_ms: int) -> SessionRecord:
        if self.active is None:
            return self
        archived = (replace(self.active, archived_ms=now_ms), *self.archived)
        return SessionRecord(self.address, None, archived[:MAX_ARCHIVED_SESSIONS])

    def expired(self, now_ms: int) -> SessionRecord:
        keep = tuple(
            s
            for s in self.archived
            if s.archived_ms is not None and now_ms - s.archived_ms < ARCHIVED_SESSION_RETENTION_MS
        )
        return self if keep == self.archived else replace(self, archived=keep)

    def to_dict(self) -> dict[str, Any]:
        return {
            "v": 1,
            "address": self.address.to_dict(),
            "active": self.active.to_dict() if self.active is not None else None,
            "archived": [s.to_dict() for s in self.archived],
        }

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any]) -> SessionRecord:
        obj = require_object(obj, "session record")
        archived = obj.get("archived")
        if obj.get("v") != 1 or not isinstance(archived, list):
            raise DecodeError("invalid session record")
        if len(archived) > MAX_ARCHIVED_SESSIONS:
            raise DecodeError("too many archived sessions")
        active = obj.get("active")
        return cls(
            DeviceAddress.from_dict(obj.get("address")),
            Session.from_dict(active) if active is not None else None,
            tuple(Session.from_dict(s) for s in archived),
        )

    def to_bytes(self) -> bytes:
        return dump_json(self.to_dict())

    @classmethod
    def from_bytes(cls, data: bytes) -> SessionRecord:
        return cls.from_dict(load_json_object(data))
