"""Sending and the HTTP fetch-and-ack path.

``POST /v1/messages`` takes the PROTOCOL.md s7.2 request; ``GET /v1/messages?limit=`` and
``POST /v1/messages/ack`` serve clients that cannot hold a WebSocket. Envelopes are rendered
from their stored bytes, never re-parsed.
"""

from __future__ import annotations

from aiohttp import web

from semafore.storage.relay_queue import QueuedEnvelope
from semafore.web.appkeys import MESSAGING, SETTINGS
from semafore.web.bodies import JSON_CONTENT_TYPE, json_response, read_json_object
from semafore.web.device_auth import device_principal


async def send(request: web.Request) -> web.Response:
    principal = await device_principal(request)
    body = await read_json_object(request, max_bytes=request.app[SETTINGS].relay.send_max_bytes)
    answer = await request.app[MESSAGING].relay.send(
        (principal.user_id, principal.device_id), principal.org_id, body
    )
    return json_response(answer.to_json())


async def fetch(request: web.Request) -> web.Response:
    principal = await device_principal(request)
    raw = request.query.get("limit")
    limit = int(raw) if raw is not None and raw.isdigit() and len(raw) <= 6 else None
    if raw is not None and limit is None:
        limit = 0  # the service answers invalid_limit
    rows, more = await request.app[MESSAGING].relay.fetch(
        (principal.user_id, principal.device_id), limit
    )
    body = b'{"messages":[' + b",".join(map(render_item, rows)) + b'],"more":'
    body += b"true}" if more else b"false}"
    return web.Response(body=body, content_type=JSON_CONTENT_TYPE)


async def ack(request: web.Request) -> web.Response:
    principal = await device_principal(request)
    body = await read_json_object(request, max_bytes=request.app[SETTINGS].relay.send_max_bytes)
    acked = await request.app[MESSAGING].relay.ack(
        (principal.user_id, principal.device_id), body.get("ids")
    )
    return json_response({"acked": acked})


def render_item(row: QueuedEnvelope) -> bytes:
    """One delivered envelope: the server id (an opaque string), queue time, stored bytes."""
    return b'{"id":"%d","ts":%d,"envelope":%s}' % (row.id, row.queued_at, row.envelope)


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1/messages", send)
    app.router.add_get("/v1/messages", fetch)
    app.router.add_post("/v1/messages/ack", ack)
