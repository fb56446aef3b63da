"""The identity-change rule (s8.3) as a pure decision table, and the identity store."""

from __future__ import annotations

import pytest

from semafore.protocol import (
    ContactIdentity,
    DecodeError,
    DeviceAddress,
    DHKeyPair,
    IdentityKeyPair,
    IdentityStatus,
    IdentityStore,
    UnknownIdentity,
)
from semafore.protocol.identity import decide

BOB1, BOB2 = DeviceAddress("user:bob", 1), DeviceAddress("user:bob", 2)


def _keys(seed: int):
    identity = IdentityKeyPair(DHKeyPair(bytes([seed]) * 32), bytes([seed + 100]) * 32)
    return identity.isk, identity.ik


@pytest.mark.parametrize("verified", [False, True])
def test_decision_table(verified):
    k1, k2, k3 = _keys(1), _keys(2), _keys(3)
    status, contact = decide(None, BOB1, *k1)
    assert status is IdentityStatus.FIRST_USE and not contact.verified
    contact = ContactIdentity("user:bob", contact.devices, verified)

    status, same = decide(contact, BOB1, *k1)
    assert status is IdentityStatus.UNCHANGED and same == contact

    rekeyed_status, rekeyed = decide(contact, BOB1, *k2)
    new_status, added = decide(contact, BOB2, *k3)
    if verified:
        assert rekeyed_status is new_status is IdentityStatus.BLOCKED
        assert not rekeyed.verified and not added.verified  # safety number changed
        assert rekeyed.devices[1].needs_confirmation and added.devices[2].needs_confirmation
        assert not added.devices[1].needs_confirmation
        # Seeing the held identity again is still blocked until the user confirms, and so
        # is yet another identity for the held device (no unblocking by changing twice).
        assert decide(rekeyed, BOB1, *k2)[0] is IdentityStatus.BLOCKED
        again_status, again = decide(rekeyed, BOB1, *k3)
        assert again_status is IdentityStatus.BLOCKED and again.devices[1].needs_confirmation
    else:
        assert rekeyed_status is IdentityStatus.CHANGED
        assert new_status is IdentityStatus.NEW_DEVICE
        assert (rekeyed.devices[1].isk, rekeyed.devices[1].ik) == k2
        assert not any(d.needs_confirmation for d in added.devices.values())
    assert rekeyed_status.should_warn and new_status.should_warn
    assert rekeyed_status.may_send is (not verified)


def test_store_confirm_verify_and_remove():
    store = IdentityStore()
    status, contact = store.assess(BOB1, *_keys(1))
    assert status is IdentityStatus.FIRST_USE and store.contact("user:bob") is None  # pure
    store.put(contact)
    assert store.may_send(BOB1) and not store.may_send(BOB2)
    store.set_verified("user:bob")
    status, changed = store.assess(BOB1, *_keys(2))
    store.put(changed)
    assert status is IdentityStatus.BLOCKED and not store.may_send(BOB1)
    store.confirm(BOB1)
    assert store.may_send(BOB1) and not store.contact("user:bob").verified
    store.set_verified("user:bob")
    store.remove_device(BOB1)
    assert not store.contact("user:bob").verified and store.known_device(BOB1) is None
    assert store.fingerprint_devices("user:bob") == []
    with pytest.raises(UnknownIdentity):
        store.confirm(BOB2)
    with pytest.raises(UnknownIdentity):
        store.set_verified("user:nobody")


def test_contact_serialisation_is_strict():
    contact = decide(None, BOB1, *_keys(1))[1].with_device(
        2, decide(None, BOB2, *_keys(2))[1].devices[2]
    )
    data = contact.to_dict()
    assert ContactIdentity.from_dict(data) == contact
    assert ContactIdentity.from_bytes(contact.to_bytes()) == contact
    for broken in (
        {**data, "verified": 1},
        {**data, "devices": {}},
        {**data, "devices": data["devices"] * 2},
        {**data, "devices": [{**data["devices"][0], "device_id": 0}]},
        {**data, "devices": [{**data["devices"][0], "needs_confirmation": "no"}]},
        {**data, "devices": [5]},
    ):
        with pytest.raises(DecodeError):
            ContactIdentity.from_dict(broken)
