"""Portal pages over real HTTPS, below the browser: approval and revocation need a recent
sign-in (the authenticator again after 15 minutes), organisation isolation (another
organisation's member or device is "not found" and untouched), static files from a fixed set,
and the sign-up page when sign-up is off."""

from __future__ import annotations

import aiohttp
import pytest

from semafore.services import ManualClock, Services
from semafore.services import totp as totp_codes
from semafore.web.appkeys import SERVICES
from semafore.web.portal.security import csrf_token
from support.admin import sign_in_over_http
from support.appliance import RunningServer

from .test_admin_devices import MEMBER, register_device
from .test_admin_members import ADMIN, OTHER_ADMIN, Admin, new_org_admin


@pytest.fixture
async def admin(running: RunningServer) -> Admin:
    admin = await new_org_admin(running, "Acme", ADMIN)
    await running.app[SERVICES].members.add_member(admin.org_id, MEMBER, actor="operator")
    return admin


async def form_post(http: aiohttp.ClientSession, running: RunningServer, admin: Admin,
                    path: str, data: dict[str, str] | None = None) -> tuple[int, str]:
    headers = {"Cookie": f"__Host-semafore-session={admin.token}", "Origin": running.url}
    body = {"csrf_token": csrf_token(admin.token), **(data or {})}
    async with http.post(path, data=body, headers=headers, allow_redirects=False) as response:
        return response.status, await response.text()


async def page(http: aiohttp.ClientSession, admin: Admin, path: str) -> tuple[int, str]:
    headers = {"Cookie": f"__Host-semafore-session={admin.token}"}
    async with http.get(path, headers=headers, allow_redirects=False) as response:
        return response.status, await response.text()


async def keep_alive(http: aiohttp.ClientSession, clock: ManualClock, admin: Admin,
                     seconds: int) -> None:
    """Let time pass while the admin keeps using the portal (idle sessions end at 15 min)."""
    for _ in range(seconds // 300):
        clock.advance(300)
        assert (await page(http, admin, "/portal/overview"))[0] == 200


async def test_approve_and_revoke_need_a_recent_sign_in(
    http: aiohttp.ClientSession, running: RunningServer
) -> None:
    services: Services = running.app[SERVICES]
    clock: ManualClock = services.clock  # type: ignore[assignment]
    org, _ = await services.orgs.create_org("Acme", ADMIN)
    await services.members.add_member(org.org_id, MEMBER, actor="operator")
    # The first sign-in enrols the authenticator; the test keeps its secret (it is the app).
    signed_in = await sign_in_over_http(http, running, clock, ADMIN)
    admin = Admin(org.org_id, signed_in.member_id, signed_in.token)
    device = await register_device(running)
    path = f"/portal/devices/{device['user_id']}/{device['device_id']}"

    await keep_alive(http, clock, admin, 15 * 60)
    status, html = await form_post(http, running, admin, f"{path}/approve")
    assert status == 403 and "Confirm it's you" in html
    [pending] = await services.devices.list_devices(admin.org_id, status="pending")
    assert pending.device_id == device["device_id"]

    clock.advance(totp_codes.STEP_SECONDS)
    code = totp_codes.code_at_step(signed_in.totp_secret, totp_codes.step_at(clock.now()))
    status, _ = await form_post(http, running, admin, "/portal/reauth",
                                {"code": code, "back": "/portal/approvals"})
    assert status == 303
    status, _ = await form_post(http, running, admin, f"{path}/approve",
                                {"back": "/portal/approvals"})
    assert status == 303
    assert (await services.devices.get_org_device(admin.org_id, device["user_id"],
                                                  device["device_id"])).status == "approved"

    await keep_alive(http, clock, admin, 15 * 60)
    status, html = await page(http, admin, f"{path}/revoke")  # the confirmation page
    assert status == 403 and "Confirm it's you" in html
    status, html = await form_post(http, running, admin, f"{path}/revoke")
    assert status == 403 and "Confirm it's you" in html
    assert await services.devices.get_device(device["user_id"], device["device_id"]) is not None


async def test_another_organisations_members_and_devices_are_not_found(
    http: aiohttp.ClientSession, running: RunningServer, admin: Admin
) -> None:
    services: Services = running.app[SERVICES]
    other = await new_org_admin(running, "Other", OTHER_ADMIN)
    theirs = await services.members.add_member(other.org_id, "+447700900088", actor="operator")
    device = await register_device(running, "+447700900088")
    path = f"/portal/devices/{device['user_id']}/{device['device_id']}"

    for get in [f"/portal/members/{theirs.user_id}", f"/portal/members/{theirs.user_id}/remove",
                f"{path}/reject", f"{path}/revoke"]:
        status, html = await page(http, admin, get)
        assert status == 404 and "+447700900088" not in html and "+44 7700 900088" not in html
    for post in [f"/portal/members/{theirs.user_id}/remove", f"{path}/approve",
                 f"{path}/reject", f"{path}/revoke"]:
        status, _ = await form_post(http, running, admin, post, {"back": "/portal/approvals"})
        assert status == 404, post
    for listing in ["/portal/members", "/portal/approvals", "/portal/overview", "/portal/audit"]:
        status, html = await page(http, admin, listing)
        assert status == 200 and "900088" not in html and theirs.user_id not in html
    assert (await services.members.get_member(other.org_id, theirs.user_id)).device_count == 1
    assert len(await services.devices.list_devices(other.org_id, status="pending")) == 1


async def test_static_files_come_from_a_fixed_set(http: aiohttp.ClientSession) -> None:
    async with http.get("/portal/static/portal.css") as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "text/css; charset=utf-8"
        etag = response.headers["ETag"]
    async with http.get("/portal/static/portal.css", headers={"If-None-Match": etag}) as r:
        assert r.status == 304
    for path in ["/portal/static/missing.css", "/portal/static/..%2f..%2fopenapi.yaml",
                 "/portal/static/%2e%2e/portal/__init__.py"]:
        async with http.get(path) as response:
            assert response.status == 404, path


async def test_sign_up_page_says_when_sign_up_is_off(http: aiohttp.ClientSession) -> None:
    async with http.get("/portal/sign-up") as response:
        assert response.status == 404
        assert "Sign-up is turned off here" in await response.text()
    async with http.get("/portal/sign-in") as response:
        assert "Create an organisation" not in await response.text()
