"""A device's push endpoint (UnifiedPush or HTTPS webhook)."""

from __future__ import annotations

from aiohttp import web

from semafore.web.appkeys import MESSAGING
from semafore.web.bodies import json_response, read_json_object
from semafore.web.device_auth import device_principal


async def register(request: web.Request) -> web.Response:
    principal = await device_principal(request)
    body = await read_json_object(request)
    endpoint = await request.app[MESSAGING].push.register(
        (principal.user_id, principal.device_id), body
    )
    return json_response(endpoint)


async def show(request: web.Request) -> web.Response:
    principal = await device_principal(request)
    endpoint = await request.app[MESSAGING].push.endpoint((principal.user_id, principal.device_id))
    return json_response(endpoint)


async def unregister(request: web.Request) -> web.Response:
    principal = await device_principal(request)
    await request.app[MESSAGING].push.unregister((principal.user_id, principal.device_id))
    return web.Response(status=204)


def add_routes(app: web.Application) -> None:
    app.router.add_put("/v1/push", register)
    app.router.add_get("/v1/push", show)
    app.router.add_delete("/v1/push", unregister)
