"""Malformed envelopes and keys, over HTTP and the WebSocket: each is a 400 (413 for limits)
with a stable code, and nothing is stored."""

from __future__ import annotations

import copy
import ssl
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from semafore.protocol.encoding import b64u_encode
from semafore.web.appkeys import SERVICES
from support.appliance import Appliance
from support.relay_client import RELAY_TEST_CONFIG, RelayDevice, send_body, setup_world

Body = dict[str, Any]
P = 2**255 - 19


def edit(change: Callable[[Body], Any]) -> Callable[[Body], Body]:
    def apply(body: Body) -> Body:
        body = copy.deepcopy(body)
        change(body)
        return body
    return apply


def env(key: str, value: Any) -> Callable[[Body], Body]:
    return edit(lambda b: b["envelopes"][0].__setitem__(key, value))


def drop(key: str) -> Callable[[Body], Body]:
    return edit(lambda b: b["envelopes"][0].pop(key))


SEND_CASES: list[tuple[str, Callable[[Body], Body], int, str]] = [
    ("v 2", edit(lambda b: b.__setitem__("v", 2)), 400, "unsupported_version"),
    ("v string", edit(lambda b: b.__setitem__("v", "1")), 400, "unsupported_version"),
    ("v missing", edit(lambda b: b.pop("v")), 400, "unsupported_version"),
    ("envelope v 0", env("v", 0), 400, "unsupported_version"),
    ("msg_id missing", edit(lambda b: b.pop("msg_id")), 400, "invalid_msg_id"),
    ("msg_id long", edit(lambda b: b.__setitem__("msg_id", "a" * 65)), 400, "invalid_msg_id"),
    ("msg_id chars", edit(lambda b: b.__setitem__("msg_id", "a/b")), 400, "invalid_msg_id"),
    ("msg_id number", edit(lambda b: b.__setitem__("msg_id", 7)), 400, "invalid_msg_id"),
    ("envelopes empty", edit(lambda b: b.__setitem__("envelopes", [])), 400,
     "invalid_envelope"),
    ("envelopes object", edit(lambda b: b.__setitem__("envelopes", {})), 400,
     "invalid_envelope"),
    ("envelope string", edit(lambda b: b.__setitem__("envelopes", ["x"])), 400,
     "invalid_envelope"),
    ("type missing", drop("type"), 400, "invalid_envelope"),
    ("type unknown", env("type", "plain"), 400, "invalid_envelope"),
    ("to missing", drop("to"), 400, "invalid_envelope"),
    ("from missing", drop("from"), 400, "invalid_envelope"),
    ("to device string", edit(lambda b: b["envelopes"][0]["to"].__setitem__("device_id", "1")),
     400, "invalid_envelope"),
    ("to device negative", edit(lambda b: b["envelopes"][0]["to"].__setitem__(
        "device_id", -1)), 400, "invalid_envelope"),
    ("to device huge", edit(lambda b: b["envelopes"][0]["to"].__setitem__(
        "device_id", 2**70)), 400, "invalid_envelope"),
    ("to user list", edit(lambda b: b["envelopes"][0]["to"].__setitem__("user_id", [])),
     400, "invalid_envelope"),
    ("from other", edit(lambda b: b["envelopes"][0]["from"].__setitem__("device_id", 9)),
     400, "wrong_sender"),
    ("twice", edit(lambda b: b["envelopes"].append(b["envelopes"][0])), 400,
     "duplicate_target"),
    ("envelope big", env("ct", "A" * 5000), 413, "envelope_too_large"),
    ("envelopes many", edit(lambda b: b.__setitem__("envelopes", b["envelopes"] * 11)), 413,
     "too_many_envelopes"),
]
RAW_CASES: list[tuple[str, bytes]] = [
    ("not json", b"{not json"),
    ("array", b"[]"),
    ("duplicate key", b'{"v":1,"v":1}'),
    ("nan", b'{"v":NaN}'),
    ("not utf-8", b'{"v":"\xff"}'),
    ("deep", b'{"a":' * 100_00 + b"1" + b"}" * 100_00),
    ("empty", b""),
]


@pytest.fixture
async def devices(
    appliance: Appliance, start_server: Any, ca_ssl_context: ssl.SSLContext
) -> AsyncIterator[tuple[RelayDevice, RelayDevice]]:
    appliance.configure(relay={"envelope_max_bytes": 4096, "send_max_envelopes": 10,
                               "opk_max_per_upload": 20}, **RELAY_TEST_CONFIG)
    server = await start_server()
    world = await setup_world(server.app[SERVICES], [1, 1])
    alice, bob = (RelayDevice(server.url, ca_ssl_context, world.devices(u)[0])
                  for u in world.members)
    yield alice, bob
    await alice.close()
    await bob.close()


