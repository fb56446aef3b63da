"""Session manager behaviour: s7.3 / s7.4 processing order, retention, identities, state."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from semafore.protocol import (
    DecodeError,
    DecryptionFailed,
    DeviceAddress,
    DeviceKeys,
    DuplicateMessage,
    Envelope,
    IdentityStatus,
    InvalidSignature,
    NoSession,
    ProtocolError,
    SessionManager,
    SessionRecord,
    UnknownPreKey,
    UntrustedIdentity,
)
from semafore.protocol.binding import sign_identity_binding
from semafore.protocol.constants import DAY_MS, MAX_ARCHIVED_SESSIONS

ALICE = DeviceAddress("user:alice", 1)
BOB = DeviceAddress("user:bob", 3)


def _device(address, clock, opks=8) -> SessionManager:
    manager = SessionManager(DeviceKeys.generate(address, clock()), now_ms=clock)
    manager.generate_one_time_pre_keys(opks)
    manager.take_changes()
    return manager


def _connect(alice: SessionManager, bob: SessionManager, opk: bool = True) -> IdentityStatus:
    opk_id = bob.device.one_time_pre_keys[0].key_id if opk else None
    return alice.start_session(bob.device.bundle(opk_id), bob.address)


def _wire(envelope: Envelope) -> Envelope:
    return Envelope.from_json(envelope.to_json())


def _assert_unchanged(manager: SessionManager, action, error) -> None:
    before = manager.to_bytes()
    manager.take_changes()
    with pytest.raises(error):
        action()
    assert manager.to_bytes() == before
    assert not manager.take_changes()


@pytest.fixture
def alice(clock):
    return _device(ALICE, clock)


@pytest.fixture
def bob(clock):
    return _device(BOB, clock)


def test_round_trip_and_change_tracking(alice, bob):
    assert _connect(alice, bob) is IdentityStatus.FIRST_USE
    changes = alice.take_changes()
    assert changes.sessions == {BOB} and changes.contacts == {"user:bob"}
    assert not changes.device_keys
    first = alice.encrypt(BOB, b'{"v":1}')
    assert alice.take_changes().sessions == {BOB}
    received = bob.decrypt(_wire(first))
    assert (received.content, received.sender, received.new_session) == (b'{"v":1}', ALICE, True)
    assert received.identity is IdentityStatus.FIRST_USE
    changes = bob.take_changes()
    assert (
        changes.device_keys and changes.sessions == {ALICE} and changes.contacts == {"user:alice"}
    )
    reply = bob.decrypt(_wire(alice.encrypt(BOB, b"second")))
    assert reply.content == b"second" and not reply.new_session
    assert alice.decrypt(_wire(bob.encrypt(ALICE, b"back"))).content == b"back"


def test_initiator_attaches_identical_prekey_block_until_first_decryption(alice, bob):
    _connect(alice, bob)
    envelopes = [alice.encrypt(BOB, b"m%d" % i) for i in range(3)]
    assert envelopes[0].prekey is not None
    assert all(e.prekey == envelopes[0].prekey for e in envelopes)
    # Bob gets only the last one: any one of them must set up the session.
    assert bob.decrypt(_wire(envelopes[2])).content == b"m2"
    assert bob.decrypt(_wire(envelopes[0])).content == b"m0"
    alice.decrypt(_wire(bob.encrypt(ALICE, b"ok")))
    assert alice.encrypt(BOB, b"later").prekey is None


def test_opk_is_consumed_only_after_successful_decryption(alice, bob):
    _connect(alice, bob)
    opk_id = bob.device.one_time_pre_keys[0].key_id
    envelope = alice.encrypt(BOB, b"hello")
    forged = replace(envelope, ciphertext=envelope.ciphertext[:-1] + b"\x00")
    _assert_unchanged(bob, lambda: bob.decrypt(forged), DecryptionFailed)
    assert bob.device.one_time_pre_key(opk_id) is not None
    assert bob.decrypt(envelope).content == b"hello"
    with pytest.raises(UnknownPreKey):
        bob.device.one_time_pre_key(opk_id)
    assert (envelope.prekey.spk_id, envelope.prekey.ek.data) in bob.device.seen_prekeys


def test_replayed_prekey_messages_are_refused(alice, bob, clock):
    for use_opk, error in ((False, DuplicateMessage), (True, UnknownPreKey)):
        _connect(alice, bob, opk=use_opk)
        envelope = alice.encrypt(BOB, b"first")
        bob.decrypt(envelope)
        # Same session: the ratchet sees a duplicate.
        _assert_unchanged(bob, lambda env=envelope: bob.decrypt(env), DuplicateMessage)
        # Session gone (e.g. never stored): the OPK is used up / (spk_id, ek) was recorded.
        fresh = SessionManager(bob.device, now_ms=clock)
        _assert_unchanged(fresh, lambda env=envelope, f=fresh: f.decrypt(env), error)


def test_unknown_pre_keys_and_bad_binding_are_dropped(alice, bob):
    _connect(alice, bob)
    envelope = alice.encrypt(BOB, b"x")
    pk = envelope.prekey
    cases = [
        (replace(pk, spk_id=pk.spk_id + 100), UnknownPreKey),
        (replace(pk, opk_id=pk.opk_id + 100), UnknownPreKey),
        (replace(pk, ik_sig=bytes(64)), InvalidSignature),
        # A binding for another device of the same user does not cover device 1.
        (
            replace(
                pk,
                ik_sig=sign_identity_binding(alice.device.identity, DeviceAddress("user:alice", 2)),
            ),
            InvalidSignature,
        ),
        (replace(pk, opk_id=None), DecryptionFailed),
    ]
    for block, error in cases:
        _assert_unchanged(bob, lambda b=block: bob.decrypt(replace(envelope, prekey=b)), error)
    assert bob.decrypt(envelope).content == b"x"


def test_misaddressed_and_sessionless_envelopes(alice, bob, clock):
    _connect(alice, bob)
    envelope = alice.encrypt(BOB, b"x")
    carol = _device(DeviceAddress("user:carol", 9), clock)
    _assert_unchanged(carol, lambda: carol.decrypt(envelope), DecodeError)
    bob.decrypt(envelope)
    reply = bob.encrypt(ALICE, b"y")
    stranger = SessionManager(alice.device, now_ms=clock)
    _assert_unchanged(stranger, lambda: stranger.decrypt(reply), NoSession)
    with pytest.raises(NoSession):
        stranger.encrypt(BOB, b"z")
    with pytest.raises(DecodeError):
        alice.start_session(alice.device.bundle(), ALICE)


def test_prekey_block_with_swapped_signing_key_is_refused_in_existing_run(alice, bob, clock):
    """Someone re-signs Alice's IK under their own ISK on a later envelope of her run."""
    _connect(alice, bob)
    bob.decrypt(alice.encrypt(BOB, b"one"))
    second = alice.encrypt(BOB, b"two")
    mallory = DeviceKeys.generate(ALICE, clock()).identity
    forged_sig = mallory.sign(
        b"SemaFore v1 identity binding\x00"
        + alice.device.identity.ik.data
        + b"\x00\x00\x00\x01"
        + b"user:alice"
    )
    block = replace(second.prekey, isk=mallory.isk, ik_sig=forged_sig)
    _assert_unchanged(bob, lambda: bob.decrypt(replace(second, prekey=block)), DecryptionFailed)
    assert bob.decrypt(second).content == b"two"


