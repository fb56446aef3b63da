"""Admin API: devices of the caller's organisation (pending ones included): approve, reject,
revoke. Another organisation's devices answer exactly like absent ones (404)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from semafore.protocol import b64u_encode
from semafore.services import Device, InvalidInput, NotFound
from semafore.web.admin_auth import admin_principal
from semafore.web.appkeys import SERVICES
from semafore.web.bodies import json_response

DEVICE_ID_MAX = 2**31 - 1
DAY = 86_400


def _iso(timestamp: int | None) -> str | None:
    return None if timestamp is None else datetime.fromtimestamp(timestamp, UTC).isoformat()


def device_json(device: Device) -> dict[str, Any]:
    return {
        "user_id": device.user_id,
        "device_id": device.device_id,
        "device_name": device.device_name,
        "status": device.status,
        "registered_at": _iso(device.registered_at),
        "approved_at": _iso(device.approved_at),
        "last_active": None if device.last_active_day is None else (
            datetime.fromtimestamp(device.last_active_day * DAY, UTC).date().isoformat()
        ),
        "identity_key": b64u_encode(device.identity_key),
        "identity_signing_key": b64u_encode(device.identity_signing_key),
    }


def _address(request: web.Request) -> tuple[str, int]:
    user_id, raw = request.match_info["user_id"], request.match_info["device_id"]
    if not raw.isdigit() or not 1 <= int(raw) <= DEVICE_ID_MAX:
        raise NotFound("no such device", code="device_not_found")
    return user_id, int(raw)


async def list_devices(request: web.Request) -> web.Response:
    principal = await admin_principal(request, "devices:read")
    status = request.query.get("status")
    if status not in (None, "pending", "approved"):
        raise InvalidInput("status must be 'pending' or 'approved'", code="status_invalid")
    devices = await request.app[SERVICES].devices.list_devices(
        principal.org_id, user_id=request.query.get("user_id"), status=status  # type: ignore[arg-type]
    )
    return json_response({"devices": [device_json(d) for d in devices]})


async def get_device(request: web.Request) -> web.Response:
    principal = await admin_principal(request, "devices:read")
    user_id, device_id = _address(request)
    device = await request.app[SERVICES].devices.get_org_device(
        principal.org_id, user_id, device_id
    )
    return json_response(device_json(device))


async def approve(request: web.Request) -> web.Response:
    principal = await admin_principal(request, "devices:write", recent_sign_in=True)
    user_id, device_id = _address(request)
    device = await request.app[SERVICES].devices.approve(
        principal.org_id, user_id, device_id, actor=principal.actor
    )
    return json_response(device_json(device))


async def reject(request: web.Request) -> web.Response:
    principal = await admin_principal(request, "devices:write")
    user_id, device_id = _address(request)
    await request.app[SERVICES].devices.reject(
        principal.org_id, user_id, device_id, actor=principal.actor
    )
    return web.Response(status=204)


async def revoke(request: web.Request) -> web.Response:
    principal = await admin_principal(request, "devices:write", recent_sign_in=True)
    user_id, device_id = _address(request)
    await request.app[SERVICES].devices.revoke(
        principal.org_id, user_id, device_id, actor=principal.actor
    )
    return web.Response(status=204)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/v1/admin/devices", list_devices)
    app.router.add_get("/v1/admin/devices/{user_id}/{device_id}", get_device)
    app.router.add_post("/v1/admin/devices/{user_id}/{device_id}/approve", approve)
    app.router.add_post("/v1/admin/devices/{user_id}/{device_id}/reject", reject)
    app.router.add_delete("/v1/admin/devices/{user_id}/{device_id}", revoke)
