"""The admin portal's browser defences over real HTTPS: security headers and CSP on pages,
``__Host-`` cookies, and CSRF — a forged state change (no token, another session's token, a
foreign Origin, no Origin at all, or a GET) changes nothing, checked through the services."""

from __future__ import annotations

import re
from typing import Any

import aiohttp
import pytest

from semafore.services import Services
from semafore.services.audit import parse_filter
from semafore.web.appkeys import SERVICES
from semafore.web.portal.security import CSP, csrf_token
from support.appliance import RunningServer

from .test_admin_devices import MEMBER, register_device
from .test_admin_members import ADMIN, OTHER_ADMIN, Admin, new_org_admin

SESSION = "__Host-semafore-session"
NEW_MEMBER = "+447700900077"


@pytest.fixture
async def admin(running: RunningServer) -> Admin:
    admin = await new_org_admin(running, "Acme", ADMIN)
    services: Services = running.app[SERVICES]
    await services.members.add_member(admin.org_id, MEMBER, actor="operator")
    return admin


def origin(running: RunningServer) -> str:
    return running.url


def cookie(token: str) -> dict[str, str]:
    return {"Cookie": f"{SESSION}={token}"}


async def post(http: aiohttp.ClientSession, path: str, data: dict[str, str], *,
               headers: dict[str, str]) -> tuple[int, str]:
    async with http.post(path, data=data, headers=headers, allow_redirects=False) as response:
        return response.status, await response.text()


async def world(running: RunningServer) -> dict[str, Any]:
    """Everything a forged request could change, read through the services."""
    services: Services = running.app[SERVICES]
    orgs = await services.orgs.list_orgs()
    state: dict[str, Any] = {"orgs": [(o.org_id, o.member_count) for o in orgs]}
    for org in orgs:
        members = await services.members.list_members(org.org_id)
        devices = await services.devices.list_devices(org.org_id)
        state[org.org_id] = (sorted((m.user_id, m.role, m.display_name) for m in members),
                             sorted((d.user_id, d.device_id, d.status) for d in devices))
    entries = await services.audit.list_entries(parse_filter(None, all_orgs=True), limit=500)
    state["audit"] = [(e.seq, e.event) for e in entries.entries]
    return state


# -- headers and cookies ----------------------------------------------------------------------


async def test_pages_carry_the_csp_and_security_headers(
    http: aiohttp.ClientSession, admin: Admin
) -> None:
    for path, headers in [("/portal/sign-in", {}), ("/portal/overview", cookie(admin.token)),
                          ("/portal/members", cookie(admin.token))]:
        async with http.get(path, headers=headers, allow_redirects=False) as response:
            assert response.status == 200, path
            assert response.content_type == "text/html"
            h = response.headers
            assert h["Content-Security-Policy"] == CSP
            assert "frame-ancestors 'none'" in CSP and "unsafe-inline" not in CSP
            assert h["Strict-Transport-Security"].startswith("max-age=")
            assert h["Referrer-Policy"] == "no-referrer"
            assert h["X-Content-Type-Options"] == "nosniff"
            assert h["Cache-Control"] == "no-store"
            html = await response.text()
        # No inline script or style anywhere: the CSP would block it, so it must not exist.
        assert "<script" not in html and "<style" not in html and " style=" not in html
        assert re.search(r"\son[a-z]+=", html) is None


async def test_sign_in_cookie_is_host_prefixed_secure_httponly_strict(
    http: aiohttp.ClientSession,
) -> None:
    async with http.get("/portal/sign-in") as response:
        raw = response.headers.getall("Set-Cookie")
    assert len(raw) == 1
    assert_host_cookie(raw[0], "__Host-semafore-sign-in")


def assert_host_cookie(raw: str, name: str) -> None:
    attributes = [part.strip().lower() for part in raw.split(";")]
    assert raw.startswith(name + "=")
    assert "secure" in attributes and "httponly" in attributes
    assert "samesite=strict" in attributes and "path=/" in attributes
    assert not any(a.startswith("domain=") for a in attributes)


async def test_signed_out_visitors_are_sent_to_sign_in(http: aiohttp.ClientSession) -> None:
    for path in ["/portal/overview", "/portal/members", "/portal/approvals", "/portal/audit",
                 "/portal/settings", "/portal/audit/export"]:
        async with http.get(path, allow_redirects=False) as response:
            assert response.status == 303, path
            assert response.headers["Location"] == "/portal/sign-in"
    async with http.get("/portal/overview", headers=cookie("sfs_not-a-session"),
                        allow_redirects=False) as response:
        assert response.status == 303
        assert response.headers["Location"].startswith("/portal/sign-in")


# -- CSRF --------------------------------------------------------------------------------------


