"""Hypothesis mutates one field of a valid send (any JSON value, or the field removed) and sends
it as a WebSocket ``send`` frame and as ``POST /v1/messages`` to a real ``semafore serve``:
every frame gets exactly one ``sent`` or ``error`` answer with a documented code, the socket
stays open, and HTTP answers the same code with its documented status."""

from __future__ import annotations

import asyncio
import copy
import json
import ssl
from typing import Any

import aiohttp
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from robustness.conftest import Served
from support.relay_client import send_body

STATUS_FOR_CODE = {
    "invalid_json": 400, "unsupported_version": 400, "invalid_msg_id": 400,
    "invalid_envelope": 400, "wrong_sender": 400, "duplicate_target": 400,
    "too_many_envelopes": 413, "envelope_too_large": 413, "payload_too_large": 413,
    "device_list_stale": 409, "recipient_not_found": 404, "queue_full": 409,
}
PATHS = ["v", "msg_id", "envelopes", "envelopes.0", "envelopes.0.v", "envelopes.0.type",
         "envelopes.0.from", "envelopes.0.to", "envelopes.0.to.user_id",
         "envelopes.0.to.device_id", "envelopes.0.from.user_id", "envelopes.0.from.device_id",
         "envelopes.0.ct", "envelopes.0.header"]
DELETE = object()
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                 max_size=3),
    max_leaves=8,
)
mutations = st.lists(st.tuples(st.sampled_from(PATHS), json_values | st.just(DELETE)),
                     min_size=1, max_size=2)


def mutate(body: dict[str, Any], changes: list[tuple[str, Any]]) -> dict[str, Any]:
    """Set (or delete) each path that still exists after the earlier changes."""
    body = copy.deepcopy(body)
    for path, value in changes:
        *parents, last = path.split(".")
        node: Any = body
        for part in parents:
            node = step(node, part)
        if isinstance(node, list) and last.isdigit() and int(last) < len(node):
            key: Any = int(last)
        elif isinstance(node, dict):
            key = last
        else:
            continue
        if value is DELETE:
            node.pop(key, None) if isinstance(node, dict) else node.pop(key)
        else:
            node[key] = value
    return body


def step(node: Any, part: str) -> Any:
    if isinstance(node, list) and part.isdigit() and int(part) < len(node):
        return node[int(part)]
    return node.get(part) if isinstance(node, dict) else None


async def exchange(served: Served, context: ssl.SSLContext, bodies: list[dict[str, Any]]
                   ) -> None:
    alice = served.world.devices(next(iter(served.world.members)))[0]
    headers = {"Authorization": f"Bearer {alice.access_token}"}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context),
                                     headers=headers) as http, \
            http.ws_connect(served.url + "/v1/ws") as ws:
        for body in bodies:
            await ws.send_str(json.dumps({**body, "type": "send"}))
            async with asyncio.timeout(10):
                while (frame := await ws.receive_json())["type"] not in ("sent", "error"):
                    pass
            async with http.post(served.url + "/v1/messages", json=body) as response:
                answer = await response.json()
            if frame["type"] == "sent":
                assert response.status == 200, (body, answer)
                continue
            assert frame["code"] in STATUS_FOR_CODE, (body, frame)
            assert (response.status, answer["code"]) == (STATUS_FOR_CODE[frame["code"]],
                                                         frame["code"]), (body, answer)
        assert not ws.closed
    await asyncio.sleep(0.25)  # let the TLS transports close before the loop does


@pytest.mark.slow
@settings(max_examples=12, deadline=None, database=None, phases=[Phase.generate],
          suppress_health_check=list(HealthCheck))
@given(changes=st.lists(mutations, min_size=20, max_size=20))
def test_mutated_sends_get_one_documented_answer(
    served: Served, ca_ssl_context: ssl.SSLContext, changes: list[list[tuple[str, Any]]]
) -> None:
    alice, bob, _ = (served.world.devices(u)[0] for u in served.world.members)
    valid = send_body(alice.address, [bob.address])
    bodies = [mutate({**valid, "msg_id": f"fz{i}-{hash(str(c)) & 0xffffff}"}, c)
              for i, c in enumerate(changes)]
    asyncio.run(exchange(served, ca_ssl_context, bodies))
