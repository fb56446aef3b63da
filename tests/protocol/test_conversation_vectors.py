"""The 26-event `conversation` script and `skipped_store_eviction`, byte for byte."""

from __future__ import annotations

import copy
import hashlib
from typing import Any

import pytest

from semafore.protocol import (
    Bundle,
    Content,
    DecryptionFailed,
    DHKeyPair,
    DHPublicKey,
    DuplicateMessage,
    Envelope,
    Header,
    IdentityStatus,
    RatchetState,
    SessionManager,
    TooManySkipped,
    pad,
)
from semafore.protocol.encoding import b64u_decode, b64u_encode, u32
from semafore.protocol.ratchet import decrypt_message, kdf_ck

EXPECTED_ERRORS = {
    "duplicate": DuplicateMessage,
    "max_skip": TooManySkipped,
    "auth": DecryptionFailed,
}
TAMPER = "flip lowest bit of last ciphertext byte"


def _forge(wire: dict[str, Any], event: dict[str, Any]) -> dict[str, Any]:
    """Apply an event's forgery (`forge_n`) or tampering to a copy of a wire envelope."""
    wire = copy.deepcopy(wire)
    if "forge_n" in event:
        header = b64u_decode(wire["header"], 40)
        wire["header"] = b64u_encode(header[:36] + u32(event["forge_n"]))
    if "tamper" in event:
        assert event["tamper"] == TAMPER, "unknown tamper instruction in the vectors"
        ct = bytearray(b64u_decode(wire["ct"]))
        ct[-1] ^= 0x01
        wire["ct"] = b64u_encode(bytes(ct))
    return wire


def test_script_shape(vectors):
    events = vectors["conversation"]
    assert len(events) == 26
    assert sum("expect_error" in e for e in events) == 4
    assert {e["op"] for e in events} == {"send", "recv"}


def test_conversation_through_session_managers(
    vectors, alice_device, bob_device, key_queue, snapshot, clock
):
    alice_keys = key_queue([vectors["x3dh"]["ek_priv"], *vectors["alice"]["ratchet_privs"]])
    alice = SessionManager(alice_device, generate_dh=alice_keys, now_ms=clock)
    bob = SessionManager(
        bob_device, generate_dh=key_queue(vectors["bob"]["ratchet_privs"]), now_ms=clock
    )
    status = alice.start_session(Bundle.from_dict(vectors["bob_bundle"]), bob.address)
    assert status is IdentityStatus.FIRST_USE
    parties = {"alice": (alice, bob.address), "bob": (bob, alice.address)}
    ad = bytes.fromhex(vectors["x3dh"]["ad"])
    on_wire: dict[str, dict[str, Any]] = {}

    for index, event in enumerate(vectors["conversation"]):
        manager, peer = parties[event["party"]]
        manager.take_changes()
        if event["op"] == "send":
            before = manager.session_record(peer).active.ratchet
            _, message_key = kdf_ck(before.cks)
            assert message_key.hex() == event["message_key"], index
            content = event["content"].encode()
            assert Content.from_bytes(content).to_bytes() == content
            assert pad(content).hex() == event["plaintext"]

            envelope = manager.encrypt(peer, content)

            assert envelope.to_dict() == event["envelope"], index
            assert Envelope.from_json(envelope.to_json()) == envelope
            assert envelope.header.to_bytes().hex() == event["header"]
            assert envelope.ciphertext.hex() == event["ciphertext"]
            aad = ad + envelope.header.to_bytes()
            assert (
                decrypt_message(message_key, envelope.ciphertext, aad).hex() == (event["plaintext"])
            )
            assert manager.take_changes().sessions == {peer}
            on_wire[event["mid"]] = event["envelope"]
        else:
            envelope = Envelope.from_dict(_forge(on_wire[event["mid"]], event))
            if "expect_error" in event:
                before_bytes = manager.to_bytes()
                with pytest.raises(EXPECTED_ERRORS[event["expect_error"]]):
                    manager.decrypt(envelope)
                assert manager.to_bytes() == before_bytes, index
                assert not manager.take_changes()
            else:
                received = manager.decrypt(envelope)
                assert received.sender == peer
                assert pad(received.content).hex() == event["expect_plaintext"], index
                assert manager.take_changes().sessions == {peer}
        assert snapshot(manager.session_record(peer).active.ratchet) == event["state_after"], index

    # Alice attached the identical pre-key block until her first decryption (event 9), and
    # Bob consumed OPK 42 exactly once.
    blocks = [e["envelope"].get("prekey") for e in vectors["conversation"] if e["op"] == "send"]
    assert blocks[0] == blocks[1] == blocks[2] is not None
    assert all(b is None for b in blocks[3:])
    assert bob.device.one_time_pre_keys == ()
    assert bob.device.seen_prekeys == {(7, bytes.fromhex(vectors["x3dh"]["ek_pub"]))}


