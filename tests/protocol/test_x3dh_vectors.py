"""Constants, identities, `bob_bundle`, `x3dh` and `x3dh_no_opk` known answers."""

from __future__ import annotations

import copy

import pytest

from semafore.protocol import (
    Bundle,
    DecodeError,
    DeviceAddress,
    DHKeyPair,
    DHPublicKey,
    Envelope,
    IdentityKeyPair,
    InvalidKey,
    InvalidSignature,
    ProtocolError,
    RatchetState,
    SessionManager,
    SigningPublicKey,
    pad,
    unpad,
    x3dh,
)
from semafore.protocol import constants as c
from semafore.protocol.binding import (
    binding_message,
    sign_identity_binding,
    verify_identity_binding,
)
from semafore.protocol.encoding import b64u_decode, b64u_encode

PARTIES = ["alice", "alice_second_device", "bob"]


def test_constants_match_vectors(vectors):
    k = vectors["constants"]
    assert c.CTX_BINDING.hex() == k["CTX_BINDING_hex"]
    assert c.CTX_SPK.hex() == k["CTX_SPK_hex"]
    assert (c.CK_NEXT + c.CK_MSG).hex() == k["MESSAGE_CHAIN_CONSTANT_hex"]
    assert k["MK_INFO"].encode() == c.MK_INFO
    assert k["RK_INFO"].encode() == c.RK_INFO
    assert k["X3DH_INFO"].encode() == c.X3DH_INFO
    assert (
        k["MAX_SKIP"],
        k["MAX_STORED_SKIPPED"],
        k["PAD_BLOCK"],
    ) == (c.MAX_SKIP, c.MAX_STORED_SKIPPED, c.PAD_BLOCK)


@pytest.mark.parametrize("name", PARTIES)
def test_identity_keys_and_binding_signature(vectors, name):
    party = vectors[name]
    identity = IdentityKeyPair(
        DHKeyPair(bytes.fromhex(party["ik_priv"])), bytes.fromhex(party["isk_seed"])
    )
    address = DeviceAddress(party["user_id"], party["device_id"])
    assert identity.ik.data.hex() == party["ik_pub"]
    assert identity.isk.data.hex() == party["isk_pub"]
    assert IdentityKeyPair.from_bytes(identity.to_bytes()) == identity
    signature = sign_identity_binding(identity, address)
    assert signature.hex() == party["binding_sig"]  # Ed25519 is deterministic
    verify_identity_binding(identity.isk, identity.ik, address, signature)
    # The binding covers user_id and device_id: another slot fails.
    for other in (
        DeviceAddress(party["user_id"], party["device_id"] + 1),
        DeviceAddress(party["user_id"] + "x", party["device_id"]),
    ):
        with pytest.raises(InvalidSignature):
            verify_identity_binding(identity.isk, identity.ik, other, signature)


def test_binding_message_layout(vectors):
    alice = vectors["alice"]
    ik = DHPublicKey(bytes.fromhex(alice["ik_pub"]))
    message = binding_message(ik, DeviceAddress("user:alice", 1))
    assert message == c.CTX_BINDING + ik.data + b"\x00\x00\x00\x01" + b"user:alice"


def test_bob_bundle_parses_verifies_and_round_trips(vectors, bob_device):
    wire = vectors["bob_bundle"]
    bundle = Bundle.from_dict(wire)
    bundle.verify(DeviceAddress("user:bob", 3))
    assert bundle.to_dict() == wire
    assert bundle.identity_key.data.hex() == vectors["bob"]["ik_pub"]
    assert bundle.one_time_pre_key.data.hex() == vectors["bob"]["opk_pub"]
    # Built from Bob's private keys, the bundle is the same bytes (deterministic signatures).
    assert bob_device.bundle(42).to_dict() == wire
    assert "one_time_pre_key" not in bob_device.bundle().to_dict()


@pytest.mark.parametrize(
    "field",
    [
        "identity_binding_signature",
        "signed_pre_key_signature",
        "identity_key",
        "signed_pre_key",
        "identity_signing_key",
    ],
)
def test_bob_bundle_rejects_any_tampered_field(vectors, field):
    wire = copy.deepcopy(vectors["bob_bundle"])
    raw = bytearray(b64u_decode(wire[field]))
    raw[0] ^= 0x01
    wire[field] = b64u_encode(bytes(raw))
    with pytest.raises((InvalidSignature, InvalidKey)):
        Bundle.from_dict(wire).verify(DeviceAddress("user:bob", 3))


@pytest.mark.parametrize(
    ("user_id", "device_id"), [("user:bob", 4), ("user:bobby", 3), ("user:alice", 3)]
)
def test_bob_bundle_for_another_device_is_refused(vectors, user_id, device_id):
    with pytest.raises(DecodeError):
        Bundle.from_dict(vectors["bob_bundle"]).verify(DeviceAddress(user_id, device_id))


def test_bundle_strict_members(vectors):
    base = vectors["bob_bundle"]
    for change in ({"v": 2}, {"v": True}, {"v": "1"}):
        with pytest.raises(DecodeError):
            Bundle.from_dict({**base, **change})
    half = {k: v for k, v in base.items() if k != "one_time_pre_key"}
    with pytest.raises(DecodeError):
        Bundle.from_dict(half)
    no_opk = {k: v for k, v in base.items() if not k.startswith("one_time")}
    assert Bundle.from_dict(no_opk).one_time_pre_key is None
    assert Bundle.from_dict({**base, "future": [1, 2]}) == Bundle.from_dict(base)


