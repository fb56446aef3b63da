"""Strict decoding (s3, s4.4, s7.1, s7.5): everything malformed is refused, unknowns ignored."""

from __future__ import annotations

import copy
import json

import pytest

from semafore.protocol import (
    Content,
    DecodeError,
    DHKeyPair,
    DHPublicKey,
    Envelope,
    Header,
    InvalidKey,
    ProtocolError,
    SendRequest,
    pad,
    unpad,
)
from semafore.protocol.encoding import b64u_decode, b64u_encode, load_json_object, u32
from semafore.protocol.keys import x25519

P = 2**255 - 19
# Points of small order on Curve25519 and its twist (u = 0, 1, p-1 and the two order-8 points).
LOW_ORDER = [
    "0000000000000000000000000000000000000000000000000000000000000000",
    "0100000000000000000000000000000000000000000000000000000000000000",
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
    "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
]


@pytest.fixture
def prekey_envelope(vectors):
    return copy.deepcopy(vectors["conversation"][0]["envelope"])


@pytest.fixture
def msg_envelope(vectors):
    return copy.deepcopy(vectors["conversation"][6]["envelope"])


# --- base64url ---------------------------------------------------------------------------


@pytest.mark.parametrize("size", range(0, 7))
def test_b64u_round_trip(size):
    data = bytes(range(250, 250 - size, -1))
    text = b64u_encode(data)
    assert "=" not in text
    assert b64u_decode(text, size) == data


@pytest.mark.parametrize(
    "text",
    [
        "AAE=",  # padding
        "AA==",
        "AAE ",  # whitespace
        " AAE",
        "AA\nE",
        "AA\tE",
        "AA+E",  # standard alphabet, not url-safe
        "AA/E",
        "AA*E",
        "AAé",
        "A",  # impossible length
        "AB",  # non-zero trailing bits (canonical is "AA")
        "AAF",  # "AAE" is canonical for 00 01
        "AAAAB",
        "A" * 42 + "B",  # a 32-byte key with non-zero trailing bits
    ],
)
def test_b64u_rejects(text):
    with pytest.raises(DecodeError):
        b64u_decode(text)


@pytest.mark.parametrize("value", [None, 1, b"AAAA", ["AAAA"]])
def test_b64u_rejects_non_strings(value):
    with pytest.raises(DecodeError):
        b64u_decode(value)


def test_b64u_fixed_lengths():
    key = b64u_encode(bytes(32))
    assert len(key) == 43 and len(b64u_encode(bytes(64))) == 86
    for wrong in (31, 33):
        with pytest.raises(DecodeError):
            b64u_decode(b64u_encode(bytes(wrong)), 32)
    with pytest.raises(DecodeError):
        b64u_decode(b64u_encode(bytes(15)), min_length=16)


def test_u32_bounds():
    assert u32(0) == bytes(4) and u32(2**32 - 1) == b"\xff" * 4
    for bad in (-1, 2**32, True, 1.0):
        with pytest.raises(DecodeError):
            u32(bad)


# --- X25519 keys --------------------------------------------------------------------------


@pytest.mark.parametrize("value", [P, P + 1, 2**255 - 1, 2**255, 2**256 - 1])
def test_non_canonical_x25519_keys_are_refused(value):
    with pytest.raises(InvalidKey):
        DHPublicKey(value.to_bytes(32, "little"))


def test_x25519_key_lengths_and_high_bit(vectors):
    good = bytes.fromhex(vectors["bob"]["spk_pub"])
    assert DHPublicKey(good).to_bytes() == good
    DHPublicKey((P - 1).to_bytes(32, "little"))  # largest canonical value
    for bad in (good[:31], good + b"\x00", good[:31] + bytes([good[31] | 0x80])):
        with pytest.raises(InvalidKey):
            DHPublicKey(bad)


@pytest.mark.parametrize("point", LOW_ORDER)
def test_all_zero_dh_output_aborts(vectors, point):
    pair = DHKeyPair(bytes.fromhex(vectors["alice"]["ik_priv"]))
    with pytest.raises(InvalidKey):
        pair.exchange(DHPublicKey(bytes.fromhex(point)))
    with pytest.raises(InvalidKey):
        x25519(pair.private, bytes.fromhex(point))


def test_private_keys_do_not_appear_in_repr(vectors):
    priv = vectors["alice"]["ik_priv"]
    pair = DHKeyPair(bytes.fromhex(priv))
    assert priv not in repr(pair) and repr(bytes.fromhex(priv)) not in repr(pair)


# --- header and envelope ------------------------------------------------------------------


def test_header_layout(vectors):
    raw = bytes.fromhex(vectors["conversation"][10]["header"])
    header = Header.from_bytes(raw)
    assert (header.pn, header.n) == (3, 0) and header.to_bytes() == raw
    for bad in (raw[:39], raw + b"\x00"):
        with pytest.raises(DecodeError):
            Header.from_bytes(bad)
    with pytest.raises(InvalidKey):
        Header.from_bytes(b"\xff" * 32 + raw[32:])


def test_envelopes_round_trip(prekey_envelope, msg_envelope):
    for wire in (prekey_envelope, msg_envelope):
        envelope = Envelope.from_dict(wire)
        assert envelope.to_dict() == wire
        assert Envelope.from_json(json.dumps(wire, indent=2)) == envelope


@pytest.mark.parametrize("v", [2, 0, "1", True, 1.0, None])
def test_envelope_wrong_version(msg_envelope, v):
    with pytest.raises(DecodeError):
        Envelope.from_dict({**msg_envelope, "v": v})
    del msg_envelope["v"]
    with pytest.raises(DecodeError):
        Envelope.from_dict(msg_envelope)


