"""Message routes over TLS: body rules, limits, fetch paging, acks."""

from __future__ import annotations

import ssl
from typing import Any

import aiohttp

from semafore.web.appkeys import SERVICES
from support.appliance import Appliance
from support.relay_client import RELAY_TEST_CONFIG, RelayDevice, send_body, setup_world


async def test_send_fetch_ack_and_refusals(
    appliance: Appliance, start_server: Any, ca_ssl_context: ssl.SSLContext
) -> None:
    appliance.configure(relay={"send_max_bytes": 8192, "envelope_max_bytes": 4096},
                        **RELAY_TEST_CONFIG)
    server = await start_server()
    world = await setup_world(server.app[SERVICES], [1, 1])
    alice_id, bob_id = list(world.members)
    alice = RelayDevice(server.url, ca_ssl_context, world.devices(alice_id)[0])
    bob = RelayDevice(server.url, ca_ssl_context, world.devices(bob_id)[0])
    try:
        for _ in range(5):
            assert (await alice.send([bob.address]))[0] == 200
        status, page = await bob.fetch(limit=2)
        assert status == 200 and len(page["messages"]) == 2 and page["more"] is True
        assert all(isinstance(m["id"], str) and isinstance(m["ts"], int) for m in page["messages"])
        status, again = await bob.fetch(limit=2)
        assert again == page  # unacked envelopes come back
        status, body = await bob.ack([m["id"] for m in page["messages"]])
        assert body == {"acked": 2}
        status, rest = await bob.fetch()
        assert len(rest["messages"]) == 3 and rest["more"] is False

        status, body = await bob.fetch(limit=0)
        assert status == 400 and body["code"] == "invalid_limit"
        status, body = await bob.request("POST", "/v1/messages/ack", {"ids": []})
        assert status == 400 and body["code"] == "invalid_ack"

        big = send_body(alice.address, [bob.address], ct=b"x" * 9000)
        status, body = await alice.request("POST", "/v1/messages", big)
        assert status == 413 and body["code"] == "payload_too_large"

        async with alice.session.post(
            alice.base_url + "/v1/messages", data=b"{}", headers={"Content-Type": "text/plain"}
        ) as response:
            assert response.status == 415
        async with aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=ca_ssl_context)
        ) as anonymous, anonymous.get(server.url + "/v1/messages") as response:
            assert response.status == 401
    finally:
        await alice.close()
        await bob.close()
