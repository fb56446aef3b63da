"""Double Ratchet edge cases of s6.5 / s6.6 beyond the scripted vectors."""

from __future__ import annotations

from dataclasses import replace

import pytest

from semafore.protocol import (
    DecodeError,
    DecryptionFailed,
    DHKeyPair,
    DHPublicKey,
    Header,
    InvalidKey,
    NoSession,
    RatchetState,
    SessionExhausted,
    TooManySkipped,
)
from semafore.protocol.constants import MAX_SKIP

AD = bytes(range(72))


@pytest.fixture
def pair(vectors):
    bob = vectors["bob"]
    secret = bytes.fromhex(vectors["x3dh"]["session_secret"])
    alice = RatchetState.initiator(secret, DHPublicKey(bytes.fromhex(bob["spk_pub"])))
    return alice, RatchetState.responder(secret, DHKeyPair(bytes.fromhex(bob["spk_priv"])))


def test_responder_cannot_send_before_first_decryption(pair):
    _, bob = pair
    assert not bob.can_send
    with pytest.raises(NoSession):
        bob.encrypt(b"x", AD)


def test_counter_exhaustion(pair):
    alice, _ = pair
    with pytest.raises(SessionExhausted):
        replace(alice, ns=2**32 - 1).encrypt(b"x", AD)


def test_header_naming_initial_remote_key_is_refused(pair):
    """Alice has DHr = SPK_B but no receiving chain yet: a forged header must not crash."""
    alice, bob = pair
    forged = Header(bob.dhs.public, 0, 0)
    with pytest.raises(DecryptionFailed):
        alice.decrypt(forged, bytes(32), AD)


def test_low_order_ratchet_key_aborts_without_state_change(pair):
    alice, bob = pair
    _, header, ciphertext = alice.encrypt(b"x", AD)
    before = bob.to_bytes()
    with pytest.raises(InvalidKey):
        bob.decrypt(replace(header, dh=DHPublicKey(bytes(32))), ciphertext, AD)
    assert bob.to_bytes() == before


def test_old_chain_beyond_max_skip_is_abandoned_not_fatal(pair):
    """s6.6 deviation: pn - Nr > MAX_SKIP drops the old chain's keys and carries on."""
    alice, bob = pair
    alice, header, ciphertext = alice.encrypt(b"first", AD)
    bob, _ = bob.decrypt(header, ciphertext, AD)
    bob, header, ciphertext = bob.encrypt(b"reply", AD)
    for _ in range(MAX_SKIP + 2):  # lost in transit
        alice, _, _ = alice.encrypt(b"lost", AD)
    alice, _ = alice.decrypt(header, ciphertext, AD)
    alice, header, ciphertext = alice.encrypt(b"new chain", AD)
    assert header.pn == MAX_SKIP + 3
    bob, plaintext = bob.decrypt(header, ciphertext, AD)
    assert plaintext == b"new chain" and bob.skipped == ()


def test_new_chain_skip_limit(pair):
    alice, bob = pair
    for _ in range(MAX_SKIP + 2):
        alice, header, ciphertext = alice.encrypt(b"x", AD)
    assert header.n == MAX_SKIP + 1
    with pytest.raises(TooManySkipped):
        bob.decrypt(header, ciphertext, AD)
    alice2, bob2 = pair
    for _ in range(MAX_SKIP):
        alice2, _, _ = alice2.encrypt(b"x", AD)
    alice2, header, ciphertext = alice2.encrypt(b"last allowed", AD)
    assert header.n == MAX_SKIP
    bob2, plaintext = bob2.decrypt(header, ciphertext, AD)
    assert plaintext == b"last allowed" and len(bob2.skipped) == MAX_SKIP


def test_wrong_associated_data_fails(pair):
    alice, bob = pair
    _, header, ciphertext = alice.encrypt(b"x", AD)
    with pytest.raises(DecryptionFailed):
        bob.decrypt(header, ciphertext, bytes(72))


def test_state_serialisation_is_strict(pair):
    alice, bob = pair
    alice, _header, _ciphertext = alice.encrypt(b"x", AD)
    for state in (alice, bob):
        data = state.to_bytes()
        assert RatchetState.from_bytes(data) == state
        for broken in (
            data[:-1],
            data + b"\x00",
            b"\x02" + data[1:],
            data[:1] + b"\x08" + data[2:],
        ):
            with pytest.raises(DecodeError):
                RatchetState.from_bytes(broken)
    assert alice.rk.hex() not in repr(alice)
