"""``GET /v1/ws``: one WebSocket per device for delivery, acks and sends.

Frames are JSON text frames with a ``type`` (docs/protocol-transport.md lists every one). The
token comes in the ``Authorization`` header or in a first ``auth`` frame, never in the URL. A
writer task drains the device's outbox (services/delivery.py) into ``envelopes`` frames; the
reader loop handles ``send`` (several in flight, so they share group commits) and ``ack``. A bad
frame gets an ``error`` frame; only abuse closes the socket (too many bad frames: 1008;
oversize frame: 1009, by aiohttp).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from aiohttp import WSMsgType, web

from semafore.services import ServiceError
from semafore.services.delivery import CLOSE_REPLACED, CLOSE_REVOKED, CLOSE_SHUTDOWN, Outbox
from semafore.services.messaging import MessagingServices
from semafore.services.relay import check_ack_ids
from semafore.services.sessions import DevicePrincipal
from semafore.storage import StorageError
from semafore.web.appkeys import MESSAGING, SERVICES, SETTINGS
from semafore.web.bodies import parse_json_object
from semafore.web.device_auth import device_principal
from semafore.web.routes.messages import render_item

log = logging.getLogger("semafore.websocket")

CLOSE_UNAUTHENTICATED = 4001
CLOSE_CODES = {CLOSE_REVOKED: 4003, CLOSE_REPLACED: 4009, CLOSE_SHUTDOWN: 1001}
MAX_BAD_FRAMES = 20
MAX_SENDS_IN_FLIGHT = 64


async def websocket(request: web.Request) -> web.WebSocketResponse:
    settings = request.app[SETTINGS].relay
    principal = None
    if "Authorization" in request.headers:
        principal = await device_principal(request)  # a bad token is a 401 before the upgrade
    ws = web.WebSocketResponse(
        heartbeat=settings.heartbeat_seconds, max_msg_size=settings.send_max_bytes + 4096
    )
    await ws.prepare(request)
    if principal is None:
        principal = await _authenticate_first_frame(request, ws, settings.auth_timeout_seconds)
        if principal is None:
            return ws
    await _Socket(ws, request.app[MESSAGING], principal).run()
    return ws


async def _authenticate_first_frame(
    request: web.Request, ws: web.WebSocketResponse, wait_seconds: float
) -> DevicePrincipal | None:
    try:
        message = await ws.receive(timeout=wait_seconds)
    except TimeoutError:
        await _refuse(ws, "auth_timeout", "no auth frame in time")
        return None
    if message.type != WSMsgType.TEXT:
        if not ws.closed:
            await _refuse(ws, "auth_required", "the first frame must be an auth frame")
        return None
    try:
        frame = parse_json_object(message.data.encode())
    except ServiceError:
        frame = {}
    token = frame.get("token")
    if frame.get("type") != "auth" or not isinstance(token, str):
        await _refuse(ws, "auth_required", "the first frame must be an auth frame")
        return None
    try:
        return await request.app[SERVICES].sessions.authenticate(token)
    except ServiceError as error:
        await _refuse(ws, error.code, error.message)
    except StorageError:
        await ws.send_str(_error("storage_unavailable", "try again later"))
        await ws.close(code=1011, message=b"storage unavailable")
    return None


async def _refuse(ws: web.WebSocketResponse, code: str, message: str) -> None:
    await ws.send_str(_error(code, message))
    await ws.close(code=CLOSE_UNAUTHENTICATED, message=b"unauthenticated")


class _Socket:
    def __init__(
        self, ws: web.WebSocketResponse, messaging: MessagingServices, principal: DevicePrincipal
    ) -> None:
        self._ws = ws
        self._messaging = messaging
        self._relay = messaging.relay
        self._principal = principal
        self._device = (principal.user_id, principal.device_id)
        self._lock = asyncio.Lock()
        self._sends = asyncio.Semaphore(MAX_SENDS_IN_FLIGHT)
        self._tasks: set[asyncio.Task[None]] = set()
        self._bad_frames = 0

    async def run(self) -> None:
        pre_keys = await self._messaging.keys.pre_key_status(self._device)
        await self._emit(json.dumps({
            "type": "ready",
            "device": {"user_id": self._device[0], "device_id": self._device[1]},
            "pre_keys": pre_keys,
        }, separators=(",", ":")))
        outbox = self._relay.open_outbox(self._device, self._principal.session_id)
        writer = asyncio.create_task(self._write(outbox), name="ws-writer")
        try:
            async for message in self._ws:
                if message.type == WSMsgType.TEXT:
                    await self._on_text(message.data)
                else:  # binary; aiohttp handles ping, pong, close and oversize (1009) itself
                    await self._bad("binary_not_supported", "frames are JSON text")
                if self._bad_frames > MAX_BAD_FRAMES:
                    await self._ws.close(code=1008, message=b"too many bad frames")
                    break
        finally:
            self._relay.close_outbox(outbox)
            outbox.close("disconnected")
            await asyncio.gather(writer, *self._tasks, return_exceptions=True)

    async def _write(self, outbox: Outbox) -> None:
        try:
            async for frame in self._relay.frames(outbox):
                if frame.rows:
                    items = b",".join(map(render_item, frame.rows))
                    await self._emit(
                        (b'{"type":"envelopes","items":[' + items + b"]}").decode()
                    )
                if frame.queue_empty:
                    await self._emit('{"type":"queue_empty"}')
        except (ConnectionError, StorageError) as error:
            log.info("delivery stopped: %s", type(error).__name__)
            await self._ws.close(code=1011, message=b"delivery interrupted")
            return
        except Exception:
            log.exception("delivery failed")
            await self._ws.close(code=1011, message=b"internal error")
            return
        code = CLOSE_CODES.get(outbox.closed or "")
        if code is not None and not self._ws.closed:
            await self._ws.close(code=code, message=str(outbox.closed).encode())

    async def _on_text(self, data: str) -> None:
        try:
            frame = parse_json_object(data.encode())
        except ServiceError as error:
            await self._bad("invalid_json", error.message)
            return
        kind = frame.get("type")
        if kind == "send":
            await self._sends.acquire()
            task = asyncio.create_task(self._send(frame))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        elif kind == "ack":
            try:
                ids = check_ack_ids(frame.get("ids"))
            except ServiceError as error:
                await self._bad(error.code, error.message)
                return
            self._relay.ack_nowait(self._device, ids)
        elif kind == "auth":
            await self._bad("already_authenticated", "this socket is already authenticated")
        else:
            await self._bad("unknown_type", "unknown frame type")

    async def _send(self, frame: dict[str, Any]) -> None:
        msg_id = frame.get("msg_id")
        if not isinstance(msg_id, str) or len(msg_id) > 64:
            msg_id = None  # echoed only when it could be one
        try:
            answer = await self._relay.send(self._device, self._principal.org_id, frame)
            # msg_id is checked to be plain ASCII without quotes: no encoder needed.
            reply = (
                f'{{"type":"sent","msg_id":"{answer.msg_id}","stored":{answer.stored},'
                f'"ts":{answer.ts}}}'
            )
        except ServiceError as error:
            reply = _error(error.code, error.message, msg_id=msg_id, **error.details)
        except StorageError:
            reply = _error("storage_unavailable", "try again later", msg_id=msg_id)
        except Exception:
            log.exception("send over WebSocket failed")
            reply = _error("internal_error", "unexpected error; it has been logged", msg_id=msg_id)
        finally:
            self._sends.release()
        with contextlib.suppress(ConnectionError):
            await self._emit(reply)

    async def _bad(self, code: str, message: str) -> None:
        self._bad_frames += 1
        await self._emit(_error(code, message))

    async def _emit(self, text: str) -> None:
        if self._ws.closed:
            return
        async with self._lock:
            await self._ws.send_str(text)


def _error(code: str, message: str, **extra: Any) -> str:
    body: dict[str, Any] = {"type": "error", "code": code, "message": message}
    body.update({k: v for k, v in extra.items() if v is not None and k not in body})
    return json.dumps(body, separators=(",", ":"))


def add_routes(app: web.Application) -> None:
    app.router.add_get("/v1/ws", websocket)