def test_conversation_through_raw_ratchet(vectors, key_queue, snapshot):
    """The same script on bare RatchetState values: exact padded plaintexts both ways."""
    x3dh, bob = vectors["x3dh"], vectors["bob"]
    secret, ad = bytes.fromhex(x3dh["session_secret"]), bytes.fromhex(x3dh["ad"])
    queues = {
        "alice": key_queue(vectors["alice"]["ratchet_privs"]),
        "bob": key_queue(bob["ratchet_privs"]),
    }
    states = {
        "alice": RatchetState.initiator(
            secret, DHPublicKey(bytes.fromhex(bob["spk_pub"])), queues["alice"]
        ),
        "bob": RatchetState.responder(secret, DHKeyPair(bytes.fromhex(bob["spk_priv"]))),
    }
    on_wire: dict[str, dict[str, Any]] = {}
    for index, event in enumerate(vectors["conversation"]):
        state = states[event["party"]]
        if event["op"] == "send":
            state, header, ciphertext = state.encrypt(bytes.fromhex(event["plaintext"]), ad)
            assert header.to_bytes().hex() == event["header"]
            assert ciphertext.hex() == event["ciphertext"]
            on_wire[event["mid"]] = event["envelope"]
        else:
            wire = _forge(on_wire[event["mid"]], event)
            header = Header.from_bytes(b64u_decode(wire["header"]))
            ciphertext = b64u_decode(wire["ct"])
            if "expect_error" in event:
                before = state.to_bytes()
                with pytest.raises(EXPECTED_ERRORS[event["expect_error"]]):
                    state.decrypt(header, ciphertext, ad, queues[event["party"]])
                assert state.to_bytes() == before
            else:
                state, plaintext = state.decrypt(header, ciphertext, ad, queues[event["party"]])
                assert plaintext.hex() == event["expect_plaintext"], index
        states[event["party"]] = state
        assert snapshot(state) == event["state_after"], index
        assert RatchetState.from_bytes(state.to_bytes()) == state


def test_skipped_store_eviction(vectors, key_queue, snapshot):
    vector, x3dh, bob_keys = vectors["skipped_store_eviction"], vectors["x3dh"], vectors["bob"]
    secret, ad = bytes.fromhex(x3dh["session_secret"]), bytes.fromhex(x3dh["ad"])
    alice_q = key_queue(vector["alice_ratchet_privs"])
    bob_q = key_queue(vector["bob_ratchet_privs"])
    alice = RatchetState.initiator(secret, DHPublicKey(bytes.fromhex(bob_keys["spk_pub"])), alice_q)
    bob = RatchetState.responder(secret, DHKeyPair(bytes.fromhex(bob_keys["spk_priv"])))
    empty = pad(b"")
    for _ in range(3):  # the vector's script: 3 rounds
        for _ in range(1001):
            alice, header, ciphertext = alice.encrypt(empty, ad)
        bob, plaintext = bob.decrypt(header, ciphertext, ad, bob_q)
        assert plaintext == empty
        bob, header, ciphertext = bob.encrypt(empty, ad)
        alice, plaintext = alice.decrypt(header, ciphertext, ad, alice_q)
        assert plaintext == empty

    state = snapshot(bob)
    skipped = state.pop("skipped")
    assert state == vector["bob_state_after"]
    assert len(skipped) == vector["skipped_count"]
    assert skipped[0] == vector["skipped_first"]
    assert skipped[-1] == vector["skipped_last"]
    # The digest covers the store in FIFO order as DHr (32) || u32(N) || MK (32) per entry.
    store = b"".join(s.dh.data + u32(s.n) + s.mk for s in bob.skipped)
    assert hashlib.sha256(store).hexdigest() == vector["skipped_sha256"]
    assert RatchetState.from_bytes(bob.to_bytes()) == bob
