"""Devices: the queue of devices waiting for approval (one click each), approve, reject
(confirmed), revoke (confirmed). Approving and revoking need a recent sign-in."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from aiohttp import web

from semafore.services import Device, NotFound
from semafore.web.appkeys import SERVICES
from semafore.web.portal.guard import Admin, admin_page, form, notice, text
from semafore.web.portal.render import render, see_other
from semafore.web.portal.sign_in import reauth_required, safe_back

DEVICE_ID_MAX = 2**31 - 1
DAY = 86_400


@dataclass(frozen=True, slots=True)
class DeviceView:
    device: Device
    fingerprint: str

    @property
    def path(self) -> str:
        return f"/portal/devices/{self.device.user_id}/{self.device.device_id}"


def fingerprint(device: Device) -> str:
    """SHA-256 over the identity signing key and identity key, first 128 bits, in groups:
    enough to compare with what the device shows, without a wall of base64."""
    digest = hashlib.sha256(device.identity_signing_key + device.identity_key).hexdigest()[:32]
    return " ".join(digest[i:i + 4] for i in range(0, 32, 4))


def device_view(device: Device) -> DeviceView:
    return DeviceView(device, fingerprint(device))


def _address(request: web.Request) -> tuple[str, int]:
    user_id, raw = request.match_info["user_id"], request.match_info["device_id"]
    if not raw.isdigit() or not 1 <= int(raw) <= DEVICE_ID_MAX:
        raise NotFound("no such device", code="device_not_found")
    return user_id, int(raw)


@admin_page
async def approvals(request: web.Request, admin: Admin) -> web.Response:
    services = request.app[SERVICES]
    pending = await services.devices.list_devices(admin.org_id, status="pending")
    people = {m.user_id: m for m in await services.members.list_members(admin.org_id)}
    return render("approvals.html", admin=admin, active="approvals", notice=notice(request),
                  pending=[device_view(d) for d in pending], people=people)


@admin_page
async def approve(request: web.Request, admin: Admin) -> web.Response:
    user_id, device_id = _address(request)
    back = safe_back(text(await form(request), "back"))
    if not admin.recent:
        return reauth_required(admin, back, "Approving a device")
    await request.app[SERVICES].devices.approve(admin.org_id, user_id, device_id,
                                                actor=admin.actor)
    return see_other(back, notice="device_approved")


async def _confirm(request: web.Request, admin: Admin, kind: str) -> web.Response:
    services = request.app[SERVICES]
    user_id, device_id = _address(request)
    device = await services.devices.get_org_device(admin.org_id, user_id, device_id)
    member = await services.members.get_member(admin.org_id, user_id)
    view = device_view(device)
    what = f"device {device_id}" + (f" ({device.device_name})" if device.device_name else "")
    whose = f"{member.display_name} ({member.phone})" if member.display_name else member.phone
    if kind == "revoke" and not admin.recent:
        return reauth_required(admin, f"{view.path}/revoke", "Revoking a device")
    if kind == "revoke":
        title, button = f"Revoke {what} of {whose}?", "Revoke device"
        consequences = [
            "The device is signed out at once: its next request is refused and its live "
            "connection is closed.",
            "Messages waiting for it and its pre keys are deleted, and it disappears from "
            "every contact's device list.",
            "The member keeps their account and other devices. A replacement device has to "
            "enrol again and be approved.",
        ]
    else:
        title, button = f"Reject {what} of {whose}?", "Reject device"
        consequences = [
            "The device never gets access; it is told it was rejected.",
            "If this was a genuine device, the member can enrol it again and you can approve "
            "it then.",
        ]
    return render("confirm.html", admin=admin, active="approvals", action=f"{view.path}/{kind}",
                  title=title, button=button, cancel=f"/portal/members/{user_id}",
                  consequences=consequences, device=view)


@admin_page
async def confirm_reject(request: web.Request, admin: Admin) -> web.Response:
    return await _confirm(request, admin, "reject")


@admin_page
async def confirm_revoke(request: web.Request, admin: Admin) -> web.Response:
    return await _confirm(request, admin, "revoke")


@admin_page
async def reject(request: web.Request, admin: Admin) -> web.Response:
    user_id, device_id = _address(request)
    await request.app[SERVICES].devices.reject(admin.org_id, user_id, device_id,
                                               actor=admin.actor)
    return see_other(f"/portal/members/{user_id}", notice="device_rejected")


@admin_page
async def revoke(request: web.Request, admin: Admin) -> web.Response:
    user_id, device_id = _address(request)
    if not admin.recent:
        return reauth_required(admin, f"/portal/devices/{user_id}/{device_id}/revoke",
                               "Revoking a device")
    await request.app[SERVICES].devices.revoke(admin.org_id, user_id, device_id,
                                               actor=admin.actor)
    return see_other(f"/portal/members/{user_id}", notice="device_revoked")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/portal/approvals", approvals)
    app.router.add_post("/portal/devices/{user_id}/{device_id}/approve", approve)
    app.router.add_get("/portal/devices/{user_id}/{device_id}/reject", confirm_reject)
    app.router.add_post("/portal/devices/{user_id}/{device_id}/reject", reject)
    app.router.add_get("/portal/devices/{user_id}/{device_id}/revoke", confirm_revoke)
    app.router.add_post("/portal/devices/{user_id}/{device_id}/revoke", revoke)
