"""The client's session layer over an in-memory relay: fan-out, sibling devices, groups,
out-of-order and offline delivery, 409 repair, identity changes, pre key upkeep."""

from __future__ import annotations

from pathlib import Path

import pytest

from semafore.client.errors import UnknownContact, UntrustedIdentity
from semafore.protocol import DeviceAddress

from .memory_relay import MemoryRelay, make_device, reopen


@pytest.fixture
def relay() -> MemoryRelay:
    return MemoryRelay()


def bodies(received) -> list[str]:
    return [r.content.body for r in received]


async def test_conversation_with_second_device_seeing_both_sides(relay, tmp_path: Path):
    alice = await make_device(relay, tmp_path / "a1", "alice", 1)
    alice2 = await make_device(relay, tmp_path / "a2", "alice", 2)
    bob = await make_device(relay, tmp_path / "b1", "bob", 1)

    result = await alice.send_text("bob", "hello bob")
    assert result.devices == 2  # bob/1 and alice/2
    got = await bob.drain()
    assert bodies(got) == ["hello bob"]
    assert got[0].sender == DeviceAddress("alice", 1)

    await bob.send_text("alice", "hi alice")
    assert bodies(await alice.drain()) == ["hi alice"]
    sibling = await alice2.drain()
    assert bodies(sibling) == ["hello bob", "hi alice"]
    assert sibling[0].extra["to"] == "bob"  # the copy of alice's own message says to whom

    # alice has decrypted from bob: no more pre-key envelopes to him (s7.3). alice/2 never
    # answered alice/1, so that session still carries the pre-key block.
    await alice.send_text("bob", "second")
    types = {e["to"]["user_id"]: e["type"] for e in relay.requests[-1]["envelopes"]}
    assert types == {"bob": "msg", "alice": "prekey"}
    assert bodies(await bob.drain()) == ["second"]


async def test_out_of_order_and_offline_delivery(relay, tmp_path: Path):
    alice = await make_device(relay, tmp_path / "a", "alice", 1)
    bob = await make_device(relay, tmp_path / "b", "bob", 1)
    bob.relay.hold = True  # bob is offline
    for i in range(5):
        await alice.send_text("bob", f"m{i}")
    queue = relay.devices[bob.address].queue
    queue.reverse()  # delivered in the worst order
    bob.relay.hold = False
    got = await bob.drain()
    assert sorted(bodies(got)) == [f"m{i}" for i in range(5)]
    assert relay.devices[bob.address].queue == []  # everything acked


async def test_redelivery_is_acked_without_a_second_copy(relay, tmp_path: Path):
    alice = await make_device(relay, tmp_path / "a", "alice", 1)
    bob = await make_device(relay, tmp_path / "b", "bob", 1)
    await alice.send_text("bob", "once")
    (delivery,) = await bob.relay.fetch()
    assert bodies([await bob.handle(delivery)]) == ["once"]
    # The server did not see the ack (crash after COMMIT): it redelivers the same envelope.
    assert await bob.handle(delivery) is None
    # Same envelope under a new server id: the ratchet's duplicate check catches it.
    from semafore.client.relay import Delivery

    assert await bob.handle(Delivery("other-id", delivery.envelope)) is None
    assert len(bob.messenger.messages.history()) == 1


async def test_group_of_three(relay, tmp_path: Path):
    alice = await make_device(relay, tmp_path / "a", "alice", 1)
    bob = await make_device(relay, tmp_path / "b", "bob", 1)
    carol = await make_device(relay, tmp_path / "c", "carol", 1)
    dave = await make_device(relay, tmp_path / "d", "dave", 1)

    group = await alice.group_create("project", ["bob", "carol"])
    await bob.drain()
    await carol.drain()
    assert bob.messenger.groups.find("project").members == ("alice", "bob", "carol")

    await bob.send_group(bob.messenger.groups.find("project"), "hello group")
    assert bodies(await alice.drain()) == ["hello group"]
    got = await carol.drain()
    assert bodies(got) == ["hello group"] and got[0].content.g.id == group.id

    group = await alice.group_change(group, add=["dave"], remove=["carol"])
    for d in (bob, carol, dave):
        await d.drain()
    assert dave.messenger.groups.find("project").members == ("alice", "bob", "dave")
    assert carol.messenger.groups.find("project").members == ("alice", "bob", "dave")
    await alice.send_group(group, "without carol")
    assert bodies(await dave.drain()) == ["without carol"]
    assert await carol.drain() == []


