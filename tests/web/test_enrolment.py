"""Enrolment over real HTTPS: code, ticket, registration with verified keys, pending status,
approval with tokens handed out once; no enumeration; problem documents for bad input."""

from __future__ import annotations

import ssl
from typing import Any

import aiohttp
import pytest

from semafore.services import ManualClock, Services
from semafore.storage.otp_spool import read_spool
from semafore.web.appkeys import SERVICES
from support.appliance import Appliance, RunningServer, client_session
from support.identity import EnrollingDevice

MEMBER = "+447700900002"
UNKNOWN = "+447700900999"


@pytest.fixture
async def running(appliance: Appliance, start_server: Any) -> RunningServer:
    settings = appliance.configure(otp={"provider": "file"})
    return await start_server(settings, clock=ManualClock())


@pytest.fixture
async def org_id(running: RunningServer) -> str:
    services: Services = running.app[SERVICES]
    org, _ = await services.orgs.create_org("Acme", "+447700900001")
    await services.members.add_member(org.org_id, MEMBER, actor="operator")
    return org.org_id


async def delivered_code(running: RunningServer, phone: str) -> str:
    services: Services = running.app[SERVICES]
    await services.otp.wait_for_deliveries()
    spool = running.settings.resolve(running.settings.otp.file_spool_dir)
    messages = [m["message"] for m in read_spool(spool) if m["to"] == phone]
    return messages[-1].split("code is ")[1][:6]


async def post(http: aiohttp.ClientSession, path: str, body: Any, bearer: str | None = None
               ) -> tuple[int, dict[str, Any], Any]:
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    async with http.post(path, json=body, headers=headers) as response:
        return response.status, await response.json(content_type=None), response.headers


async def ticket(http: aiohttp.ClientSession, running: RunningServer) -> dict[str, Any]:
    status, _, _ = await post(http, "/v1/enrolment/code", {"phone": MEMBER})
    assert status == 202
    code = await delivered_code(running, MEMBER)
    status, body, _ = await post(http, "/v1/enrolment/verify", {"phone": MEMBER, "code": code})
    assert status == 200, body
    return body


async def test_enrol_wait_for_approval_then_use_the_tokens(
    http: aiohttp.ClientSession, running: RunningServer, org_id: str
) -> None:
    issued = await ticket(http, running)
    assert issued["device_id"] == 1 and issued["ticket"].startswith("sft_")
    keys = EnrollingDevice().registration(issued["user_id"], issued["device_id"])
    status, body, _ = await post(http, "/v1/enrolment/register", keys, bearer=issued["ticket"])
    assert status == 201 and body["status"] == "pending"
    secret = body["enrolment_secret"]

    status, body, _ = await post(http, "/v1/enrolment/status", {}, bearer=secret)
    assert (status, body["status"], "tokens" in body) == (200, "pending", False)
    async with http.get("/v1/me", headers={"Authorization": f"Bearer {secret}"}) as response:
        assert response.status == 401  # a pending device can only ask for its status

    services: Services = running.app[SERVICES]
    await services.devices.approve(org_id, issued["user_id"], issued["device_id"], actor="t")
    status, body, _ = await post(http, "/v1/enrolment/status", {}, bearer=secret)
    assert status == 200 and body["status"] == "approved"
    tokens = body["tokens"]
    assert tokens["token_type"] == "Bearer" and tokens["expires_in"] == 900

    async with http.get(
        "/v1/me", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    ) as response:
        assert response.status == 200
        me = await response.json()
    assert (me["user_id"], me["device_id"], me["org_id"]) == (
        issued["user_id"], issued["device_id"], org_id
    )
    status, body, _ = await post(http, "/v1/enrolment/status", {}, bearer=secret)
    assert (status, body["code"]) == (401, "enrolment_secret_invalid")


