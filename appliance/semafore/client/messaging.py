"""Sending and receiving over the device state, with the crash-safety rule of PROTOCOL s6.4/s13.

Send: encrypt -> persist the new ratchet states and the outgoing request in ONE commit -> only
then hand the request to the network. A retry resends the stored ciphertexts; a 409 keeps the
stored envelopes of devices still listed and encrypts only for devices that are new.

Receive: decrypt on immutable copies -> persist the new state and the decrypted message in ONE
commit -> only then may the caller ack the server. A redelivered message is recognised (server
id, or the ratchet's duplicate check) and acked without a second copy.

Synchronous and network-free: semafore.client.device drives it with the API client.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from semafore.client.device_state import DeviceState
from semafore.client.errors import ClientError, UntrustedIdentity
from semafore.client.groups import Groups
from semafore.client.messages import Messages, OutboxEntry
from semafore.protocol import (
    AttachmentPointer,
    Bundle,
    Content,
    DecodeError,
    DeviceAddress,
    DuplicateMessage,
    Envelope,
    GroupRef,
    ProtocolError,
    SendRequest,
)
from semafore.protocol.encoding import dump_json, load_json_object


class Undecryptable(ClientError):
    """An envelope that can never be decrypted here (forged, corrupted, unknown pre key)."""

    code = "undecryptable"


@dataclass(frozen=True)
class Received:
    seq: int
    sender: DeviceAddress
    content: Content
    extra: Mapping[str, Any]  # unknown content members we use: "to" (1:1), group fields


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def new_content(
    t: str,
    body: str | None = None,
    *,
    group: GroupRef | None = None,
    att: AttachmentPointer | None = None,
    **extra: Any,
) -> tuple[Content, bytes]:
    """A content object and its bytes. `extra` members (e.g. `to`) ride along in the JSON;
    receivers ignore members they do not know (PROTOCOL s3)."""
    content = Content(t=t, mid=str(uuid.uuid4()), ts=now_ms(), body=body, att=att, g=group)
    return content, dump_json({**content.to_dict(), **extra})


class Messenger:
    def __init__(self, state: DeviceState) -> None:
        self.state = state
        self.messages = Messages(state.ks)
        self.groups = Groups(state.ks)

    # -- sending ----------------------------------------------------------------------------

    def missing_sessions(self, targets: Iterable[DeviceAddress]) -> list[DeviceAddress]:
        return [a for a in targets if not self.state.manager.has_session(a)]

    def apply_device_list(
        self, user_id: str, listed: Mapping[int, tuple[bytes, bytes]]
    ) -> list[DeviceAddress]:
        """Bring sessions and identities in line with a user's current device list.

        `listed` maps device_id -> (identity_signing_key, identity_key) as the server lists
        them. Devices that left get their sessions archived; devices whose keys differ from the
        session's get a fresh session (the caller fetches bundles for the returned addresses).
        """
        m = self.state.manager
        own = self.state.address
        needs_bundle = []
        known = set()
        for record in m.session_records():
            if record.address.user_id == user_id:
                known.add(record.address.device_id)
        contact = m.identities.contact(user_id)
        if contact is not None:
            known |= set(contact.devices)
        with self.state.step() as m:
            for device_id in sorted(known - set(listed)):
                m.remove_device(DeviceAddress(user_id, device_id))
                self.state.add_notice(
                    user_id, f"{user_id} removed device {device_id}; the safety number changed"
                )
        for device_id, (isk, ik) in sorted(listed.items()):
            address = DeviceAddress(user_id, device_id)
            if address == own:
                continue
            record = m.session_record(address)
            active = record.active if record else None
            if active is None or (active.remote_isk.data, active.remote_ik.data) != (isk, ik):
                needs_bundle.append(address)
        return needs_bundle

    def start_sessions(self, bundles: Mapping[DeviceAddress, Bundle]) -> None:
        """Verify bundles and run X3DH; identity outcomes are recorded and noticed (s8.3).

        Devices of a user seen for the first time in this batch are all first use: no
        "new device" notice for each after the first.
        """
        with self.state.step() as m:
            first_seen = {a.user_id for a in bundles if m.identities.contact(a.user_id) is None}
            for address, bundle in bundles.items():
                status = m.start_session(bundle, address)
                if address.user_id not in first_seen:
                    self.state.notify(status, address)

    def blocked(self, targets: Iterable[DeviceAddress]) -> list[DeviceAddress]:
        ids = self.state.manager.identities
        return [a for a in targets if not ids.may_send(a)]

    def _raise_if_blocked(self, targets: Iterable[DeviceAddress]) -> None:
        blocked = self.blocked(targets)
        if blocked:
            users = sorted({a.user_id for a in blocked})
            raise UntrustedIdentity(
                f"not sent: the identity of {', '.join(users)} changed since you verified it;"
                f" compare the safety number, then `semafore-client verify {users[0]}`"
                f" (or `semafore-client trust {users[0]}`)"
            )

    def prepare(
        self,
        content: Content,
        content_bytes: bytes,
        targets: Sequence[DeviceAddress],
        also: Callable[[], None] | None = None,
    ) -> SendRequest:
        """Encrypt for every target and store the request, in one commit (with whatever `also`
        writes). Nothing is sent."""
        self._raise_if_blocked(targets)
        with self.state.step() as m:
            envelopes = m.encrypt_many(list(targets), content_bytes)
            request = SendRequest(content.mid, tuple(envelopes))
            self.messages.put_outgoing(content_bytes, request)
            if also is not None:
                also()
        return request

    def repair(self, msg_id: str, targets: Sequence[DeviceAddress]) -> SendRequest:
        """After a 409: keep stored envelopes for listed devices, encrypt only for new ones."""
        entry = self._outgoing(msg_id)
        keep = [e for e in entry.request.envelopes if e.recipient in set(targets)]
        have = {e.recipient for e in keep}
        missing = [a for a in targets if a not in have]
        self._raise_if_blocked(missing)
        with self.state.step() as m:
            new = m.encrypt_many(missing, entry.content_bytes) if missing else []
            request = SendRequest(msg_id, (*keep, *new))
            self.messages.put_outgoing(entry.content_bytes, request)
        return request

    def mark_sent(self, msg_id: str) -> None:
        with self.state.ks.transaction():
            self.messages.mark_sent(msg_id)

    def _outgoing(self, msg_id: str) -> OutboxEntry:
        entry = self.messages.outgoing(msg_id)
        if entry is None:
            raise ClientError(f"no stored message {msg_id}")
        return entry

    # -- receiving --------------------------------------------------------------------------

    def receive(self, envelope_obj: Mapping[str, Any], server_id: str | None) -> Received | None:
        """Decrypt and store one envelope. None means: already have it (ack it again).

        Raises Undecryptable for envelopes that can never be decrypted (ack and report).
        """
        if server_id is not None and self.messages.has_server_id(server_id):
            return None
        try:
            envelope = Envelope.from_dict(envelope_obj)
        except (DecodeError, ProtocolError):
            raise Undecryptable("malformed envelope dropped") from None
        try:
            with self.state.step() as m:
                result = m.decrypt(envelope)
                self.state.notify(result.identity, result.sender)
                try:
                    raw = load_json_object(result.content)
                    content = Content.from_dict(raw)
                except DecodeError:
                    return None  # the ratchet step stands; there is nothing to show
                seq = self.messages.add_incoming(
                    server_id, result.sender, content.mid, result.content
                )
                self.groups.apply_incoming(result.sender, content, raw, own=self.state.address)
        except DuplicateMessage:
            return None
        except ProtocolError:
            raise Undecryptable(
                f"a message from {envelope.sender} could not be decrypted"
            ) from None
        return Received(seq, result.sender, content, raw)
