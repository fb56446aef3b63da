"""The device: fan-out sending, receiving with ack-after-commit, groups, pre key upkeep.

Drives semafore.client.messaging (synchronous, keystore-transactional) over a Relay.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from semafore.client.device_state import DeviceState
from semafore.client.errors import (
    ClientError,
    NotFound,
    StaleDevices,
    UnknownContact,
)
from semafore.client.groups import Group, update_extra
from semafore.client.messaging import Messenger, Received, Undecryptable, new_content
from semafore.client.relay import Delivery, ListedDevice, Relay
from semafore.protocol import (
    AttachmentPointer,
    Bundle,
    Content,
    DeviceAddress,
    InvalidSignature,
    ProtocolError,
    SafetyNumber,
    SendRequest,
    safety_number,
)
from semafore.protocol.binding import verify_identity_binding
from semafore.protocol.constants import OPK_BATCH, OPK_REFILL_BELOW
from semafore.protocol.content import ATTACHMENT, GROUP_UPDATE, TEXT
from semafore.protocol.keys import DHPublicKey, SigningPublicKey

log = logging.getLogger("semafore.client")

SEND_ATTEMPTS = 3
OPK_UPLOADED = "opk_uploaded_through"
SPK_UPLOADED = "spk_uploaded"


@dataclass(frozen=True)
class SendResult:
    msg_id: str
    devices: int  # envelopes in the request the server accepted


class Device:
    def __init__(self, state: DeviceState, relay: Relay) -> None:
        self.state = state
        self.relay = relay
        self.messenger = Messenger(state)
        self.warnings: list[str] = []  # one-line notes for the user (undecryptable, ...)

    @property
    def address(self) -> DeviceAddress:
        return self.state.address

    # -- sending ----------------------------------------------------------------------------

    async def send_text(self, user_id: str, text: str) -> SendResult:
        content, raw = new_content(TEXT, text, to=user_id)
        return await self._fanout([user_id], content.mid, content, raw)

    async def send_attachment(
        self,
        pointer: AttachmentPointer,
        caption: str | None = None,
        *,
        user_id: str | None = None,
        group: Group | None = None,
        stored: Callable[[], None] | None = None,
    ) -> SendResult:
        """The pointer of an uploaded blob, to a user or a group (PROTOCOL s9). `stored` runs
        inside the transaction that puts the message into the outbox."""
        if group is not None:
            content, raw = new_content(ATTACHMENT, caption, group=group.ref(), att=pointer)
            others = [u for u in group.members if u != self.address.user_id]
            return await self._fanout(others, content.mid, content, raw, stored)
        assert user_id is not None
        content, raw = new_content(ATTACHMENT, caption, att=pointer, to=user_id)
        return await self._fanout([user_id], content.mid, content, raw, stored)

    async def send_group(self, group: Group, text: str) -> SendResult:
        content, raw = new_content(TEXT, text, group=group.ref())
        others = [u for u in group.members if u != self.address.user_id]
        return await self._fanout(others, content.mid, content, raw)

    async def group_create(self, name: str, members: Sequence[str]) -> Group:
        group = self.messenger.groups.new(name, [self.address.user_id, *members])
        await self._publish_group(group, group.members)
        return group

    async def group_change(
        self, group: Group, add: Sequence[str] = (), remove: Sequence[str] = ()
    ) -> Group:
        members = [u for u in (*group.members, *add) if u not in set(remove)]
        updated = Group(group.id, group.name, max(group.rev, 0) + 1, tuple(dict.fromkeys(members)))
        # Removed members get the update too, so they learn they are out.
        await self._publish_group(updated, (*updated.members, *remove))
        return updated

    async def _publish_group(self, group: Group, audience: Sequence[str]) -> None:
        content, raw = new_content(GROUP_UPDATE, group=group.ref(), **update_extra(group))
        others = [u for u in dict.fromkeys(audience) if u != self.address.user_id]
        # Check every member can be reached before anything is stored or sent.
        for user_id in others:
            if not await self._listed(user_id):
                raise UnknownContact(f"{user_id} has no approved devices yet")
        with self.state.ks.transaction():
            self.messenger.groups.put(group)
        await self._fanout(others, content.mid, content, raw)

    async def _fanout(
        self,
        users: Sequence[str],
        msg_id: str,
        content: Content,
        raw: bytes,
        stored: Callable[[], None] | None = None,
    ) -> SendResult:
        """s7.2: every device of every user plus this user's other devices, in one request."""
        request: SendRequest | None = None
        for attempt in range(SEND_ATTEMPTS):
            targets = await self._current_targets(users)
            if request is None:
                request = self.messenger.prepare(content, raw, targets, stored)
            else:
                request = self.messenger.repair(msg_id, targets)
            if not request.envelopes:
                self.messenger.mark_sent(msg_id)
                return SendResult(msg_id, 0)
            try:
                await self.relay.send(request.to_dict())
            except StaleDevices:
                if attempt == SEND_ATTEMPTS - 1:
                    raise
                log.info("device lists changed while sending; refreshing")
                continue
            self.messenger.mark_sent(msg_id)
            return SendResult(msg_id, len(request.envelopes))
        raise AssertionError("unreachable")

    async def _current_targets(self, users: Sequence[str]) -> list[DeviceAddress]:
        own = self.address
        targets: list[DeviceAddress] = []
        for user_id in dict.fromkeys([*users, own.user_id]):
            listed = await self._listed(user_id)
            if user_id != own.user_id and not listed:
                raise UnknownContact(f"{user_id} has no approved devices yet")
            keys = {d.device_id: (d.identity_signing_key, d.identity_key) for d in listed}
            needs = self.messenger.apply_device_list(user_id, keys)
            bundles = {}
            for address in needs:
                bundle = Bundle.from_dict(await self.relay.bundle(address))
                bundles[address] = bundle
            if bundles:
                try:
                    self.messenger.start_sessions(bundles)
                except ProtocolError:
                    raise ClientError(
                        f"the server returned an invalid key bundle for {user_id}; not sent"
                    ) from None
            targets += [
                DeviceAddress(user_id, i) for i in sorted(keys) if DeviceAddress(user_id, i) != own
            ]
        return targets

    async def _listed(self, user_id: str) -> list[ListedDevice]:
        try:
            listed = list(await self.relay.devices(user_id))
        except NotFound:
            raise UnknownContact(f"unknown user {user_id}") from None
        for d in listed:
            try:
                verify_identity_binding(
                    SigningPublicKey(d.identity_signing_key),
                    DHPublicKey(d.identity_key),
                    DeviceAddress(user_id, d.device_id),
                    d.identity_binding_signature,
                )
            except (InvalidSignature, ProtocolError):
                raise ClientError(
                    f"the server listed a device of {user_id} with an invalid identity; not sent"
                ) from None
        return listed

    async def refresh_identities(self, users: Sequence[str]) -> None:
        """Fetch the users' (and this user's) device lists and record their identities."""
        await self._current_targets(users)

    def safety_number(self, user_id: str) -> SafetyNumber:
        """PROTOCOL s8 over every device known for both users (this one included)."""
        m = self.state.manager
        own_keys = m.device.identity
        mine = [(own_keys.isk, own_keys.ik)]
        own_contact = m.identities.contact(self.address.user_id)
        if own_contact is not None:
            mine += [(d.isk, d.ik) for d in own_contact.devices.values()]
        contact = m.identities.contact(user_id)
        if contact is None or not contact.devices:
            raise UnknownContact(f"no known devices for {user_id}")
        theirs = [(d.isk, d.ik) for d in contact.devices.values()]
        return safety_number(self.address.user_id, mine, user_id, theirs)

    async def resend_unsent(self) -> int:
        """Resend requests stored but not acknowledged by the server (after a crash)."""
        count = 0
        for entry in self.messenger.messages.unsent():
            if not entry.request.envelopes:
                continue
            try:
                await self.relay.send(entry.request.to_dict())
            except StaleDevices:
                users = sorted({e.recipient.user_id for e in entry.request.envelopes})
                request = self.messenger.repair(entry.msg_id, await self._current_targets(users))
                await self.relay.send(request.to_dict())
            self.messenger.mark_sent(entry.msg_id)
            count += 1
        return count

    # -- receiving --------------------------------------------------------------------------

    def accept(self, delivery: Delivery) -> Received | None:
        """Decrypt and commit one delivery; the caller acks it after this returns.

        Returns the message if it is new; None for a repeat or an undecryptable envelope
        (noted in `warnings`), which must be acked all the same.
        """
        try:
            return self.messenger.receive(delivery.envelope, delivery.server_id)
        except Undecryptable as exc:
            self.warnings.append(exc.message)
            return None

    async def handle(self, delivery: Delivery) -> Received | None:
        """Decrypt and commit one delivery, then ack it. Returns the message if it is new."""
        received = self.accept(delivery)
        await self.relay.ack([delivery.server_id])
        return received

    async def drain(self) -> list[Received]:
        """Fetch and handle everything queued for this device."""
        out = []
        for delivery in await self.relay.fetch():
            received = await self.handle(delivery)
            if received is not None:
                out.append(received)
        return out

    # -- own pre keys (s4.5) ------------------------------------------------------------------

    async def maintain_pre_keys(self) -> None:
        """Rotate the SPK when due, refill OPKs below the mark, expire retained keys.

        New private keys are committed before their public halves are uploaded, so the server
        can never hand out a key this device does not hold.
        """
        ks = self.state.ks
        with self.state.step() as m:
            m.expire()
            if m.device.needs_rotation(ks.now() * 1000):
                m.rotate_signed_pre_key()
        spk = m.device.current_signed_pre_key
        spk_upload = spk if ks.counter(SPK_UPLOADED) != spk.key_id else None
        count = await self.relay.one_time_pre_key_count()
        uploaded_through = ks.counter(OPK_UPLOADED)
        pending = [k for k in m.device.one_time_pre_keys if k.key_id > uploaded_through]
        if count + len(pending) < OPK_REFILL_BELOW:
            with self.state.step() as m:
                m.generate_one_time_pre_keys(OPK_BATCH - count - len(pending))
            pending = [k for k in m.device.one_time_pre_keys if k.key_id > uploaded_through]
        if spk_upload is None and not pending:
            return
        await self.relay.upload_pre_keys(spk_upload, pending)
        with ks.transaction():
            ks.set_counter(SPK_UPLOADED, spk.key_id)
            if pending:
                ks.set_counter(OPK_UPLOADED, max(k.key_id for k in pending))