async def test_known_and_unknown_numbers_get_identical_answers(
    http: aiohttp.ClientSession, running: RunningServer, org_id: str
) -> None:
    answers = []
    for phone in (MEMBER, UNKNOWN):
        async with http.post("/v1/enrolment/code", json={"phone": phone}) as response:
            headers = {k: v for k, v in response.headers.items() if k.lower() != "date"}
            answers.append((response.status, await response.read(), headers))
    assert answers[0] == answers[1]
    answers = []
    for phone in (MEMBER, UNKNOWN):
        status, body, _ = await post(http, "/v1/enrolment/verify", {"phone": phone, "code": "1"})
        answers.append((status, body))
    assert answers[0] == answers[1] and answers[0][0] == 401
    assert answers[0][1]["code"] == "otp_invalid"


async def test_send_cap_is_a_429_with_retry_after(
    http: aiohttp.ClientSession, org_id: str
) -> None:
    for _ in range(3):
        status, _, _ = await post(http, "/v1/enrolment/code", {"phone": UNKNOWN})
        assert status == 202
    status, body, headers = await post(http, "/v1/enrolment/code", {"phone": UNKNOWN})
    assert (status, body["code"]) == (429, "otp_rate_limited")
    assert 0 < int(headers["Retry-After"]) <= 900


async def test_bad_keys_get_a_problem_naming_the_field(
    http: aiohttp.ClientSession, running: RunningServer, org_id: str
) -> None:
    issued = await ticket(http, running)
    keys = EnrollingDevice().registration(
        issued["user_id"], issued["device_id"], identity_key="AAAA="
    )
    async with http.post(
        "/v1/enrolment/register", json=keys, headers={"Authorization": f"Bearer {issued['ticket']}"}
    ) as response:
        assert response.status == 400
        assert response.content_type == "application/problem+json"
        problem = await response.json(content_type=None)
    assert (problem["code"], problem["field"]) == ("key_encoding_invalid", "identity_key")


async def test_register_needs_the_ticket(http: aiohttp.ClientSession, org_id: str) -> None:
    status, body, headers = await post(http, "/v1/enrolment/register", {})
    assert (status, body["code"]) == (401, "unauthenticated")
    assert headers["WWW-Authenticate"] == "Bearer"
    status, body, _ = await post(http, "/v1/enrolment/register", {}, bearer="sft_forged")
    assert (status, body["code"]) == (401, "enrolment_ticket_invalid")


@pytest.mark.parametrize("phone", ["07700900002", "+44 7700 900002", 447700900002, None])
async def test_malformed_numbers_are_a_400(http: aiohttp.ClientSession, phone: object) -> None:
    status, body, _ = await post(http, "/v1/enrolment/code", {"phone": phone})
    assert (status, body["code"]) == (400, "phone_invalid")


async def test_self_service_signup_is_off_by_default(http: aiohttp.ClientSession) -> None:
    status, body, _ = await post(http, "/v1/orgs/signup/code", {"phone": MEMBER})
    assert (status, body["code"]) == (403, "signup_disabled")


async def test_self_service_signup_when_enabled(
    appliance: Appliance, start_server: Any, ca_ssl_context: ssl.SSLContext
) -> None:
    settings = appliance.configure(otp={"provider": "file"}, orgs={"self_service_signup": True})
    running = await start_server(settings, clock=ManualClock())
    async with client_session(running.url, ca_ssl_context) as http:
        status, _, _ = await post(http, "/v1/orgs/signup/code", {"phone": MEMBER})
        assert status == 202
        code = await delivered_code(running, MEMBER)
        status, body, _ = await post(
            http, "/v1/orgs/signup", {"name": "Acme", "phone": MEMBER, "code": code}
        )
    assert status == 201 and body["name"] == "Acme" and body["member_limit"] == 5
    services: Services = running.app[SERVICES]
    members = await services.members.list_members(body["org_id"])
    assert [(m.user_id, m.role) for m in members] == [(body["admin_user_id"], "admin")]
