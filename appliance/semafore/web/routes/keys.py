"""The key directory: a device's own pre keys, other devices' bundles and device lists."""

from __future__ import annotations

from aiohttp import web

from semafore.web.appkeys import MESSAGING
from semafore.web.bodies import json_response, read_json_object
from semafore.web.device_auth import device_principal


async def upload_one_time_pre_keys(request: web.Request) -> web.Response:
    principal = await device_principal(request)
    body = await read_json_object(request)
    status = await request.app[MESSAGING].keys.upload_one_time_pre_keys(
        (principal.user_id, principal.device_id), body
    )
    return json_response(status)


async def one_time_pre_key_status(request: web.Request) -> web.Response:
    principal = await device_principal(request)
    status = await request.app[MESSAGING].keys.pre_key_status(
        (principal.user_id, principal.device_id)
    )
    return json_response(status)


async def rotate_signed_pre_key(request: web.Request) -> web.Response:
    principal = await device_principal(request)
    body = await read_json_object(request)
    result = await request.app[MESSAGING].keys.rotate_signed_pre_key(
        (principal.user_id, principal.device_id), body
    )
    return json_response(result)


async def device_list(request: web.Request) -> web.Response:
    principal = await device_principal(request)
    devices = await request.app[MESSAGING].keys.device_list(
        principal.org_id, request.match_info["user_id"]
    )
    return json_response(devices)


async def bundle(request: web.Request) -> web.Response:
    principal = await device_principal(request)
    found = await request.app[MESSAGING].keys.bundle(
        (principal.user_id, principal.device_id),
        principal.org_id,
        request.match_info["user_id"],
        request.match_info["device_id"],
    )
    return json_response(found, headers={"Cache-Control": "no-store"})


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1/keys/one-time-pre-keys", upload_one_time_pre_keys)
    app.router.add_get("/v1/keys/one-time-pre-keys", one_time_pre_key_status)
    app.router.add_put("/v1/keys/signed-pre-key", rotate_signed_pre_key)
    app.router.add_get("/v1/users/{user_id}/devices", device_list)
    app.router.add_get("/v1/users/{user_id}/devices/{device_id}/bundle", bundle)
