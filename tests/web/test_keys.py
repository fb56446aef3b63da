"""Key directory routes over TLS: upload, count, rotation, device list, bundle, rate limit."""

from __future__ import annotations

import ssl
from typing import Any

from semafore.protocol import Bundle, DeviceAddress, DHKeyPair
from semafore.protocol.binding import sign_signed_pre_key
from semafore.protocol.encoding import b64u_encode
from semafore.web.appkeys import SERVICES
from support.appliance import Appliance
from support.relay_client import RELAY_TEST_CONFIG, RelayDevice, setup_world


async def test_key_directory_round_trip(
    appliance: Appliance, start_server: Any, ca_ssl_context: ssl.SSLContext
) -> None:
    appliance.configure(relay={"bundle_fetches_per_minute": 7}, **RELAY_TEST_CONFIG)
    server = await start_server()
    world = await setup_world(server.app[SERVICES], [1, 1])
    alice_id, bob_id = list(world.members)
    alice = RelayDevice(server.url, ca_ssl_context, world.devices(alice_id)[0])
    bob = RelayDevice(server.url, ca_ssl_context, world.devices(bob_id)[0])
    try:
        status, body = await bob.request("GET", "/v1/keys/one-time-pre-keys")
        assert status == 200 and body == {"count": 5, "refill_below": 20, "refill": True}
        keys = [{"id": 100 + i, "key": b64u_encode(DHKeyPair.generate().public.data)}
                for i in range(20)]
        status, body = await bob.request("POST", "/v1/keys/one-time-pre-keys", {"keys": keys})
        assert status == 200 and body["count"] == 25 and body["refill"] is False

        spk = DHKeyPair.generate()
        rotation = {
            "id": 9,
            "key": b64u_encode(spk.public.data),
            "signature": b64u_encode(sign_signed_pre_key(bob.creds.keys.identity, spk.public)),
        }
        status, body = await bob.request("PUT", "/v1/keys/signed-pre-key", rotation)
        assert status == 200 and body == {"signed_pre_key_id": 9}

        status, listing = await alice.request("GET", f"/v1/users/{bob_id}/devices")
        assert status == 200 and [d["device_id"] for d in listing["devices"]] == [bob.address[1]]

        path = f"/v1/users/{bob_id}/devices/{bob.address[1]}/bundle"
        status, raw = await alice.request("GET", path)
        assert status == 200
        bundle = Bundle.from_dict(raw)
        bundle.verify(DeviceAddress(*bob.address))  # both signatures check out client-side
        assert bundle.signed_pre_key_id == 9 and bundle.one_time_pre_key_id is not None
        for _ in range(6):
            status, _ = await alice.request("GET", path)
        assert status == 200
        status, body = await alice.request("GET", path)
        assert status == 429 and body["code"] == "bundle_rate_limited"

        status, body = await alice.request("GET", f"/v1/users/{bob_id}/devices/0/bundle")
        assert status == 404
        status, body = await alice.request("GET", f"/v1/users/{bob_id}/devices/x/bundle")
        assert status == 404
    finally:
        await alice.close()
        await bob.close()