@pytest.mark.parametrize("name", ["x3dh", "x3dh_no_opk"])
def test_x3dh_known_answers(vectors, name):
    v, alice, bob = vectors[name], vectors["alice"], vectors["bob"]
    alice_ik = DHKeyPair(bytes.fromhex(alice["ik_priv"]))
    bob_ik = DHKeyPair(bytes.fromhex(bob["ik_priv"]))
    spk = DHKeyPair(bytes.fromhex(bob["spk_priv"]))
    opk = DHKeyPair(bytes.fromhex(bob["opk_priv"])) if name == "x3dh" else None
    ek = DHKeyPair(bytes.fromhex(v["ek_priv"]))
    assert ek.public.data.hex() == v["ek_pub"]

    ikm = x3dh.initiator_ikm(alice_ik, ek, bob_ik.public, spk.public, opk.public if opk else None)
    dhs = [ikm[i : i + 32].hex() for i in range(0, len(ikm), 32)]
    expected = [v[f"dh{i}"] for i in range(1, 5) if f"dh{i}" in v]
    assert dhs == expected
    assert ikm.hex() == v["ikm"]
    assert x3dh.responder_ikm(bob_ik, spk, opk, alice_ik.public, ek.public) == ikm

    sent = x3dh.initiate(alice_ik, ek, 1, bob_ik.public, spk.public, opk.public if opk else None, 3)
    received = x3dh.respond(bob_ik, spk, opk, 3, alice_ik.public, ek.public, 1)
    assert sent.session_secret.hex() == v["session_secret"]
    assert sent.associated_data.hex() == v["ad"]
    assert received == sent
    assert v["session_secret"] not in repr(sent)


def test_x3dh_no_opk_first_message(vectors, alice_device, bob_device, key_queue):
    """Alice initiates without an OPK; Bob decrypts the first message (with his fixed keys)."""
    v = vectors["x3dh_no_opk"]
    bundle = Bundle.from_dict(
        {k: x for k, x in vectors["bob_bundle"].items() if not k.startswith("one_time")}
    )
    alice = SessionManager(
        alice_device, generate_dh=key_queue([v["ek_priv"], v["alice_ratchet_priv"]])
    )
    bob = SessionManager(bob_device, generate_dh=key_queue([v["bob_ratchet_priv"]]))
    alice.start_session(bundle, bob.address)
    content = unpad(bytes.fromhex(v["plaintext"]))
    envelope = alice.encrypt(bob.address, content)
    assert envelope.header.to_bytes().hex() == v["header"]
    assert envelope.ciphertext.hex() == v["ciphertext"]
    assert envelope.prekey is not None and envelope.prekey.opk_id is None
    assert "opk_id" not in envelope.to_dict()["prekey"]
    received = bob.decrypt(Envelope.from_json(envelope.to_json()))
    assert pad(received.content).hex() == v["plaintext"]
    assert bob.device.one_time_pre_keys == bob_device.one_time_pre_keys  # no OPK consumed


def test_x3dh_no_opk_raw_ratchet(vectors, key_queue):
    v, bob = vectors["x3dh_no_opk"], vectors["bob"]
    secret, ad = bytes.fromhex(v["session_secret"]), bytes.fromhex(v["ad"])
    alice = RatchetState.initiator(
        secret, DHPublicKey(bytes.fromhex(bob["spk_pub"])), key_queue([v["alice_ratchet_priv"]])
    )
    _, header, ciphertext = alice.encrypt(bytes.fromhex(v["plaintext"]), ad)
    assert header.to_bytes().hex() == v["header"]
    assert ciphertext.hex() == v["ciphertext"]
    bob_state = RatchetState.responder(secret, DHKeyPair(bytes.fromhex(bob["spk_priv"])))
    _, plaintext = bob_state.decrypt(header, ciphertext, ad, key_queue([v["bob_ratchet_priv"]]))
    assert plaintext.hex() == v["plaintext"]


def test_x3dh_aborts_on_low_order_keys(vectors):
    """A low-order SPK or IK makes a DH output all zeros: the whole X3DH aborts."""
    alice = DHKeyPair(bytes.fromhex(vectors["alice"]["ik_priv"]))
    ek = DHKeyPair(bytes.fromhex(vectors["x3dh"]["ek_priv"]))
    good = DHPublicKey(bytes.fromhex(vectors["bob"]["spk_pub"]))
    for low_order in (bytes(32), (1).to_bytes(32, "little")):
        bad = DHPublicKey(low_order)
        with pytest.raises(InvalidKey):
            x3dh.initiate(alice, ek, 1, good, bad, None, 3)
        with pytest.raises(InvalidKey):
            x3dh.initiate(alice, ek, 1, bad, good, None, 3)
        with pytest.raises(InvalidKey):
            x3dh.initiate(alice, ek, 1, good, good, bad, 3)


def test_signing_key_wrapper_rejects_small_order(vectors):
    identity = IdentityKeyPair(
        DHKeyPair(bytes.fromhex(vectors["bob"]["ik_priv"])),
        bytes.fromhex(vectors["bob"]["isk_seed"]),
    )
    signature = identity.sign(b"m")
    identity.isk.verify(signature, b"m")
    with pytest.raises(InvalidSignature):
        identity.isk.verify(signature, b"n")
    with pytest.raises(ProtocolError):
        SigningPublicKey(bytes(31))
    with pytest.raises(InvalidSignature):
        SigningPublicKey((1).to_bytes(32, "little")).verify(bytes(64), b"m")
