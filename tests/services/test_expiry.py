"""The expiry sweep removes only rows older than the TTL."""

from __future__ import annotations

from pathlib import Path

from semafore.services import ManualClock
from support.relay_client import messaging_env, send_body

DAY = 86_400


async def test_rows_older_than_the_ttl_go_younger_ones_stay(tmp_path: Path) -> None:
    clock = ManualClock()
    async with messaging_env(tmp_path, clock=clock, relay={"message_ttl_days": 30}) as env:
        world = await env.world([1, 1])
        alice_id, bob_id = list(world.members)
        alice, bob = world.devices(alice_id)[0], world.devices(bob_id)[0]
        relay = env.messaging.relay
        old = send_body(alice.address, [bob.address], msg_id="old")
        await relay.send(alice.address, world.org_id, old)
        clock.advance(20 * DAY)
        await relay.send(alice.address, world.org_id, send_body(alice.address, [bob.address]))
        assert await env.messaging.expiry.sweep() == 0
        clock.advance(11 * DAY)
        assert await env.messaging.expiry.sweep() == 1
        rows, _ = await relay.fetch(bob.address, None)
        assert len(rows) == 1
        # The idempotency record of "old" is gone too (past its 24 hours): a resend is new.
        answer = await relay.send(alice.address, world.org_id, old)
        assert answer.ts == int(clock.now() * 1000)
