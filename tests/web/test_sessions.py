"""Device sessions over real HTTPS: every request checks the token and that the device is
still approved; refresh rotation and replay; revocation refuses the very next request."""

from __future__ import annotations

import base64
import json
from typing import Any

import aiohttp
import pytest

from semafore.services import ManualClock, Services
from semafore.web.appkeys import SERVICES
from support.appliance import Appliance, RunningServer
from support.identity import EnrollingDevice

MEMBER = "+447700900002"


@pytest.fixture
async def running(appliance: Appliance, start_server: Any) -> RunningServer:
    settings = appliance.configure(otp={"provider": "file"})
    running = await start_server(settings, clock=ManualClock())
    running.clock = running.app[SERVICES].clock  # type: ignore[attr-defined]
    return running


@pytest.fixture
async def device(running: RunningServer) -> dict[str, Any]:
    """An approved device, enrolled through the services: its ids and first tokens."""
    services: Services = running.app[SERVICES]
    org, _ = await services.orgs.create_org("Acme", "+447700900001")
    await services.members.add_member(org.org_id, MEMBER, actor="operator")
    member = await services.members.find_by_phone(MEMBER)
    assert member is not None
    captured: list[str] = []

    class Capture:
        name = "capture"

        async def send(self, phone: str, message: str) -> None:
            captured.append(message.split("code is ")[1][:6])

    services.otp.provider = Capture()
    await services.enrolment.request_code(MEMBER, client_address=None)
    await services.otp.wait_for_deliveries()
    ticket = await services.enrolment.verify_code(MEMBER, captured[-1])
    registration = await services.enrolment.register(
        ticket.ticket, EnrollingDevice().registration(ticket.user_id, ticket.device_id)
    )
    await services.devices.approve(org.org_id, ticket.user_id, ticket.device_id, actor="t")
    status = await services.enrolment.status(registration.enrolment_secret)
    assert status.tokens is not None
    return {
        "org_id": org.org_id, "user_id": ticket.user_id, "device_id": ticket.device_id,
        "access": status.tokens.access_token, "refresh": status.tokens.refresh_token,
    }


async def me(http: aiohttp.ClientSession, token: str) -> tuple[int, dict[str, Any]]:
    async with http.get("/v1/me", headers={"Authorization": f"Bearer {token}"}) as response:
        return response.status, await response.json(content_type=None)


async def refresh(http: aiohttp.ClientSession, token: str) -> tuple[int, dict[str, Any]]:
    async with http.post("/v1/auth/refresh", json={"refresh_token": token}) as response:
        return response.status, await response.json(content_type=None)


async def test_revocation_refuses_the_next_request(
    http: aiohttp.ClientSession, running: RunningServer, device: dict[str, Any]
) -> None:
    assert (await me(http, device["access"]))[0] == 200
    services: Services = running.app[SERVICES]
    await services.devices.revoke(
        device["org_id"], device["user_id"], device["device_id"], actor="operator"
    )
    status, body = await me(http, device["access"])
    assert (status, body["code"]) == (401, "session_revoked")
    status, body = await refresh(http, device["refresh"])
    assert (status, body["code"]) == (401, "refresh_token_invalid")


async def test_refresh_rotates_and_a_replay_kills_the_chain(
    http: aiohttp.ClientSession, device: dict[str, Any]
) -> None:
    status, rotated = await refresh(http, device["refresh"])
    assert status == 200 and rotated["refresh_token"] != device["refresh"]
    assert (await me(http, rotated["access_token"]))[0] == 200
    status, body = await refresh(http, device["refresh"])  # replay of a used token
    assert (status, body["code"]) == (401, "refresh_token_invalid")
    assert (await refresh(http, rotated["refresh_token"]))[0] == 401
    assert (await me(http, rotated["access_token"]))[0] == 401


async def test_expired_access_token_is_refused(
    http: aiohttp.ClientSession, running: RunningServer, device: dict[str, Any]
) -> None:
    running.clock.advance(900)  # type: ignore[attr-defined]
    status, body = await me(http, device["access"])
    assert (status, body["code"]) == (401, "token_expired")
    status, fresh = await refresh(http, device["refresh"])
    assert status == 200 and (await me(http, fresh["access_token"]))[0] == 200


async def test_unsigned_token_is_refused(
    http: aiohttp.ClientSession, device: dict[str, Any]
) -> None:
    header, payload, _ = device["access"].split(".")
    decoded = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))
    none_header = base64.urlsafe_b64encode(
        json.dumps({**decoded, "alg": "none"}).encode()
    ).rstrip(b"=").decode()
    status, body = await me(http, f"{none_header}.{payload}.")
    assert (status, body["code"]) == (401, "token_invalid")


@pytest.mark.parametrize("header", [None, "Basic abc", "Bearer", "Bearer  "])
async def test_missing_token_is_refused(
    http: aiohttp.ClientSession, device: dict[str, Any], header: str | None
) -> None:
    headers = {} if header is None else {"Authorization": header}
    async with http.get("/v1/me", headers=headers) as response:
        assert response.status == 401
        assert (await response.json(content_type=None))["code"] == "unauthenticated"


async def test_directory_lists_the_callers_organisation_only(
    http: aiohttp.ClientSession, running: RunningServer, device: dict[str, Any]
) -> None:
    services: Services = running.app[SERVICES]
    await services.orgs.create_org("Other", "+447700900050")
    async with http.get(
        "/v1/directory", headers={"Authorization": f"Bearer {device['access']}"}
    ) as response:
        assert response.status == 200
        members = (await response.json())["members"]
    assert sorted(m["phone"] for m in members) == ["+447700900001", MEMBER]
