"""Safety numbers (s8): the `fingerprints` vector and the properties the scheme relies on."""

from __future__ import annotations

import pytest

from semafore.protocol import (
    DecodeError,
    DHPublicKey,
    SigningPublicKey,
    fingerprint_digits,
    safety_number,
    user_fingerprint,
)


def _devices(pairs):
    return [
        (SigningPublicKey(bytes.fromhex(isk)), DHPublicKey(bytes.fromhex(ik))) for isk, ik in pairs
    ]


@pytest.fixture
def fp(vectors):
    v = vectors["fingerprints"]
    return (
        v,
        (vectors["alice"]["user_id"], _devices(v["alice_devices"])),
        (vectors["bob"]["user_id"], _devices(v["bob_devices"])),
    )


def test_user_fingerprints_and_digits(fp):
    v, alice, bob = fp
    for (user_id, devices), name in ((alice, "alice"), (bob, "bob")):
        fingerprint = user_fingerprint(user_id, devices)
        assert fingerprint.hex() == v[f"{name}_fingerprint"]
        assert fingerprint_digits(fingerprint) == v[f"{name}_digits"]
        assert user_fingerprint(user_id, list(reversed(devices))) == fingerprint  # sorted


def test_safety_number_is_the_same_on_both_sides(fp):
    v, alice, bob = fp
    mine, theirs = safety_number(*alice, *bob), safety_number(*bob, *alice)
    assert mine == theirs
    assert mine.digits == v["safety_number"]
    assert mine.scannable.hex() == v["scannable"]
    assert mine.display().split() == [v["safety_number"][i : i + 5] for i in range(0, 60, 5)]
    assert mine.matches_scanned(bytes.fromhex(v["scannable"]))
    assert not mine.matches_scanned(bytes.fromhex(v["scannable"])[:-1] + b"\x00")


def test_safety_number_changes_with_devices_and_user_ids(fp):
    _v, (alice_id, alice_devices), bob = fp
    base = safety_number(alice_id, alice_devices, *bob).digits
    assert safety_number(alice_id, alice_devices[:1], *bob).digits != base  # device removed
    assert safety_number("user:mallory", alice_devices, *bob).digits != base
    swapped = [
        (isk, ik) for (isk, _), (_, ik) in zip(alice_devices, alice_devices[::-1], strict=True)
    ]
    assert safety_number(alice_id, swapped, *bob).digits != base  # both keys count


def test_fingerprint_input_rules(fp):
    _, (alice_id, devices), _ = fp
    with pytest.raises(DecodeError):
        user_fingerprint(alice_id, [])
    with pytest.raises(DecodeError):
        user_fingerprint("", devices)
    with pytest.raises(DecodeError):
        fingerprint_digits(bytes(29))