def test_retained_sessions_are_capped_and_expire(alice, bob, clock):
    envelopes = []
    for i in range(MAX_ARCHIVED_SESSIONS + 2):
        _connect(alice, bob)
        envelopes.append(alice.encrypt(BOB, b"s%d-0" % i))
        assert bob.decrypt(envelopes[-1]).content == b"s%d-0" % i
        envelopes[-1] = alice.encrypt(BOB, b"s%d-1" % i)  # a late message of that session
    record = bob.session_record(ALICE)
    assert record.active is not None and len(record.archived) == MAX_ARCHIVED_SESSIONS
    assert len(alice.session_record(BOB).archived) == MAX_ARCHIVED_SESSIONS
    # Late messages on the five newest archived sessions still decrypt; the oldest is gone.
    with pytest.raises(ProtocolError):
        bob.decrypt(envelopes[0])
    for i in range(2, MAX_ARCHIVED_SESSIONS + 2):
        assert bob.decrypt(envelopes[i]).content == b"s%d-1" % i
    # A decrypting archived session becomes the active one (most recently used).
    newest_ad = bob.session_record(ALICE).active.associated_data
    clock.now += 31 * DAY_MS
    bob.expire()
    record = bob.session_record(ALICE)
    assert record.archived == () and record.active.associated_data == newest_ad
    assert bob.take_changes().sessions == {ALICE}


def test_simultaneous_initiation_keeps_working(alice, bob):
    _connect(alice, bob)
    _connect(bob, alice)
    a1, b1 = alice.encrypt(BOB, b"a1"), bob.encrypt(ALICE, b"b1")
    assert bob.decrypt(a1).content == b"a1"
    assert alice.decrypt(b1).content == b"b1"
    for i in range(4):
        assert bob.decrypt(alice.encrypt(BOB, b"a%d" % i)).content == b"a%d" % i
        assert alice.decrypt(bob.encrypt(ALICE, b"b%d" % i)).content == b"b%d" % i


def test_signed_pre_key_rotation_and_retention(alice, bob, clock):
    _connect(alice, bob, opk=False)
    old_bundle_message = alice.encrypt(BOB, b"old spk")
    old_id = old_bundle_message.prekey.spk_id
    clock.now += 7 * DAY_MS
    assert bob.device.needs_rotation(clock())
    new = bob.rotate_signed_pre_key()
    assert new.key_id == old_id + 1 and bob.take_changes().device_keys
    assert bob.device.bundle().signed_pre_key_id == new.key_id
    assert bob.decrypt(old_bundle_message).content == b"old spk"  # retained SPK still works
    clock.now += 30 * DAY_MS
    bob.expire()
    with pytest.raises(UnknownPreKey):
        bob.device.signed_pre_key(old_id)
    assert not any(spk_id == old_id for spk_id, _ in bob.device.seen_prekeys)


