"""The delivery WebSocket (`/v1/ws`, docs/protocol-transport.md), kept open with reconnects.

Each `envelopes` frame is handled envelope by envelope: decrypt, commit the new state with the
message, and only after every COMMIT of the frame send one `ack` frame. A dropped connection
is retried with exponential backoff and full jitter; a revoked device (close 4003, or a 401
the refresh cannot fix) stops with an error.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from collections.abc import Callable

import aiohttp

from semafore.client import errors
from semafore.client.api import ApiClient
from semafore.client.device import Device
from semafore.client.messaging import Received
from semafore.client.relay import Delivery

log = logging.getLogger("semafore.client.listener")

CLOSE_UNAUTHENTICATED = 4001
CLOSE_REVOKED = 4003
CLOSE_REPLACED = 4009
HEARTBEAT_S = 30.0
_random = secrets.SystemRandom()

OnMessage = Callable[[Received], bool]  # returns True to stop listening


class Backoff:
    def __init__(self, first: float = 0.5, cap: float = 30.0) -> None:
        self.first, self.cap, self.attempt = first, cap, 0

    def next_delay(self) -> float:
        ceiling = min(self.cap, self.first * 2**self.attempt)
        self.attempt += 1
        return _random.uniform(0, ceiling)

    def reset(self) -> None:
        self.attempt = 0


class _Stop(Exception):
    pass


class _Unauthenticated(Exception):
    """The server closed the socket because the token was refused after the upgrade."""


async def listen_forever(device: Device, api: ApiClient, on_message: OnMessage) -> None:
    """Receive until `on_message` says stop (or the caller cancels)."""
    backoff = Backoff()
    refreshed = False
    while True:
        try:
            await _connection(device, api, on_message, backoff)
        except _Stop:
            return
        except (aiohttp.WSServerHandshakeError, _Unauthenticated) as exc:
            status = exc.status if isinstance(exc, aiohttp.WSServerHandshakeError) else 401
            if status == 401 and not refreshed and api.http.refresh is not None:
                api.http.access_token = await api.http.refresh()
                refreshed = True
                continue
            if status in (401, 403):
                raise errors.Revoked(
                    "the server refused this device's session (revoked?)", status=status
                ) from None
            log.info("connection refused (%s); retrying", status)
        except (aiohttp.ClientError, OSError, TimeoutError, errors.ServerUnreachable) as exc:
            log.info("connection lost (%s); retrying", type(exc).__name__)
        else:
            refreshed = False
        await asyncio.sleep(backoff.next_delay())


async def _connection(
    device: Device, api: ApiClient, on_message: OnMessage, backoff: Backoff
) -> None:
    url = "wss://" + api.http.base_url.split("://", 1)[1] + "/v1/ws"
    headers = {"Authorization": f"Bearer {api.http.access_token}"}
    async with api.http.session.ws_connect(
        url, headers=headers, heartbeat=HEARTBEAT_S, max_msg_size=16 << 20
    ) as ws:
        async for message in ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                continue
            frame = json.loads(message.data)
            kind = frame.get("type")
            if kind == "ready":
                backoff.reset()
                if (frame.get("pre_keys") or {}).get("refill"):
                    await device.maintain_pre_keys()
            elif kind == "envelopes":
                await _envelopes(device, ws, frame.get("items") or [], on_message)
            elif kind == "error":
                log.info("server reported %s", frame.get("code"))
        _closed(ws.close_code)


async def _envelopes(
    device: Device, ws: aiohttp.ClientWebSocketResponse, items: list, on_message: OnMessage
) -> None:
    done: list[str] = []
    stop = False
    prekey = False
    try:
        for item in items:
            delivery = Delivery(str(item["id"]), item["envelope"])
            prekey = prekey or delivery.envelope.get("type") == "prekey"
            received = device.accept(delivery)  # committed when this returns
            done.append(delivery.server_id)
            if received is not None and on_message(received):
                stop = True
                break
    finally:
        if done and not ws.closed:
            await ws.send_str(json.dumps({"type": "ack", "ids": done}))
    if prekey:
        await device.maintain_pre_keys()  # pre-key messages used up one-time pre keys
    if stop:
        await ws.close()
        raise _Stop


def _closed(code: int | None) -> None:
    if code == CLOSE_REVOKED:
        raise errors.Revoked("this device was revoked by an administrator", status=403)
    if code == CLOSE_REPLACED:
        raise errors.ClientError("another connection of this device took over; stopping")
    if code == CLOSE_UNAUTHENTICATED:
        raise _Unauthenticated