async def raw_post(device: RelayDevice, path: str, data: bytes) -> tuple[int, Any]:
    async with device.session.post(device.base_url + path, data=data,
                                   headers={"Content-Type": "application/json"}) as response:
        return response.status, await response.json(content_type=None)


async def test_malformed_sends_are_refused_with_stable_codes_and_store_nothing(
    devices: tuple[RelayDevice, RelayDevice],
) -> None:
    alice, bob = devices
    valid = send_body(alice.address, [bob.address])
    ws = await alice.ws()
    await ws.until("queue_empty")
    for name, change, status, code in SEND_CASES:
        body = change(valid)
        answer = await alice.request("POST", "/v1/messages", body)
        assert answer[0] == status and answer[1]["code"] == code, (name, answer)
        await ws.send_frame({**body, "type": "send"})
        frame = await ws.until("error")
        assert frame["code"] == code, (name, frame)
    for name, data in RAW_CASES:
        status, problem = await raw_post(alice, "/v1/messages", data)
        assert (status, problem["code"]) == (400, "invalid_json"), (name, problem)
        if name != "not utf-8":  # a text frame is UTF-8 by definition
            await ws.ws.send_str(data.decode() or " ")
            assert (await ws.until("error"))["code"] == "invalid_json", name
    await ws.close()
    status, queued = await bob.fetch()
    assert status == 200 and queued["messages"] == []
    assert (await alice.request("POST", "/v1/messages", valid))[0] == 200  # still works


def key(value: bytes) -> str:
    return b64u_encode(value)


GOOD = key(bytes([9]) + bytes(31))
KEY_CASES: list[tuple[str, Any, int, str]] = [
    ("padded", [{"id": 1, "key": GOOD + "="}], 400, "invalid_pre_keys"),
    ("std alphabet", [{"id": 1, "key": "+/" + GOOD[2:]}], 400, "invalid_pre_keys"),
    ("short", [{"id": 1, "key": key(bytes(31))}], 400, "invalid_pre_keys"),
    ("long", [{"id": 1, "key": key(bytes(33))}], 400, "invalid_pre_keys"),
    ("non-canonical (>= p)", [{"id": 1, "key": key((P + 1).to_bytes(32, "little"))}], 400,
     "invalid_pre_keys"),
    ("high bit", [{"id": 1, "key": key(bytes(31) + b"\x80")}], 400, "invalid_pre_keys"),
    ("id negative", [{"id": -1, "key": GOOD}], 400, "invalid_pre_keys"),
    ("id huge", [{"id": 2**32, "key": GOOD}], 400, "invalid_pre_keys"),
    ("id float", [{"id": 1.5, "key": GOOD}], 400, "invalid_pre_keys"),
    ("id twice", [{"id": 1, "key": GOOD}, {"id": 1, "key": GOOD}], 400, "invalid_pre_keys"),
    ("key missing", [{"id": 1}], 400, "invalid_pre_keys"),
    ("not a list", {"id": 1, "key": GOOD}, 400, "invalid_pre_keys"),
    ("empty", [], 400, "invalid_pre_keys"),
    ("huge array", [{"id": i, "key": GOOD} for i in range(5000)], 413, "too_many_keys"),
]


async def test_malformed_keys_are_refused_with_stable_codes_and_store_nothing(
    devices: tuple[RelayDevice, RelayDevice],
) -> None:
    alice, _ = devices
    status, before = await alice.request("GET", "/v1/keys/one-time-pre-keys")
    assert status == 200
    for name, keys, status, code in KEY_CASES:
        answer = await alice.request("POST", "/v1/keys/one-time-pre-keys", {"keys": keys})
        assert answer[0] == status and answer[1]["code"] == code, (name, answer)
    spk = {"id": 7, "key": GOOD, "signature": key(bytes(64))}
    for name, change, code in [
        ("bad signature", {}, "invalid_signature"),
        ("short signature", {"signature": key(bytes(63))}, "invalid_signed_pre_key"),
        ("padded key", {"key": GOOD + "="}, "invalid_pre_keys"),
        ("non-canonical key", {"key": key((P + 3).to_bytes(32, "little"))}, "invalid_pre_keys"),
        ("id string", {"id": "7"}, "invalid_pre_keys"),
    ]:
        answer = await alice.request("PUT", "/v1/keys/signed-pre-key", {**spk, **change})
        assert answer[0] == 400 and answer[1]["code"] == code, (name, answer)
    assert await alice.request("GET", "/v1/keys/one-time-pre-keys") == (200, before)
    status, bundle = await alice.request(
        "GET", f"/v1/users/{alice.address[0]}/devices/{alice.address[1]}/bundle")
    assert status == 200 and bundle["signed_pre_key_id"] == 1  # the registered one, unchanged
