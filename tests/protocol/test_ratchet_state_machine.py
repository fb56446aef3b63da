"""Hypothesis state machine: two devices with an X3DH-established session over a hostile network.

Messages are sent, delivered out of order, dropped, replayed and tampered with. Invariants:
every message delivered for the first time decrypts exactly once to its plaintext; replays and
tampered copies are rejected; a rejected envelope leaves both devices' state byte-for-byte
unchanged; persisting and reloading a device changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from semafore.protocol import (
    DeviceAddress,
    DeviceKeys,
    DHPublicKey,
    Envelope,
    Header,
    ProtocolError,
    SessionManager,
    SigningPublicKey,
)

ALICE = DeviceAddress("user:alice", 1)
BOB = DeviceAddress("user:bob", 7)
NOW = 1_700_000_000_000


@dataclass
class Flight:
    recipient: str
    wire: bytes
    content: bytes
    delivered: bool = False
    dropped: bool = False


def _flip(data: bytes, bit: int) -> bytes:
    out = bytearray(data)
    out[(bit // 8) % len(out)] ^= 1 << (bit % 8)
    return bytes(out)


def _tampered(envelope: Envelope, target: str, bit: int) -> Envelope | None:
    """A copy with one bit flipped in an authenticated part; None if that part is absent."""
    if target == "ct":
        return replace(envelope, ciphertext=_flip(envelope.ciphertext, bit))
    if target == "header":
        try:
            return replace(
                envelope, header=Header.from_bytes(_flip(envelope.header.to_bytes(), bit))
            )
        except ProtocolError:
            return None  # not even a header any more: refused at parse time
    pk = envelope.prekey
    if pk is None:
        return None
    try:
        if target == "ik_sig":
            return replace(envelope, prekey=replace(pk, ik_sig=_flip(pk.ik_sig, bit)))
        if target == "isk":
            flipped_isk = SigningPublicKey(_flip(pk.isk.data, bit))
            return replace(envelope, prekey=replace(pk, isk=flipped_isk))
        key = DHPublicKey(_flip(getattr(pk, target).data, bit))
        return replace(envelope, prekey=replace(pk, **{target: key}))
    except ProtocolError:
        return None


class TwoDevices(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        clock = lambda: NOW  # noqa: E731 - a frozen clock is enough here
        self.devices = {
            "alice": SessionManager(DeviceKeys.generate(ALICE, NOW), now_ms=clock),
            "bob": SessionManager(DeviceKeys.generate(BOB, NOW), now_ms=clock),
        }
        self.addresses = {"alice": ALICE, "bob": BOB}
        self.flights: list[Flight] = []
        self.sent = 0

    @initialize(use_opk=st.booleans())
    def establish(self, use_opk: bool) -> None:
        bob = self.devices["bob"]
        opk_id = None
        if use_opk:
            opk_id = bob.generate_one_time_pre_keys(1)[0].key_id
        self.devices["alice"].start_session(bob.device.bundle(opk_id), BOB)

    def _send(self, sender: str, recipient: str, body: bytes) -> None:
        self.sent += 1
        content = b"%d:" % self.sent + body
        envelope = self.devices[sender].encrypt(self.addresses[recipient], content)
        self.flights.append(Flight(recipient, envelope.to_json(), content))

    @rule(body=st.binary(max_size=200))
    def alice_sends(self, body: bytes) -> None:
        self._send("alice", "bob", body)

    @precondition(lambda self: self.devices["bob"].has_session(ALICE))
    @rule(body=st.binary(max_size=200))
    def bob_sends(self, body: bytes) -> None:
        self._send("bob", "alice", body)

    def _pick(self, data: st.DataObject, wanted) -> Flight | None:
        candidates = [f for f in self.flights if wanted(f)]
        return data.draw(st.sampled_from(candidates)) if candidates else None

    def _expect_rejected(self, flight: Flight, envelope: Envelope | None) -> None:
        device = self.devices[flight.recipient]
        before = device.to_bytes()
        device.take_changes()
        try:
            if envelope is None:  # malformed before it could even be parsed
                raise ProtocolError("refused at parse time")
            device.decrypt(envelope)
        except ProtocolError:
            pass
        else:
            raise AssertionError("a replayed or tampered envelope was accepted")
        assert device.to_bytes() == before
        assert not device.take_changes()

    @rule(data=st.data())
    def deliver(self, data: st.DataObject) -> None:
        flight = self._pick(data, lambda f: not f.delivered and not f.dropped)
        if flight is None:
            return
        received = self.devices[flight.recipient].decrypt(Envelope.from_json(flight.wire))
        assert received.content == flight.content
        flight.delivered = True

    @rule(data=st.data())
    def drop(self, data: st.DataObject) -> None:
        flight = self._pick(data, lambda f: not f.delivered and not f.dropped)
        if flight is not None:
            flight.dropped = True

    @rule(data=st.data())
    def replay(self, data: st.DataObject) -> None:
        flight = self._pick(data, lambda f: f.delivered)
        if flight is not None:
            self._expect_rejected(flight, Envelope.from_json(flight.wire))

    @rule(
        data=st.data(),
        part=st.sampled_from(["ct", "header", "ik", "isk", "ik_sig", "ek"]),
        bit=st.integers(min_value=0, max_value=8 * 512),
    )
    def tamper(self, data: st.DataObject, part: str, bit: int) -> None:
        flight = self._pick(data, lambda f: True)
        if flight is None:
            return
        envelope = Envelope.from_json(flight.wire)
        if part not in ("ct", "header") and envelope.prekey is None:
            return
        self._expect_rejected(flight, _tampered(envelope, part, bit))

    @rule(name=st.sampled_from(["alice", "bob"]))
    def persist_and_reload(self, name: str) -> None:
        device = self.devices[name]
        stored = device.to_bytes()
        reloaded = SessionManager.from_bytes(stored, now_ms=lambda: NOW)
        assert reloaded.to_bytes() == stored
        self.devices[name] = reloaded

    @invariant()
    def alice_can_always_send(self) -> None:
        assert self.devices["alice"].has_session(BOB)


TwoDevices.TestCase.settings = settings(
    max_examples=300,
    stateful_step_count=35,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_two_devices = TwoDevices.TestCase
