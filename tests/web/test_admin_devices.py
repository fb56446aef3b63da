"""Admin API for devices over real HTTPS: list (pending included), approve, reject, revoke
(the device's next request is refused); scoped API tokens; organisation isolation."""

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

MEMBER = "+447700900002"


@pytest.fixture
async def admin(running: RunningServer) -> Admin:
    admin = await new_org_admin(running, "Acme", ADMIN)
    services: Services = running.app[SERVICES]
    await services.members.add_member(admin.org_id, MEMBER, actor="operator")
    return admin


async def register_device(running: RunningServer, phone: str = MEMBER) -> dict[str, Any]:
    """A device of ``phone`` registered through the services (pending): ids and secret."""
    services: Services = running.app[SERVICES]
    await services.enrolment.request_code(phone, client_address=None)
    await services.otp.wait_for_deliveries()
    spool = running.settings.resolve(running.settings.otp.file_spool_dir)
    message = [m for m in read_spool(spool) if m["to"] == phone][-1]["message"]
    ticket = await services.enrolment.verify_code(phone, message.split("code is ")[1][:6])
    registration = await services.enrolment.register(
        ticket.ticket, EnrollingDevice().registration(ticket.user_id, ticket.device_id)
    )
    return {"user_id": ticket.user_id, "device_id": ticket.device_id,
            "secret": registration.enrolment_secret}


def device_path(device: dict[str, Any], action: str = "") -> str:
    return f"/v1/admin/devices/{device['user_id']}/{device['device_id']}{action}"


async def test_approve_then_the_device_gets_tokens_then_revoke(
    http: aiohttp.ClientSession, running: RunningServer, admin: Admin
) -> None:
    device = await register_device(running)
    status, body = await call(http, "GET", "/v1/admin/devices?status=pending", admin)
    assert status == 200
    assert [(d["user_id"], d["device_id"], d["status"]) for d in body["devices"]] == [
        (device["user_id"], device["device_id"], "pending")
    ]
    assert len(body["devices"][0]["identity_key"]) == 43

    status, approved = await call(http, "POST", device_path(device, "/approve"), admin)
    assert (status, approved["status"]) == (200, "approved") and approved["approved_at"]
    status, problem = await call(http, "POST", device_path(device, "/approve"), admin)
    assert (status, problem["code"]) == (409, "device_not_pending")

    async with http.post("/v1/enrolment/status", json={},
                         headers={"Authorization": f"Bearer {device['secret']}"}) as response:
        tokens = (await response.json())["tokens"]
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    async with http.get("/v1/me", headers=bearer) as response:
        assert response.status == 200

    assert (await call(http, "DELETE", device_path(device), admin))[0] == 204
    async with http.get("/v1/me", headers=bearer) as response:
        assert response.status == 401
        assert (await response.json(content_type=None))["code"] == "session_revoked"
    assert (await call(http, "GET", "/v1/admin/devices", admin))[1]["devices"] == []


async def test_reject(http: aiohttp.ClientSession, running: RunningServer, admin: Admin) -> None:
    device = await register_device(running)
    assert (await call(http, "POST", device_path(device, "/reject"), admin))[0] == 204
    async with http.post("/v1/enrolment/status", json={},
                         headers={"Authorization": f"Bearer {device['secret']}"}) as response:
        assert (await response.json())["status"] == "rejected"
    status, problem = await call(http, "GET", device_path(device), admin)
    assert (status, problem["code"]) == (404, "device_not_found")


async def test_filters_and_bad_parameters(
    http: aiohttp.ClientSession, running: RunningServer, admin: Admin
) -> None:
    first = await register_device(running)
    await register_device(running)
    await call(http, "POST", device_path(first, "/approve"), admin)
    _, approved = await call(http, "GET", "/v1/admin/devices?status=approved", admin)
    assert [d["device_id"] for d in approved["devices"]] == [first["device_id"]]
    _, mine = await call(http, "GET", f"/v1/admin/devices?user_id={first['user_id']}", admin)
    assert len(mine["devices"]) == 2
    status, problem = await call(http, "GET", "/v1/admin/devices?status=revoked", admin)
    assert (status, problem["code"]) == (400, "status_invalid")
    for bad in ("0", "-1", "abc", "2147483648"):
        status, problem = await call(
            http, "GET", f"/v1/admin/devices/{first['user_id']}/{bad}", admin
        )
        assert (status, problem["code"]) == (404, "device_not_found")


async def test_api_token_scopes(
    http: aiohttp.ClientSession, running: RunningServer, admin: Admin
) -> None:
    services: Services = running.app[SERVICES]
    principal = await services.admin_auth.authenticate(admin.token, scope=None)
    created = await services.api_tokens.create(principal, name="monitor",
                                               scopes=["devices:read"])
    reader = Admin(admin.org_id, admin.user_id, created.secret)
    device = await register_device(running)
    assert (await call(http, "GET", "/v1/admin/devices", reader))[0] == 200
    status, problem = await call(http, "POST", device_path(device, "/approve"), reader)
    assert (status, problem["code"]) == (403, "scope_missing")
    status, problem = await call(http, "GET", "/v1/admin/members", reader)
    assert (status, problem["code"]) == (403, "scope_missing")


async def test_another_orgs_devices_are_invisible(
    http: aiohttp.ClientSession, running: RunningServer, admin: Admin
) -> None:
    other = await new_org_admin(running, "Other", OTHER_ADMIN)
    await running.app[SERVICES].members.add_member(other.org_id, "+447700900051", actor="t")
    foreign = await register_device(running, "+447700900051")
    absent = {"user_id": foreign["user_id"], "device_id": 999}
    answers = []
    for device in (foreign, absent):
        answers.append(await call(http, "GET", device_path(device), admin))
        answers.append(await call(http, "POST", device_path(device, "/approve"), admin))
        answers.append(await call(http, "POST", device_path(device, "/reject"), admin))
        answers.append(await call(http, "DELETE", device_path(device), admin))
    assert {(s, p["code"], p["detail"]) for s, p in answers} == {
        (404, "device_not_found", "no such device")
    }
    _, listed = await call(
        http, "GET", f"/v1/admin/devices?user_id={foreign['user_id']}", admin
    )
    assert listed["devices"] == []
    _, theirs = await call(http, "GET", "/v1/admin/devices", other)
    assert [d["status"] for d in theirs["devices"]] == ["pending"]  # untouched
