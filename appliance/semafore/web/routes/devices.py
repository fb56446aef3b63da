"""What an approved device may ask about itself and its organisation."""

from __future__ import annotations

from aiohttp import web

from semafore.web.appkeys import SERVICES
from semafore.web.bodies import json_response
from semafore.web.device_auth import device_principal


async def me(request: web.Request) -> web.Response:
    principal = await device_principal(request)
    member = await request.app[SERVICES].members.get_member(principal.org_id, principal.user_id)
    return json_response({
        "user_id": principal.user_id,
        "device_id": principal.device_id,
        "org_id": principal.org_id,
        "role": member.role,
        "phone": member.phone,
    })


async def directory(request: web.Request) -> web.Response:
    """The organisation's members, so colleagues can find each other by name or number."""
    principal = await device_principal(request)
    members = await request.app[SERVICES].members.list_members(principal.org_id)
    return json_response({
        "members": [
            {"user_id": m.user_id, "phone": m.phone, "display_name": m.display_name,
             "role": m.role}
            for m in members
        ]
    })


def add_routes(app: web.Application) -> None:
    app.router.add_get("/v1/me", me)
    app.router.add_get("/v1/directory", directory)
