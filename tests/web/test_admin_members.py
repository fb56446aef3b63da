"""Admin API for members over real HTTPS: add, import, list, change role, remove; scopes;
device tokens refused; organisation isolation (identical 404s)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from semafore.services import ManualClock, Services
from semafore.services import totp as totp_codes
from semafore.storage.otp_spool import read_spool
from semafore.web.appkeys import SERVICES
from support.appliance import RunningServer

ADMIN = "+447700900001"
OTHER_ADMIN = "+447700900050"


@dataclass
class Admin:
    org_id: str
    user_id: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def sign_in(running: RunningServer, phone: str) -> str:
    """A full admin sign-in (phone code from the spool, then TOTP): the session token."""
    services: Services = running.app[SERVICES]
    clock: ManualClock = services.clock  # type: ignore[assignment]
    await services.admin_auth.start_sign_in(phone, client_address="192.0.2.10")
    await services.otp.wait_for_deliveries()
    spool = running.settings.resolve(running.settings.otp.file_spool_dir)
    code = [m for m in read_spool(spool) if m["to"] == phone][-1]["message"]
    challenge = await services.admin_auth.verify_phone_code(
        phone, code.split("code is ")[1][:6], client_address="192.0.2.10"
    )
    assert challenge.totp_secret is not None
    clock.advance(totp_codes.STEP_SECONDS)
    session = await services.admin_auth.complete_sign_in(
        challenge.ticket,
        code=totp_codes.code_at_step(challenge.totp_secret, totp_codes.step_at(clock.now())),
        client_address="192.0.2.10",
    )
    return session.token


async def new_org_admin(running: RunningServer, name: str, phone: str) -> Admin:
    services: Services = running.app[SERVICES]
    org, admin = await services.orgs.create_org(name, phone)
    return Admin(org.org_id, admin.user_id, await sign_in(running, phone))


@pytest.fixture
async def admin(running: RunningServer) -> Admin:
    return await new_org_admin(running, "Acme", ADMIN)


async def call(http: aiohttp.ClientSession, method: str, path: str, admin: Admin | None,
               **kwargs: Any) -> tuple[int, Any]:
    headers = {**(admin.headers if admin else {}), **kwargs.pop("headers", {})}
    async with http.request(method, path, headers=headers, **kwargs) as response:
        body = await response.read()
        return response.status, (await response.json(content_type=None)) if body else None


async def test_add_list_get_update_remove(http: aiohttp.ClientSession, admin: Admin) -> None:
    status, member = await call(http, "POST", "/v1/admin/members", admin,
                                json={"phone": "+447700900002"})
    assert status == 201 and member["role"] == "member" and member["device_count"] == 0
    status, body = await call(http, "GET", "/v1/admin/members", admin)
    assert status == 200
    assert [(m["phone"], m["role"]) for m in body["members"]] == [
        (ADMIN, "admin"), ("+447700900002", "member")
    ]
    assert body["members"][1]["last_active"] is None and "T" in body["members"][1]["joined_at"]
    path = f"/v1/admin/members/{member['user_id']}"
    assert (await call(http, "GET", path, admin))[1]["phone"] == "+447700900002"
    status, updated = await call(http, "PATCH", path, admin, json={"role": "admin"})
    assert (status, updated["role"]) == (200, "admin")
    assert (await call(http, "DELETE", path, admin))[0] == 204
    status, problem = await call(http, "GET", path, admin)
    assert (status, problem["code"]) == (404, "member_not_found")


async def test_bad_input_and_limits(http: aiohttp.ClientSession, admin: Admin) -> None:
    status, problem = await call(http, "POST", "/v1/admin/members", admin,
                                 json={"phone": "07700 900002"})
    assert (status, problem["code"]) == (400, "phone_invalid")
    status, problem = await call(http, "POST", "/v1/admin/members", admin,
                                 json={"phone": ADMIN})
    assert (status, problem["code"]) == (409, "member_exists")
    for i in range(4):
        await call(http, "POST", "/v1/admin/members", admin, json={"phone": f"+44770090010{i}"})
    status, problem = await call(http, "POST", "/v1/admin/members", admin,
                                 json={"phone": "+447700900200"})
    assert (status, problem["code"], problem["member_limit"]) == (409, "member_limit_reached", 5)
    status, problem = await call(http, "DELETE", f"/v1/admin/members/{admin.user_id}", admin)
    assert (status, problem["code"]) == (409, "last_admin")


async def test_csv_import(http: aiohttp.ClientSession, admin: Admin) -> None:
    bad = "phone\n+447700900002\nnot-a-number\n+447700900002\n"
    status, problem = await call(http, "POST", "/v1/admin/members/import", admin, data=bad,
                                 headers={"Content-Type": "text/csv"})
    assert (status, problem["code"]) == (400, "import_rejected")
    assert problem["rows"] == [
        {"row": 3, "status": "invalid", "code": "phone_invalid"},
        {"row": 4, "status": "duplicate", "code": "duplicate_in_file"},
    ]
    assert len((await call(http, "GET", "/v1/admin/members", admin))[1]["members"]) == 1
    good = "+447700900002\n+447700900003,admin\n"
    status, report = await call(http, "POST", "/v1/admin/members/import", admin, data=good,
                                headers={"Content-Type": "text/csv"})
    assert status == 201 and report["added"] == 2
    status, _ = await call(http, "POST", "/v1/admin/members/import", admin, json={})
    assert status == 415


async def test_admin_routes_need_admin_credentials(
    http: aiohttp.ClientSession, admin: Admin
) -> None:
    status, problem = await call(http, "GET", "/v1/admin/members", None)
    assert (status, problem["code"]) == (401, "unauthenticated")
    fake = Admin(admin.org_id, admin.user_id, "eyJhbGciOiJFZERTQSJ9.e30.sig")  # device-shaped
    status, problem = await call(http, "GET", "/v1/admin/members", fake)
    assert (status, problem["code"]) == (401, "admin_credentials_required")


async def test_another_orgs_members_are_invisible(
    http: aiohttp.ClientSession, running: RunningServer, admin: Admin
) -> None:
    other = await new_org_admin(running, "Other", OTHER_ADMIN)
    _, foreign = await call(http, "POST", "/v1/admin/members", other,
                            json={"phone": "+447700900051"})
    absent = "u_" + "0" * 32
    answers = []
    for user_id in (foreign["user_id"], other.user_id, absent):
        path = f"/v1/admin/members/{user_id}"
        for method, kwargs in (("GET", {}), ("PATCH", {"json": {"role": "admin"}}),
                               ("DELETE", {})):
            answers.append(await call(http, method, path, admin, **kwargs))
    assert {(s, p["code"], p["detail"]) for s, p in answers} == {
        (404, "member_not_found", "no such member")
    }
    _, listed = await call(http, "GET", "/v1/admin/members", admin)
    assert [m["phone"] for m in listed["members"]] == [ADMIN]
    _, theirs = await call(http, "GET", "/v1/admin/members", other)
    assert len(theirs["members"]) == 2  # untouched
