"""Key directory: atomic one-time pre key hand-out, uploads, rotation, device lists."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from semafore.protocol import DHKeyPair
from semafore.protocol.binding import sign_signed_pre_key
from semafore.protocol.encoding import b64u_encode
from semafore.services import Conflict, InvalidInput, NotFound, RateLimited, TooLarge
from support.identity import EnrollingDevice
from support.relay_client import messaging_env


def _keys(ids: range) -> list[dict[str, object]]:
    return [{"id": i, "key": b64u_encode(DHKeyPair.generate().public.data)} for i in ids]


async def test_a_thousand_concurrent_fetches_never_hand_out_one_pre_key_twice(
    tmp_path: Path,
) -> None:
    async with messaging_env(tmp_path, relay={"bundle_fetches_per_minute": 100_000}) as env:
        world = await env.world([1, 1])
        alice_id, bob_id = list(world.members)
        alice, bob = world.devices(alice_id)[0], world.devices(bob_id)[0]
        keys = env.messaging.keys
        await keys.upload_one_time_pre_keys(bob.address, {"keys": _keys(range(1000, 1100))})
        await keys.upload_one_time_pre_keys(bob.address, {"keys": _keys(range(2000, 2100))})
        await keys.upload_one_time_pre_keys(bob.address, {"keys": _keys(range(3000, 3100))})
        stored = (await keys.pre_key_status(bob.address))["count"]
        assert stored == 305  # 5 from enrolment

        bundles = await asyncio.gather(*(
            keys.bundle(alice.address, world.org_id, bob_id, bob.device_id) for _ in range(1000)
        ))
        handed = [b["one_time_pre_key_id"] for b in bundles if "one_time_pre_key_id" in b]
        assert len(handed) == stored
        assert len(set(handed)) == len(handed)
        assert sum("one_time_pre_key" not in b for b in bundles) == 1000 - stored
        status = await keys.pre_key_status(bob.address)
        assert status == {"count": 0, "refill_below": 20, "refill": True}


async def test_bundle_fetches_are_rate_limited_per_requester_and_target(tmp_path: Path) -> None:
    async with messaging_env(tmp_path, relay={"bundle_fetches_per_minute": 3}) as env:
        world = await env.world([1, 2])
        alice_id, bob_id = list(world.members)
        alice = world.devices(alice_id)[0]
        b1, b2 = world.devices(bob_id)
        keys = env.messaging.keys
        for _ in range(3):
            await keys.bundle(alice.address, world.org_id, bob_id, b1.device_id)
        with pytest.raises(RateLimited) as caught:
            await keys.bundle(alice.address, world.org_id, bob_id, b1.device_id)
        assert caught.value.retry_after >= 1
        await keys.bundle(alice.address, world.org_id, bob_id, b2.device_id)  # another target


async def test_uploads_are_bounded_and_validated(tmp_path: Path) -> None:
    async with messaging_env(tmp_path, relay={"opk_max_stored": 150}) as env:
        world = await env.world([1])
        (device,) = world.devices(next(iter(world.members)))
        keys = env.messaging.keys
        with pytest.raises(TooLarge):
            await keys.upload_one_time_pre_keys(device.address, {"keys": _keys(range(101))})
        with pytest.raises(InvalidInput):
            await keys.upload_one_time_pre_keys(
                device.address, {"keys": [{"id": 1, "key": "not base64!"}]}
            )
        non_canonical = b64u_encode(b"\xff" * 32)
        with pytest.raises(InvalidInput):
            await keys.upload_one_time_pre_keys(
                device.address, {"keys": [{"id": 7, "key": non_canonical}]}
            )
        await keys.upload_one_time_pre_keys(device.address, {"keys": _keys(range(100, 200))})
        with pytest.raises(Conflict):
            await keys.upload_one_time_pre_keys(device.address, {"keys": _keys(range(200, 300))})
        status = await keys.upload_one_time_pre_keys(
            device.address, {"keys": _keys(range(300, 310)), "replace": True}
        )
        assert status["count"] == 10 and status["refill"] is True


async def test_signed_pre_key_rotation_checks_the_signature_and_keeps_the_old_one(
    tmp_path: Path,
) -> None:
    async with messaging_env(tmp_path) as env:
        world = await env.world([1, 1])
        alice_id, bob_id = list(world.members)
        alice, bob = world.devices(alice_id)[0], world.devices(bob_id)[0]
        keys = env.messaging.keys
        spk = DHKeyPair.generate()
        good = sign_signed_pre_key(bob.keys.identity, spk.public)
        forged = sign_signed_pre_key(alice.keys.identity, spk.public)
        body = {"id": 2, "key": b64u_encode(spk.public.data), "signature": b64u_encode(forged)}
        with pytest.raises(InvalidInput) as caught:
            await keys.rotate_signed_pre_key(bob.address, body)
        assert caught.value.code == "invalid_signature"
        body["signature"] = b64u_encode(good)
        assert await keys.rotate_signed_pre_key(bob.address, body) == {"signed_pre_key_id": 2}
        bundle = await keys.bundle(alice.address, world.org_id, bob_id, bob.device_id)
        assert bundle["signed_pre_key_id"] == 2
        assert bundle["signed_pre_key"] == b64u_encode(spk.public.data)
        store = env.messaging.expiry._keydir._store  # the retired key is on record
        assert await store.retired_signed_pre_key_ids(bob.address) == [1]


async def test_device_list_shows_approved_devices_of_the_same_org_only(tmp_path: Path) -> None:
    async with messaging_env(tmp_path) as env:
        world = await env.world([1, 2])
        other = await env.world([1], phone_base=7700900700)
        alice_id, bob_id = list(world.members)
        listing = await env.messaging.keys.device_list(world.org_id, bob_id)
        assert [d["device_id"] for d in listing["devices"]] == [
            c.device_id for c in world.devices(bob_id)
        ]
        first = listing["devices"][0]
        assert first["identity_key"] == b64u_encode(world.devices(bob_id)[0].keys.identity.ik.data)
        assert set(first) == {
            "device_id", "identity_key", "identity_signing_key", "identity_binding_signature"
        }
        with pytest.raises(NotFound):
            await env.messaging.keys.device_list(other.org_id, bob_id)
        # A pending device never appears, and has no bundle.
        phone = "+447700900101"
        await env.services.enrolment.request_code(phone, client_address="192.0.2.1")
        code = (await env.identity.codes_for(phone))[-1]
        ticket = await env.services.enrolment.verify_code(phone, code)
        pending = EnrollingDevice().registration(ticket.user_id, ticket.device_id)
        await env.services.enrolment.register(ticket.ticket, pending)
        listing = await env.messaging.keys.device_list(world.org_id, bob_id)
        assert len(listing["devices"]) == 2
        with pytest.raises(NotFound):
            alice = world.devices(alice_id)[0]
            await env.messaging.keys.bundle(alice.address, world.org_id, bob_id, ticket.device_id)