async def test_new_device_during_send_is_repaired_after_409(relay, tmp_path: Path):
    alice = await make_device(relay, tmp_path / "a", "alice", 1)
    bob = await make_device(relay, tmp_path / "b", "bob", 1)
    await alice.send_text("bob", "first")
    await bob.drain()

    # bob adds a device between alice's device-list fetch and her POST.
    real_send = alice.relay.send
    added: dict = {}
    attempts: list = []

    async def send_then_add(request):
        attempts.append(request)
        if not added:
            added["bob2"] = await make_device(relay, tmp_path / "b2", "bob", 2)
        await real_send(request)

    alice.relay.send = send_then_add  # type: ignore[method-assign]
    await alice.send_text("bob", "after 409")
    assert bodies(await added["bob2"].drain()) == ["after 409"]
    assert bodies(await bob.drain()) == ["after 409"]
    # The envelope for bob/1 was resent as stored, not re-encrypted (PROTOCOL s6.4).
    assert len(attempts) == 2
    first, second = ({e["to"]["device_id"]: e for e in a["envelopes"]} for a in attempts)
    assert set(first) == {1} and set(second) == {1, 2}
    assert first[1] == second[1]


async def test_unknown_user_is_a_clear_error(relay, tmp_path: Path):
    alice = await make_device(relay, tmp_path / "a", "alice", 1)
    with pytest.raises(UnknownContact, match="unknown user nobody"):
        await alice.send_text("nobody", "hi")


async def test_verified_contact_with_new_device_blocks_until_confirmed(relay, tmp_path: Path):
    alice = await make_device(relay, tmp_path / "a", "alice", 1)
    bob = await make_device(relay, tmp_path / "b", "bob", 1)
    await alice.send_text("bob", "hi")
    with alice.state.step() as m:
        m.set_verified("bob")
    await make_device(relay, tmp_path / "b2", "bob", 2)

    with pytest.raises(UntrustedIdentity, match="bob"):
        await alice.send_text("bob", "blocked")
    notices = alice.state.take_notices()
    assert any("blocked" in n for n in notices)
    assert not alice.state.manager.identities.contact("bob").verified

    with alice.state.step() as m:
        m.set_verified("bob")  # the user compared the new safety number
    await alice.send_text("bob", "now allowed")
    assert bodies(await bob.drain())[-1] == "now allowed"


async def test_unverified_contact_new_device_warns_and_sends(relay, tmp_path: Path):
    alice = await make_device(relay, tmp_path / "a", "alice", 1)
    await make_device(relay, tmp_path / "b", "bob", 1)
    await alice.send_text("bob", "hi")
    await make_device(relay, tmp_path / "b2", "bob", 2)
    await alice.send_text("bob", "hi again")
    assert any("new device" in n for n in alice.state.take_notices())


async def test_state_survives_restart(relay, tmp_path: Path):
    alice = await make_device(relay, tmp_path / "a", "alice", 1)
    bob = await make_device(relay, tmp_path / "b", "bob", 1)
    await alice.send_text("bob", "before restart")
    bob = reopen(bob, relay)
    assert bodies(await bob.drain()) == ["before restart"]
    alice = reopen(alice, relay)
    await bob.send_text("alice", "reply")
    assert bodies(await alice.drain()) == ["reply"]


async def test_one_time_pre_keys_refilled_below_the_mark(relay, tmp_path: Path):
    bob = await make_device(relay, tmp_path / "b", "bob", 1)
    server = relay.devices[bob.address]
    assert len(server.opks) == 100
    for opk_id in list(server.opks)[:85]:
        del server.opks[opk_id]
    await bob.maintain_pre_keys()
    assert len(server.opks) == 100
    assert min(server.opks) > 85  # ids are never reused


async def test_signed_pre_key_rotation_keeps_the_old_one(relay, tmp_path: Path):
    clock = {"now": 1_800_000_000.0}
    alice = await make_device(relay, tmp_path / "a", "alice", 1)
    bob = await make_device(relay, tmp_path / "b", "bob", 1, clock=lambda: clock["now"])
    first_spk = relay.devices[bob.address].spk[0]
    bob.relay.hold = True
    await alice.send_text("bob", "sent to the old SPK")
    clock["now"] += 8 * 86400
    await bob.maintain_pre_keys()
    assert relay.devices[bob.address].spk[0] != first_spk
    bob.relay.hold = False
    assert bodies(await bob.drain()) == ["sent to the old SPK"]
    clock["now"] += 31 * 86400
    await bob.maintain_pre_keys()
    ids = [k.key_id for k in bob.state.manager.device.signed_pre_keys]
    assert first_spk not in ids


async def test_first_contact_with_several_devices_is_no_change(relay, tmp_path: Path):
    alice = await make_device(relay, tmp_path / "a", "alice", 1)
    await make_device(relay, tmp_path / "b1", "bob", 1)
    await make_device(relay, tmp_path / "b2", "bob", 2)
    await alice.send_text("bob", "hello both")
    assert alice.state.take_notices() == []