def state_changes(admin: Admin, member_id: str, device: dict[str, Any]) -> list[tuple[str, dict]]:
    """Every kind of state change the portal makes, with a well-formed body."""
    dev = f"/portal/devices/{device['user_id']}/{device['device_id']}"
    return [
        ("/portal/members", {"phone": NEW_MEMBER, "role": "admin"}),
        (f"/portal/members/{member_id}/name", {"display_name": "Forged"}),
        (f"/portal/members/{member_id}/remove", {}),
        (f"{dev}/approve", {"back": "/portal/approvals"}),
        (f"{dev}/reject", {}),
        (f"{dev}/revoke", {}),
        ("/portal/audit/verify", {}),
        ("/portal/audit/checkpoint", {}),
        ("/portal/settings/test-message", {}),
        ("/portal/reauth", {"code": "000000", "back": "/portal/approvals"}),
        ("/portal/sign-out", {}),
    ]


async def test_forged_state_changes_change_nothing(
    http: aiohttp.ClientSession, running: RunningServer, admin: Admin
) -> None:
    services: Services = running.app[SERVICES]
    member = (await services.members.find_by_phone(MEMBER))
    assert member is not None
    device = await register_device(running)
    other = await new_org_admin(running, "Other", OTHER_ADMIN)
    good = csrf_token(admin.token)
    forgeries = [
        ("no token", {}, {"Origin": origin(running)}),
        ("empty token", {"csrf_token": ""}, {"Origin": origin(running)}),
        ("another session's token", {"csrf_token": csrf_token(other.token)},
         {"Origin": origin(running)}),
        ("foreign origin", {"csrf_token": good}, {"Origin": "https://evil.example"}),
        ("foreign origin, null-looking", {"csrf_token": good},
         {"Origin": "https://127.0.0.1.evil.example"}),
        ("no origin, cross-site fetch", {"csrf_token": good}, {"Sec-Fetch-Site": "cross-site"}),
        ("no origin at all", {"csrf_token": good}, {}),
        ("null origin, same-site", {"csrf_token": good},
         {"Origin": "null", "Sec-Fetch-Site": "same-site"}),
    ]
    before = await world(running)
    for path, body in state_changes(admin, member.user_id, device):
        for what, extra, headers in forgeries:
            status, html = await post(http, path, {**body, **extra},
                                      headers={**cookie(admin.token), **headers})
            assert status == 403, (path, what, status)
            assert "Request refused" in html
        # A GET never changes anything either (a confirmation page at most).
        async with http.get(path, headers=cookie(admin.token), allow_redirects=False) as r:
            assert r.status in {200, 303, 403, 404, 405}, path
    assert await world(running) == before
    # The session is still alive (sign-out was forged too) and still usable.
    async with http.get("/portal/overview", headers=cookie(admin.token),
                        allow_redirects=False) as response:
        assert response.status == 200


async def test_the_same_requests_with_token_and_origin_do_work(
    http: aiohttp.ClientSession, running: RunningServer, admin: Admin
) -> None:
    """The control for the test above: the forgeries failed for the reasons given."""
    services: Services = running.app[SERVICES]
    headers = {**cookie(admin.token), "Origin": origin(running)}
    status, _ = await post(http, "/portal/members",
                           {"phone": NEW_MEMBER, "csrf_token": csrf_token(admin.token)},
                           headers=headers)
    assert status == 303
    assert await services.members.find_by_phone(NEW_MEMBER) is not None
    # A same-origin form post under Referrer-Policy: no-referrer carries "Origin: null".
    status, _ = await post(http, "/portal/audit/checkpoint",
                           {"csrf_token": csrf_token(admin.token)},
                           headers={**cookie(admin.token), "Origin": "null",
                                    "Sec-Fetch-Site": "same-origin"})
    assert status == 303
    assert await services.audit.latest_checkpoint() is not None


async def test_sign_in_forms_need_the_sign_in_cookie_token_and_origin(
    http: aiohttp.ClientSession, running: RunningServer, admin: Admin
) -> None:
    async with http.get("/portal/sign-in") as response:
        secret = response.cookies["__Host-semafore-sign-in"].value
    jar = {"Cookie": f"__Host-semafore-sign-in={secret}"}
    for data, headers in [
        ({"phone": ADMIN}, {**jar, "Origin": origin(running)}),
        ({"phone": ADMIN, "csrf_token": csrf_token("other")}, {**jar, "Origin": origin(running)}),
        ({"phone": ADMIN, "csrf_token": csrf_token(secret)}, {**jar, "Origin": "https://x.test"}),
        ({"phone": ADMIN, "csrf_token": csrf_token(secret)}, {"Origin": origin(running)}),
    ]:
        status, _ = await post(http, "/portal/sign-in", data, headers=headers)
        assert status == 403
    status, html = await post(http, "/portal/sign-in",
                              {"phone": ADMIN, "csrf_token": csrf_token(secret)},
                              headers={**jar, "Origin": origin(running)})
    assert status == 200 and "Check your phone" in html