def test_encrypt_many_is_all_or_nothing(alice, bob, clock):
    alice2 = _device(DeviceAddress("user:alice", 2), clock)
    _connect(alice, bob)
    before = alice.to_bytes()
    with pytest.raises(NoSession):
        alice.encrypt_many([BOB, alice2.address], b"x")
    assert alice.to_bytes() == before
    _connect(alice, alice2)
    envelopes = alice.encrypt_many([BOB, alice2.address], b"x")
    assert [e.recipient for e in envelopes] == [BOB, alice2.address]
    assert bob.decrypt(envelopes[0]).content == alice2.decrypt(envelopes[1]).content == b"x"


def test_identity_change_of_verified_contact_blocks_sending(alice, bob, clock):
    _connect(alice, bob)
    alice.set_verified("user:bob")
    assert alice.identities.contact("user:bob").verified
    # Bob re-installs: same address, new identity.
    new_bob = _device(BOB, clock)
    assert _connect(alice, new_bob) is IdentityStatus.BLOCKED
    assert not alice.identities.contact("user:bob").verified
    with pytest.raises(UntrustedIdentity):
        alice.encrypt(BOB, b"x")
    alice.confirm_identity(BOB)
    assert "user:bob" in alice.take_changes().contacts
    assert new_bob.decrypt(alice.encrypt(BOB, b"x")).content == b"x"


def test_identity_change_of_unverified_contact_warns(alice, bob, clock):
    _connect(alice, bob)
    new_bob = _device(BOB, clock)
    status = _connect(alice, new_bob)
    assert status is IdentityStatus.CHANGED and status.should_warn and status.may_send
    assert new_bob.decrypt(alice.encrypt(BOB, b"x")).content == b"x"


def test_changed_identity_in_incoming_prekey_message(alice, bob, clock):
    _connect(alice, bob)
    bob.decrypt(alice.encrypt(BOB, b"x"))
    bob.set_verified("user:alice")
    new_alice = _device(ALICE, clock)
    _connect(new_alice, bob)
    received = bob.decrypt(new_alice.encrypt(BOB, b"from the new device"))
    assert received.identity is IdentityStatus.BLOCKED  # decrypted, but flagged
    with pytest.raises(UntrustedIdentity):
        bob.encrypt(ALICE, b"reply")
    # A new device of the (now unverified) contact: the safety number changed, may send.
    alice2 = _device(DeviceAddress("user:alice", 2), clock)
    _connect(alice2, bob)
    assert bob.decrypt(alice2.encrypt(BOB, b"hi")).identity is IdentityStatus.NEW_DEVICE


def test_removed_device_sessions_are_archived(alice, bob):
    _connect(alice, bob)
    late = alice.encrypt(BOB, b"late")
    bob.decrypt(alice.encrypt(BOB, b"first"))
    bob.set_verified("user:alice")
    bob.remove_device(ALICE)
    assert not bob.has_session(ALICE)
    assert not bob.identities.contact("user:alice").verified
    assert bob.decrypt(late).content == b"late"  # archived sessions still decrypt


def test_whole_state_and_records_round_trip(alice, bob, clock):
    _connect(alice, bob)
    bob.decrypt(alice.encrypt(BOB, b"1"))
    alice.decrypt(bob.encrypt(ALICE, b"2"))
    pending = alice.encrypt(BOB, b"3")
    restored = SessionManager.from_bytes(bob.to_bytes(), now_ms=clock)
    assert restored.to_bytes() == bob.to_bytes()
    assert restored.decrypt(pending).content == b"3"
    record = alice.session_record(BOB)
    assert SessionRecord.from_bytes(record.to_bytes()) == record
    assert DeviceKeys.from_bytes(alice.device.to_bytes()) == alice.device
    contact = alice.identities.contact("user:bob")
    assert type(contact).from_bytes(contact.to_bytes()) == contact
    data = json.loads(bob.to_bytes())
    for broken in ({**data, "v": 2}, {**data, "sessions": {}}, {**data, "device": None}):
        with pytest.raises(DecodeError):
            SessionManager.from_dict(broken)


def test_late_message_from_replaced_identity_is_read_but_never_answered_on(alice, bob, clock):
    _connect(alice, bob)
    bob.decrypt(alice.encrypt(BOB, b"hi"))
    late = bob.encrypt(ALICE, b"sent before the re-install")
    new_bob = _device(BOB, clock)
    assert _connect(alice, new_bob) is IdentityStatus.CHANGED
    new_ad = alice.session_record(BOB).active.associated_data
    assert alice.decrypt(late).content == b"sent before the re-install"
    assert alice.session_record(BOB).active.associated_data == new_ad  # not promoted
    assert new_bob.decrypt(alice.encrypt(BOB, b"to the new device")).content == b"to the new device"
