"""End to end over TLS: a member with three devices, two online and one offline."""

from __future__ import annotations

from support.relay_client import wait_until_empty

MESSAGES = 5


async def test_online_devices_get_frames_offline_one_drains_later_all_queues_empty(
    relay_env,  # type: ignore[no-untyped-def]
) -> None:
    world = await relay_env.world([2, 3])
    alice_id, bob_id = list(world.members)
    a1, a2 = (relay_env.device(c) for c in world.devices(alice_id))
    b1, b2, b3 = (relay_env.device(c) for c in world.devices(bob_id))

    ws1 = await b1.ws()  # token in the Authorization header
    ws2 = await b2.ws(header_auth=False)  # token in the first frame
    for ws in (ws1, ws2):
        assert (await ws.next_frame())["type"] == "ready"
        await ws.until("queue_empty")

    targets = [b1.address, b2.address, b3.address, a2.address]
    sent = []
    for _ in range(MESSAGES):
        status, body = await a1.send(targets)
        assert status == 200, body
        assert body["stored"] == 4
        sent.append(body)

    for ws in (ws1, ws2):
        items = await ws.receive_items(MESSAGES)
        assert len(items) == MESSAGES
        assert all(item["envelope"]["from"]["device_id"] == a1.address[1] for item in items)
        assert [int(i["id"]) for i in items] == sorted(int(i["id"]) for i in items)
        await ws.ack([item["id"] for item in items])

    # The offline device connects later and drains its backlog, then hears "queue_empty".
    ws3 = await b3.ws()
    assert (await ws3.next_frame())["type"] == "ready"
    await ws3.until("queue_empty")
    assert len(ws3.received) == MESSAGES
    await ws3.ack([item["id"] for item in ws3.received])

    # The sender's other device uses the HTTP fetch-and-ack path.
    status, body = await a2.fetch()
    assert status == 200 and len(body["messages"]) == MESSAGES and body["more"] is False
    status, body = await a2.ack([m["id"] for m in body["messages"]])
    assert status == 200 and body == {"acked": MESSAGES}

    for device in (b1, b2, b3, a2, a1):
        await wait_until_empty(device)
    assert await relay_env.total_depth() == 0
    for ws in (ws1, ws2, ws3):
        await ws.close()
