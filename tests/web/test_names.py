"""Display names and device names over real HTTPS: the admin API (add, change, clear, list,
problem codes), the device's name at registration, the organisation directory, the portal's
name form; and the portal's test message, which lands in the audit log and is capped."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from semafore.services import Services
from semafore.storage.otp_spool import read_spool
from semafore.web.appkeys import SERVICES
from support.appliance import RunningServer
from support.identity import EnrollingDevice

from .test_admin_members import ADMIN, OTHER_ADMIN, Admin, call, new_org_admin
from .test_portal_pages import form_post, page

MEMBER = "+447700900002"
NAME = "Zoë <b>Smith</b> 📱"


@pytest.fixture
async def admin(running: RunningServer) -> Admin:
    return await new_org_admin(running, "Acme", ADMIN)


async def enrol_over_api(http: aiohttp.ClientSession, running: RunningServer, phone: str,
                         device_name: Any) -> tuple[int, dict[str, Any], dict[str, Any]]:
    """Code, proof and registration through the enrolment routes: (status, ticket, body)."""
    services: Services = running.app[SERVICES]
    async with http.post("/v1/enrolment/code", json={"phone": phone}) as response:
        assert response.status == 202
    await services.otp.wait_for_deliveries()
    spool = running.settings.resolve(running.settings.otp.file_spool_dir)
    code = [m for m in read_spool(spool) if m["to"] == phone][-1]["message"].split("is ")[1][:6]
    async with http.post("/v1/enrolment/verify", json={"phone": phone, "code": code}) as r:
        ticket = await r.json()
    body = EnrollingDevice().registration(ticket["user_id"], ticket["device_id"],
                                          device_name=device_name)
    async with http.post("/v1/enrolment/register", json=body,
                         headers={"Authorization": f"Bearer {ticket['ticket']}"}) as r:
        return r.status, ticket, await r.json(content_type=None)


async def test_admin_api_display_names(http: aiohttp.ClientSession, admin: Admin) -> None:
    status, member = await call(http, "POST", "/v1/admin/members", admin,
                                json={"phone": MEMBER, "display_name": f"  {NAME} "})
    assert (status, member["display_name"]) == (201, NAME)
    status, body = await call(http, "GET", "/v1/admin/members", admin)
    assert [m["display_name"] for m in body["members"]] == [None, NAME]

    for bad in ("", "x" * 65, "a\u0000b", 7, ["x"]):
        status, problem = await call(http, "POST", "/v1/admin/members", admin,
                                     json={"phone": "+447700900003", "display_name": bad})
        assert (status, problem["code"], problem["field"]) == (
            400, "display_name_invalid", "display_name"
        )
    path = f"/v1/admin/members/{member['user_id']}"
    status, updated = await call(http, "PATCH", path, admin, json={"display_name": "Zoë"})
    assert (status, updated["display_name"], updated["role"]) == (200, "Zoë", "member")
    status, updated = await call(http, "PATCH", path, admin, json={"display_name": None})
    assert (status, updated["display_name"]) == (200, None)
    status, problem = await call(http, "PATCH", path, admin, json={})
    assert (status, problem["code"]) == (400, "field_missing")
    status, problem = await call(http, "PATCH", path, admin, json={"display_name": "a\nb"})
    assert (status, problem["code"]) == (400, "display_name_invalid")

    csv_text = "phone,role,display_name\n+447700900004,member,Bob\n"
    async with http.post("/v1/admin/members/import", data=csv_text.encode(),
                         headers={**admin.headers, "Content-Type": "text/csv"}) as response:
        assert response.status == 201
    status, body = await call(http, "GET", "/v1/admin/members", admin)
    assert body["members"][-1]["display_name"] == "Bob"


async def test_device_name_at_registration_and_in_lists(
    http: aiohttp.ClientSession, running: RunningServer, admin: Admin
) -> None:
    services: Services = running.app[SERVICES]
    await services.members.add_member(admin.org_id, MEMBER, display_name="Alice",
                                      actor="operator")
    status, _, problem = await enrol_over_api(http, running, MEMBER, "\u202egnp.exe")
    assert (status, problem["code"], problem["field"]) == (400, "device_name_invalid",
                                                           "device_name")
    status, ticket, registered = await enrol_over_api(http, running, MEMBER, "Alice's phone")
    assert status == 201, registered
    status, body = await call(http, "GET", "/v1/admin/devices?status=pending", admin)
    assert [(d["device_id"], d["device_name"]) for d in body["devices"]] == [
        (ticket["device_id"], "Alice's phone")
    ]
    await services.devices.approve(admin.org_id, ticket["user_id"], ticket["device_id"],
                                   actor="operator")
    async with http.post("/v1/enrolment/status", json={}, headers={
            "Authorization": f"Bearer {registered['enrolment_secret']}"}) as response:
        tokens = (await response.json())["tokens"]
    async with http.get("/v1/directory", headers={
            "Authorization": f"Bearer {tokens['access_token']}"}) as response:
        directory = await response.json()
    assert [(m["phone"], m["display_name"]) for m in directory["members"]] == [
        (ADMIN, None), (MEMBER, "Alice")
    ]
    # A device without a name is fine too.
    status, _, _ = await enrol_over_api(http, running, MEMBER, None)
    assert status == 201


async def test_portal_name_form(http: aiohttp.ClientSession, running: RunningServer,
                                admin: Admin) -> None:
    services: Services = running.app[SERVICES]
    member = await services.members.add_member(admin.org_id, MEMBER, actor="operator")
    path = f"/portal/members/{member.user_id}"
    status, _ = await form_post(http, running, admin, f"{path}/name", {"display_name": NAME})
    assert status == 303
    status, html = await page(http, admin, path)
    assert status == 200
    assert "Zoë &lt;b&gt;Smith&lt;/b&gt; 📱" in html and "<b>Smith" not in html
    status, html = await form_post(http, running, admin, f"{path}/name",
                                   {"display_name": "x" * 65})
    assert status == 400 and "1 to 64 characters" in html
    assert (await services.members.get_member(admin.org_id, member.user_id)).display_name \
        == NAME
    await form_post(http, running, admin, f"{path}/name", {"display_name": "  "})
    assert (await services.members.get_member(admin.org_id, member.user_id)).display_name \
        is None
    status, _ = await form_post(http, running, admin, "/portal/members",
                                {"phone": "+447700900003", "display_name": "Carol"})
    assert status == 303
    status, html = await page(http, admin, "/portal/members?q=caro")
    assert "Carol" in html and "1 of 3 members match" in html
    # Another organisation's admin cannot rename this member (not found, unchanged).
    other = await new_org_admin(running, "Other", OTHER_ADMIN)
    status, _ = await form_post(http, running, other, f"{path}/name", {"display_name": "X"})
    assert status == 404
    status, problem = await call(http, "PATCH", f"/v1/admin/members/{member.user_id}", other,
                                 json={"display_name": "X"})
    assert (status, problem["code"]) == (404, "member_not_found")
    assert (await services.members.get_member(admin.org_id, member.user_id)).display_name \
        is None


async def test_portal_test_message_is_audited_and_capped(
    http: aiohttp.ClientSession, running: RunningServer, admin: Admin
) -> None:
    status, html = await form_post(http, running, admin, "/portal/settings/test-message")
    assert status == 200 and "A test message was handed to the provider" in html
    status, body = await call(http, "GET", "/v1/admin/audit?type=otp.test_sent", admin)
    assert status == 200
    sent = [e for e in body["entries"] if e["event"] == "otp.test_sent"]
    assert [(e["actor"], e["target"], e["data"]) for e in sent] == [
        (f"member:{admin.user_id}", f"member:{admin.user_id}", {"provider": "file"})
    ]
    for _ in range(2):
        assert (await form_post(http, running, admin, "/portal/settings/test-message"))[0] \
            == 200
    status, html = await form_post(http, running, admin, "/portal/settings/test-message")
    assert status == 429 and "Several test messages were sent recently" in html