def test_prekey_present_iff_type_prekey(prekey_envelope, msg_envelope):
    with pytest.raises(DecodeError):
        Envelope.from_dict({**msg_envelope, "prekey": prekey_envelope["prekey"]})
    with pytest.raises(DecodeError):
        Envelope.from_dict({**prekey_envelope, "type": "msg"})
    without = {k: v for k, v in prekey_envelope.items() if k != "prekey"}
    with pytest.raises(DecodeError):
        Envelope.from_dict(without)
    with pytest.raises(DecodeError):
        Envelope.from_dict({**msg_envelope, "type": "PREKEY"})
    with pytest.raises(DecodeError):
        Envelope.from_dict({**msg_envelope, "prekey": None})


def test_unknown_members_are_ignored(prekey_envelope):
    expected = Envelope.from_dict(prekey_envelope)
    extended = copy.deepcopy(prekey_envelope)
    extended["server_ts"] = 1
    extended["from"]["display_name"] = "Alice"
    extended["prekey"]["future"] = {"x": [1]}
    assert Envelope.from_dict(extended) == expected


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("header",), "AAAA"),
        (("ct",), b64u_encode(bytes(15))),
        (("ct",), 5),
        (("from", "device_id"), 0),
        (("from", "device_id"), 2**31),
        (("from", "device_id"), True),
        (("from", "device_id"), "1"),
        (("to", "user_id"), ""),
        (("to", "user_id"), "u" * 256),
        (("to", "user_id"), "user:\x00bob"),
        (("to", "user_id"), "\ud800"),
        (("prekey", "ik"), b64u_encode(b"\xff" * 32)),
        (("prekey", "ek"), b64u_encode(bytes(31))),
        (("prekey", "isk"), b64u_encode(bytes(33))),
        (("prekey", "ik_sig"), b64u_encode(bytes(63))),
        (("prekey", "spk_id"), -1),
        (("prekey", "spk_id"), 2**32),
        (("prekey", "opk_id"), None),
        (("prekey", "opk_id"), 4.0),
    ],
)
def test_malformed_envelope_members(prekey_envelope, path, value):
    target = prekey_envelope
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(ProtocolError):
        Envelope.from_dict(prekey_envelope)


@pytest.mark.parametrize("member", ["from", "to", "header", "ct", "type"])
def test_missing_envelope_members(msg_envelope, member):
    del msg_envelope[member]
    with pytest.raises(DecodeError):
        Envelope.from_dict(msg_envelope)


@pytest.mark.parametrize(
    "text",
    [
        b"[]",
        b"1",
        b'{"v":1,"v":1}',
        b"\xff{}",
        b'{"v": NaN}',
        b"{",
        b'{"v":1}trailing',
    ],
)
def test_json_strictness(text):
    with pytest.raises(DecodeError):
        load_json_object(text)


def test_send_request(prekey_envelope, msg_envelope):
    request = SendRequest.build(
        "m-1", [Envelope.from_dict(prekey_envelope), Envelope.from_dict(msg_envelope)]
    )
    wire = request.to_dict()
    assert wire["v"] == 1 and wire["msg_id"] == "m-1" and len(wire["envelopes"]) == 2
    assert SendRequest.from_json(request.to_json()) == request
    with pytest.raises(DecodeError):
        SendRequest.from_dict({**wire, "v": 2})
    with pytest.raises(DecodeError):
        SendRequest.from_dict({**wire, "envelopes": {}})
    with pytest.raises(DecodeError):
        SendRequest.build("m-1", [Envelope.from_dict(msg_envelope)] * 2)


# --- content and padding ------------------------------------------------------------------


@pytest.mark.parametrize(("size", "padded"), [(0, 160), (1, 160), (159, 160), (160, 320)])
def test_pad_lengths(size, padded):
    data = b"\x80" * size
    assert len(pad(data)) == padded and unpad(pad(data)) == data


@pytest.mark.parametrize(
    "padded",
    [b"", bytes(160), b"a" * 160, b"a" * 158 + b"\x80\x01", b"a" * 100 + b"\x80" + bytes(58)],
)
def test_unpad_rejects(padded):
    with pytest.raises(DecodeError):
        unpad(padded)


def test_content_rules(vectors):
    text = vectors["conversation"][0]["content"].encode()
    content = Content.from_bytes(text)
    assert (content.t, content.mid, content.body, content.is_known_type) == (
        "text",
        "A0",
        "hello bob",
        True,
    )
    obj = json.loads(text)
    future = Content.from_dict({**obj, "t": "reaction", "emoji": "+1"})
    assert not future.is_known_type and future.t == "reaction"
    assert Content.from_dict({**obj, "unknown": [1]}) == content
    group = Content.from_dict({**obj, "g": {"id": b64u_encode(bytes(16)), "rev": 3}})
    assert group.g is not None and group.g.rev == 3
    assert Content.from_bytes(group.to_bytes()) == group
    bad_members = [
        {"v": 2},
        {"ts": True},
        {"ts": -1},
        {"t": "attachment"},
        {"g": {"id": b64u_encode(bytes(15)), "rev": 1}},
        {"body": 5},
    ]
    for bad in bad_members:
        with pytest.raises(DecodeError):
            Content.from_dict({**obj, **bad})


def test_attachment_content_vector(vectors):
    text = vectors["conversation"][7]["content"].encode()
    content = Content.from_bytes(text)
    att = vectors["attachment"]
    assert content.att is not None and content.body is None
    assert content.att.key.hex() == att["key"] and content.att.digest.hex() == att["digest"]
    assert content.to_bytes() == text
