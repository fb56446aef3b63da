"""Sans-IO device-side session manager (s5, s7.2 - s7.4, s8.3).

Holds this device's keys, one `SessionRecord` per remote device and the known identities.
Every public method is transactional: it computes new immutable values and commits them only
when it succeeds, so a failure leaves all state exactly as it was.

Persistence: after each call, `take_changes()` names the records that changed. Write them
(`device.to_bytes()`, `session_record(a).to_bytes()`, `identities.contact(u).to_bytes()`) in
one transaction before sending the envelope or acknowledging the received message (s13).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from . import x3dh
from .address import DeviceAddress
from .binding import verify_identity_binding
from .bundle import Bundle
from .constants import OPK_BATCH
from .encoding import dump_json, load_json_object, require_object
from .envelope import Envelope, PreKeyBlock
from .errors import (
    DecodeError,
    DecryptionFailed,
    DuplicateMessage,
    NoSession,
    ProtocolError,
    UntrustedIdentity,
)
from .identity import ContactIdentity, IdentityStatus, IdentityStore
from .keys import DHKeyPair, GenerateDH
from .padding import pad, unpad
from .prekeys import DeviceKeys, OneTimePreKey, SignedPreKey
from .ratchet import RatchetState
from .session import Session, SessionRecord


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True)
class StateChanges:
    """What changed since the last `take_changes()`: persist these together, atomically."""

    device_keys: bool = False
    sessions: frozenset[DeviceAddress] = frozenset()  # a missing record means: delete it
    contacts: frozenset[str] = frozenset()

    def __bool__(self) -> bool:
        return self.device_keys or bool(self.sessions) or bool(self.contacts)


@dataclass(frozen=True)
class ReceivedMessage:
    sender: DeviceAddress
    content: bytes = field(repr=False)  # unpadded content JSON (see content.Content)
    identity: IdentityStatus  # s8.3 outcome for pre-key messages; UNCHANGED otherwise
    new_session: bool


class SessionManager:
    def __init__(
        self,
        device: DeviceKeys,
        *,
        sessions: Iterable[SessionRecord] = (),
        contacts: Iterable[ContactIdentity] = (),
        generate_dh: GenerateDH = X25519PrivateKey.generate,
        now_ms: Callable[[], int] = wall_clock_ms,
    ) -> None:
        self._device = device
        self._sessions = {r.address: r for r in sessions if not r.is_empty}
        self._identities = IdentityStore(contacts)
        self._generate_dh = generate_dh
        self._now_ms = now_ms
        self._changed_device = False
        self._changed_sessions: set[DeviceAddress] = set()
        self._changed_contacts: set[str] = set()

    # --- read access ---------------------------------------------------------------------

    @property
    def address(self) -> DeviceAddress:
        return self._device.address

    @property
    def device(self) -> DeviceKeys:
        return self._device

    @property
    def identities(self) -> IdentityStore:
        """Read access; change identities through the manager so changes are tracked."""
        return self._identities

    def session_record(self, address: DeviceAddress) -> SessionRecord | None:
        return self._sessions.get(address)

    def session_records(self) -> tuple[SessionRecord, ...]:
        return tuple(self._sessions[a] for a in sorted(self._sessions))

    def has_session(self, address: DeviceAddress) -> bool:
        record = self._sessions.get(address)
        return record is not None and record.active is not None

    def take_changes(self) -> StateChanges:
        changes = StateChanges(
            self._changed_device,
            frozenset(self._changed_sessions),
            frozenset(self._changed_contacts),
        )
        self._changed_device = False
        self._changed_sessions.clear()
        self._changed_contacts.clear()
        return changes

    # --- commit helpers (the only places that mutate) ------------------------------------

    def _commit_device(self, device: DeviceKeys) -> None:
        if device is not self._device:
            self._device = device
            self._changed_device = True

    def _commit_record(self, record: SessionRecord) -> None:
        if record.is_empty:
            self._sessions.pop(record.address, None)
        else:
            self._sessions[record.address] = record
        self._changed_sessions.add(record.address)

    def _commit_contact(self, contact: ContactIdentity) -> None:
        if self._identities.contact(contact.user_id) != contact:
            self._identities.put(contact)
            self._changed_contacts.add(contact.user_id)

    def _record(self, address: DeviceAddress) -> SessionRecord:
        return self._sessions.get(address) or SessionRecord(address)

    def _is_current_identity(self, address: DeviceAddress, session: Session) -> bool:
        known = self._identities.known_device(address)
        return known is not None and (known.isk, known.ik) == (
            session.remote_isk,
            session.remote_ik,
        )

    # --- initiator (s5) ------------------------------------------------------------------

    def start_session(self, bundle: Bundle, expected: DeviceAddress) -> IdentityStatus:
        """Verify a fetched bundle, run X3DH and make the new session active.

        Returns the s8.3 status. A BLOCKED identity still gets a session, but `encrypt`
        refuses to use it until the user confirms (`confirm_identity`).
        """
        if expected == self.address:
            raise DecodeError("cannot start a session with this device")
        bundle.verify(expected)
        status, contact = self._identities.assess(
            expected, bundle.identity_signing_key, bundle.identity_key
        )
        own = self._device.identity
        ek = DHKeyPair.generate(self._generate_dh)
        result = x3dh.initiate(
            own.dh,
            ek,
            self.address.device_id,
            bundle.identity_key,
            bundle.signed_pre_key,
            bundle.one_time_pre_key,
            expected.device_id,
        )
        ratchet = RatchetState.initiator(
            result.session_secret, bundle.signed_pre_key, self._generate_dh
        )
        prekey = PreKeyBlock(
            ik=own.ik,
            isk=own.isk,
            ik_sig=self._device.binding_signature,
            ek=ek.public,
            spk_id=bundle.signed_pre_key_id,
            opk_id=bundle.one_time_pre_key_id,
        )
        session = Session(
            ratchet,
            result.associated_data,
            remote_ik=bundle.identity_key,
            remote_isk=bundle.identity_signing_key,
            initiator_ik=own.ik,
            base_key=ek.public,
            pending_prekey=prekey,
        )
        self._commit_record(self._record(expected).with_active(session, self._now_ms(), None))
        self._commit_contact(contact)
        return status

    # --- sending -------------------------------------------------------------------------

    def _seal(self, to: DeviceAddress, content: bytes) -> tuple[SessionRecord, Envelope]:
        record = self._sessions.get(to)
        if record is None or record.active is None:
            raise NoSession("no session with this device")
        session = record.active
        if not self._identities.may_send(to) or not self._is_current_identity(to, session):
            raise UntrustedIdentity("identity change not confirmed")
        ratchet, header, ciphertext = session.ratchet.encrypt(pad(content), session.associated_data)
        updated = replace(record, active=replace(session, ratchet=ratchet))
        return updated, Envelope(self.address, to, header, ciphertext, session.pending_prekey)

    def encrypt(self, to: DeviceAddress, content: bytes) -> Envelope:
        """Pad and encrypt `content` for one device on its active session."""
        record, envelope = self._seal(to, content)
        self._commit_record(record)
        return envelope

    def encrypt_many(self, recipients: Sequence[DeviceAddress], content: bytes) -> list[Envelope]:
        """The s7.2 fan-out: one envelope per device, all or nothing."""
        if len(set(recipients)) != len(recipients):
            raise DecodeError("duplicate recipient")
        sealed = [self._seal(to, content) for to in recipients]
        for record, _ in sealed:
            self._commit_record(record)
        return [envelope for _, envelope in sealed]

    # --- receiving (s7.4) ----------------------------------------------------------------

    def decrypt(self, envelope: Envelope) -> ReceivedMessage:
        """Decrypt one envelope addressed to this device; raises ProtocolError on failure."""
        sender = envelope.sender
        if envelope.recipient != self.address or sender == self.address:
            raise DecodeError("envelope is not addressed to this device")
        if envelope.prekey is None:
            return self._decrypt_existing(envelope, self._record(sender).sessions())
        pk = envelope.prekey
        verify_identity_binding(pk.isk, pk.ik, sender, pk.ik_sig)  # step 2
        status, contact = self._identities.assess(sender, pk.isk, pk.ik)  # step 3
        runs = [s for s in self._record(sender).sessions() if s.is_run(pk.ik, pk.ek)]
        if runs:  # step 4: a later envelope of a run we already have
            if (runs[0].remote_ik, runs[0].remote_isk) != (pk.ik, pk.isk):
                raise DecryptionFailed("decryption failed")
            return self._decrypt_existing(envelope, runs)
        return self._decrypt_new(envelope, pk, status, contact)  # steps 5-8

    def _open(self, session: Session, envelope: Envelope) -> tuple[Session, bytes]:
        ratchet, padded = session.ratchet.decrypt(
            envelope.header, envelope.ciphertext, session.associated_data, self._generate_dh
        )
        content = unpad(padded)
        return replace(session, ratchet=ratchet, pending_prekey=None), content

    def _decrypt_existing(
        self, envelope: Envelope, candidates: Sequence[Session]
    ) -> ReceivedMessage:
        if not candidates:
            raise NoSession("no session with this device")
        errors: list[ProtocolError] = []
        for session in candidates:
            try:
                updated, content = self._open(session, envelope)
            except ProtocolError as exc:
                errors.append(exc)
                continue
            record = self._record(envelope.sender)
            if self._is_current_identity(envelope.sender, session):
                record = record.with_active(updated, self._now_ms(), session)
            else:  # a late message for a replaced identity: decrypt, but never send on it
                record = record.with_replaced(session, updated)
            self._commit_record(record)
            return ReceivedMessage(envelope.sender, content, IdentityStatus.UNCHANGED, False)
        # Report a duplicate as such (callers may ack and drop it); otherwise the first error.
        raise next((e for e in errors if isinstance(e, DuplicateMessage)), errors[0])

    def _decrypt_new(
        self,
        envelope: Envelope,
        pk: PreKeyBlock,
        status: IdentityStatus,
        contact: ContactIdentity,
    ) -> ReceivedMessage:
        device = self._device
        spk = device.signed_pre_key(pk.spk_id)
        opk = device.one_time_pre_key(pk.opk_id) if pk.opk_id is not None else None
        if (pk.spk_id, pk.ek.data) in device.seen_prekeys:
            raise DuplicateMessage("pre-key message already processed")
        result = x3dh.respond(
            device.identity.dh,
            spk.key_pair,
            opk.key_pair if opk else None,
            self.address.device_id,
            pk.ik,
            pk.ek,
            envelope.sender.device_id,
        )
        session = Session(
            RatchetState.responder(result.session_secret, spk.key_pair),
            result.associated_data,
            remote_ik=pk.ik,
            remote_isk=pk.isk,
            initiator_ik=pk.ik,
            base_key=pk.ek,
        )
        session, content = self._open(session, envelope)
        # Step 7, only now: consume the OPK, record (spk_id, ek), store the session.
        self._commit_device(device.after_prekey_message(pk.spk_id, pk.ek, pk.opk_id))
        record = self._record(envelope.sender)
        self._commit_record(record.with_active(session, self._now_ms(), None))
        self._commit_contact(contact)
        return ReceivedMessage(envelope.sender, content, status, True)

    # --- own keys --------------------------------------------------------------------------

    def generate_one_time_pre_keys(self, count: int = OPK_BATCH) -> tuple[OneTimePreKey, ...]:
        device, new = self._device.with_new_one_time_pre_keys(count, self._generate_dh)
        self._commit_device(device)
        return new

    def rotate_signed_pre_key(self) -> SignedPreKey:
        device, new = self._device.with_rotated_signed_pre_key(self._now_ms(), self._generate_dh)
        self._commit_device(device)
        return new

    # --- identities (s8.3) and device list changes (s7.2) -----------------------------------

    def confirm_identity(self, address: DeviceAddress) -> None:
        self._identities.confirm(address)
        self._changed_contacts.add(address.user_id)

    def set_verified(self, user_id: str, verified: bool = True) -> None:
        self._identities.set_verified(user_id, verified)
        self._changed_contacts.add(user_id)

    def remove_device(self, address: DeviceAddress) -> None:
        """The device left its user's list: archive its sessions, forget its identity."""
        record = self._sessions.get(address)
        if record is not None:
            self._commit_record(record.archive_all(self._now_ms()))
        if self._identities.remove_device(address) is not None:
            self._changed_contacts.add(address.user_id)

    def expire(self) -> None:
        """Drop archived sessions and retired SPKs past their retention."""
        now = self._now_ms()
        for record in list(self._sessions.values()):
            expired = record.expired(now)
            if expired is not record:
                self._commit_record(expired)
        self._commit_device(self._device.expired(now))

    # --- whole-state snapshot --------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "v": 1,
            "device": self._device.to_dict(),
            "sessions": [r.to_dict() for r in self.session_records()],
            "contacts": [c.to_dict() for c in self._identities.contacts()],
        }

    def to_bytes(self) -> bytes:
        return dump_json(self.to_dict())

    @classmethod
    def from_dict(
        cls,
        obj: Mapping[str, Any],
        *,
        generate_dh: GenerateDH = X25519PrivateKey.generate,
        now_ms: Callable[[], int] = wall_clock_ms,
    ) -> SessionManager:
        obj = require_object(obj, "session manager")
        sessions, contacts = obj.get("sessions"), obj.get("contacts")
        if obj.get("v") != 1 or not isinstance(sessions, list) or not isinstance(contacts, list):
            raise DecodeError("invalid session manager state")
        return cls(
            DeviceKeys.from_dict(obj.get("device")),
            sessions=[SessionRecord.from_dict(r) for r in sessions],
            contacts=[ContactIdentity.from_dict(c) for c in contacts],
            generate_dh=generate_dh,
            now_ms=now_ms,
        )

    @classmethod
    def from_bytes(
        cls,
        data: bytes,
        *,
        generate_dh: GenerateDH = X25519PrivateKey.generate,
        now_ms: Callable[[], int] = wall_clock_ms,
    ) -> SessionManager:
        return cls.from_dict(load_json_object(data), generate_dh=generate_dh, now_ms=now_ms)
