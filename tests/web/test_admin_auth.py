"""Admin sign-in, sessions, API tokens and the audit routes over real HTTPS: the whole flow,
device and admin credentials kept apart, scopes, JSON Lines export, verification with a
checkpoint whose signature the test checks itself, and clear 4xx answers to bad input."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from semafore.services import ManualClock, Services
from semafore.services import totp as totp_codes
from semafore.storage.audit_chain import checkpoint_message
from semafore.web.appkeys import SERVICES
from support.admin import (
    ADMIN_PHONE,
    HttpAdmin,
    enrolled_device,
    http_json,
    sign_in_over_http,
)
from support.appliance import RunningServer

MEMBER = "+447700900002"
UNKNOWN = "+447700900999"


@pytest.fixture
async def org_id(running: RunningServer) -> str:
    services: Services = running.app[SERVICES]
    org, _ = await services.orgs.create_org("Acme", ADMIN_PHONE)
    await services.members.add_member(org.org_id, MEMBER, actor="operator")
    return org.org_id


@pytest.fixture
async def admin(http: aiohttp.ClientSession, running: RunningServer, clock: ManualClock,
                org_id: str) -> HttpAdmin:
    return await sign_in_over_http(http, running, clock)


async def test_sign_in_session_and_sign_out(
    http: aiohttp.ClientSession, running: RunningServer, clock: ManualClock, org_id: str
) -> None:
    signed_in = await sign_in_over_http(http, running, clock)
    assert signed_in.org_id == org_id and len(signed_in.recovery_codes) == 10
    status, info = await http_json(http, "GET", "/v1/admin/session", bearer=signed_in.token)
    assert status == 200 and info["org_id"] == org_id and info["recovery_codes_left"] == 10
    status, _ = await http_json(http, "POST", "/v1/admin/sign-out", bearer=signed_in.token)
    assert status == 204
    status, problem = await http_json(http, "GET", "/v1/admin/session", bearer=signed_in.token)
    assert (status, problem["code"]) == (401, "admin_session_expired")
    # Signing in again asks for TOTP only: the authenticator is already enrolled.
    again = await sign_in_over_http(http, running, clock, totp_secret=signed_in.totp_secret)
    assert again.recovery_codes == []


async def test_unknown_numbers_get_the_same_answers(
    http: aiohttp.ClientSession, org_id: str
) -> None:
    answers = []
    for phone in (ADMIN_PHONE, UNKNOWN, MEMBER):
        answers.append(await http_json(http, "POST", "/v1/admin/sign-in", {"phone": phone}))
    assert answers[0] == answers[1] == answers[2] == (202, {"status": "sent"})
    problems = []
    for phone in (ADMIN_PHONE, UNKNOWN, MEMBER):
        status, problem = await http_json(http, "POST", "/v1/admin/sign-in/verify",
                                          {"phone": phone, "code": "000000"})
        problems.append((status, problem))
    assert problems[0] == problems[1] == problems[2]
    assert problems[0][0] == 401 and problems[0][1]["code"] == "otp_invalid"


async def test_idle_sessions_end_on_the_server_clock(
    http: aiohttp.ClientSession, clock: ManualClock, admin: HttpAdmin
) -> None:
    clock.advance(899)
    assert (await http_json(http, "GET", "/v1/admin/session", bearer=admin.token))[0] == 200
    clock.advance(900)
    status, problem = await http_json(http, "GET", "/v1/admin/session", bearer=admin.token)
    assert (status, problem["code"]) == (401, "admin_session_expired")


async def test_reauth_over_http(
    http: aiohttp.ClientSession, clock: ManualClock, admin: HttpAdmin
) -> None:
    clock.advance(800)
    code = totp_codes.code_at_step(admin.totp_secret, totp_codes.step_at(clock.now()))
    status, body = await http_json(http, "POST", "/v1/admin/session/reauth", {"code": code},
                                   bearer=admin.token)
    assert status == 200 and body["reauthenticated_at"] == int(clock.now())
    status, problem = await http_json(http, "POST", "/v1/admin/session/reauth", {"code": code},
                                      bearer=admin.token)
    assert (status, problem["code"]) == (401, "second_factor_invalid")


# -- recent sign-in ----------------------------------------------------------------------------


def _members_path(user_id: str) -> str:
    return f"/v1/admin/members/{user_id}"


async def test_access_changes_need_a_recent_sign_in_on_a_session_but_not_a_token(
    http: aiohttp.ClientSession, running: RunningServer, clock: ManualClock, org_id: str,
    admin: HttpAdmin,
) -> None:
    _, token = await http_json(http, "POST", "/v1/admin/tokens",
                               {"name": "provisioning", "scopes": ["devices:write",
                                                                   "members:write"]},
                               bearer=admin.token)
    user_id, pending_id, _ = await enrolled_device(running, org_id, MEMBER, approve=False)
    _, approved_id, _ = await enrolled_device(running, org_id, MEMBER, approve=True)
    spare = await running.app[SERVICES].members.add_member(org_id, "+447700900003",
                                                           actor="operator")
    device = f"/v1/admin/devices/{user_id}"
    changes = [
        ("POST", f"{device}/{pending_id}/approve", None),
        ("DELETE", f"{device}/{approved_id}", None),
        ("DELETE", _members_path(spare.user_id), None),
        ("POST", "/v1/admin/tokens", {"name": "later", "scopes": ["audit:read"]}),
    ]
    # The session stays alive (it is used within the idle window) but its last authenticator
    # proof becomes older than admin.recent_sign_in_seconds (900 s).
    clock.advance(800)
    assert (await http_json(http, "GET", "/v1/admin/session", bearer=admin.token))[0] == 200
    clock.advance(200)
    for method, path, body in changes:
        status, problem = await http_json(http, method, path, body, bearer=admin.token)
        assert (status, problem["code"]) == (403, "recent_sign_in_required"), path
        assert problem["reauth"] == "/v1/admin/session/reauth"
    # Nothing changed: the device is still pending, the other still approved, the member there.
    status, listed = await http_json(http, "GET", f"/v1/admin/devices?user_id={user_id}",
                                     bearer=admin.token)
    assert status == 200
    assert {d["device_id"]: d["status"] for d in listed["devices"]} == {
        pending_id: "pending", approved_id: "approved"}
    assert (await http_json(http, "GET", _members_path(spare.user_id),
                            bearer=admin.token))[0] == 200
    # Reading and non-destructive writes still work without re-proving.
    assert (await http_json(http, "PATCH", _members_path(spare.user_id),
                            {"display_name": "Spare"}, bearer=admin.token))[0] == 200

    # An API token is authorised by its scope alone, however old the session that made it.
    status, body = await http_json(http, "POST", f"{device}/{pending_id}/approve",
                                   bearer=token["token"])
    assert (status, body["status"]) == (200, "approved")

    # After a fresh authenticator code the session may make the remaining changes.
    code = totp_codes.code_at_step(admin.totp_secret, totp_codes.step_at(clock.now()))
    status, _ = await http_json(http, "POST", "/v1/admin/session/reauth", {"code": code},
                                bearer=admin.token)
    assert status == 200
    for method, path, body in changes[1:]:
        status, _ = await http_json(http, method, path, body, bearer=admin.token)
        assert status in (201, 204), path


# -- device and admin credentials -----------------------------------------------------------------


async def test_device_token_refused_on_admin_routes_and_admin_token_on_device_routes(
    http: aiohttp.ClientSession, running: RunningServer, org_id: str, admin: HttpAdmin
) -> None:
    _, _, device_token = await enrolled_device(running, org_id, MEMBER, approve=True)
    assert device_token is not None
    assert (await http_json(http, "GET", "/v1/me", bearer=device_token))[0] == 200
    for method, path in (("GET", "/v1/admin/session"), ("GET", "/v1/admin/audit"),
                         ("GET", "/v1/admin/tokens")):
        status, problem = await http_json(http, method, path, bearer=device_token)
        assert (status, problem["code"]) == (401, "admin_credentials_required"), path
    status, problem = await http_json(http, "GET", "/v1/me", bearer=admin.token)
    assert status == 401, problem
    status, problem = await http_json(http, "GET", "/v1/admin/audit")
    assert status == 401


# -- API tokens -----------------------------------------------------------------------------------


async def test_api_tokens_over_http(
    http: aiohttp.ClientSession, admin: HttpAdmin
) -> None:
    status, created = await http_json(http, "POST", "/v1/admin/tokens",
                                      {"name": "SIEM export", "scopes": ["audit:read"],
                                       "expires_in_days": 30}, bearer=admin.token)
    assert status == 201 and created["token"].startswith("sfk_")
    token = created["token"]
    status, page = await http_json(http, "GET", "/v1/admin/audit", bearer=token)
    assert status == 200 and any(e["event"] == "api_token.created" for e in page["entries"])
    status, problem = await http_json(http, "GET", "/v1/admin/tokens", bearer=token)
    assert (status, problem["code"]) == (403, "session_required")
    status, listed = await http_json(http, "GET", "/v1/admin/tokens", bearer=admin.token)
    assert [t["token_id"] for t in listed["tokens"]] == [created["token_id"]]
    assert "token" not in listed["tokens"][0]

    _, members_only = await http_json(http, "POST", "/v1/admin/tokens",
                                      {"name": "members", "scopes": ["members:read"]},
                                      bearer=admin.token)
    status, problem = await http_json(http, "GET", "/v1/admin/audit",
                                      bearer=members_only["token"])
    assert (status, problem["code"], problem["scope"]) == (403, "scope_missing", "audit:read")

    status, revoked = await http_json(http, "DELETE", f"/v1/admin/tokens/{created['token_id']}",
                                      bearer=admin.token)
    assert status == 200 and revoked["revoked_at"] is not None
    status, problem = await http_json(http, "GET", "/v1/admin/audit", bearer=token)
    assert (status, problem["code"]) == (401, "api_token_invalid")
    status, problem = await http_json(http, "DELETE", "/v1/admin/tokens/tk_nope",
                                      bearer=admin.token)
    assert (status, problem["code"]) == (404, "api_token_not_found")


@pytest.mark.parametrize("body", [
    {"name": "x", "scopes": "audit:read"},
    {"name": "x", "scopes": ["root"]},
    {"name": 5, "scopes": ["audit:read"]},
    {"name": "x", "scopes": ["audit:read"], "expires_in_days": 0},
])
async def test_bad_token_requests_are_400(
    http: aiohttp.ClientSession, admin: HttpAdmin, body: dict[str, Any]
) -> None:
    status, problem = await http_json(http, "POST", "/v1/admin/tokens", body, bearer=admin.token)
    assert status == 400 and problem["code"] in {"scopes_invalid", "token_name_invalid",
                                                 "token_expiry_invalid"}


# -- audit ----------------------------------------------------------------------------------------


async def test_audit_list_filters_and_pages(
    http: aiohttp.ClientSession, admin: HttpAdmin, org_id: str
) -> None:
    status, page = await http_json(http, "GET", "/v1/admin/audit?limit=2", bearer=admin.token)
    assert status == 200 and len(page["entries"]) == 2 and page["next_before"] is not None
    seqs = [e["seq"] for e in page["entries"]]
    assert seqs == sorted(seqs, reverse=True)
    status, older = await http_json(
        http, "GET", f"/v1/admin/audit?limit=2&before={page['next_before']}", bearer=admin.token)
    assert status == 200 and all(e["seq"] < page["next_before"] for e in older["entries"])
    status, members = await http_json(http, "GET", "/v1/admin/audit?event=member.",
                                      bearer=admin.token)
    assert {e["event"] for e in members["entries"]} == {"member.added"}
    assert all(e["org_id"] == org_id for e in members["entries"])
    status, mine = await http_json(http, "GET",
                                   f"/v1/admin/audit?actor=member:{admin.member_id}",
                                   bearer=admin.token)
    assert {e["event"] for e in mine["entries"]} >= {"admin.signed_in"}
    status, none = await http_json(http, "GET", "/v1/admin/audit?since=2100-01-01",
                                   bearer=admin.token)
    assert status == 200 and none["entries"] == []
    status, some = await http_json(http, "GET", "/v1/admin/audit?until=2100-01-01T00:00:00Z",
                                   bearer=admin.token)
    assert len(some["entries"]) >= 4
    for query in ("since=yesterday", "limit=0", "limit=abc", "before=-1", "event=DROP%20TABLE",
                  "actor=%3Cscript%3E"):
        status, problem = await http_json(http, "GET", f"/v1/admin/audit?{query}",
                                          bearer=admin.token)
        assert (status, problem["code"]) == (400, "audit_filter_invalid"), query


async def test_audit_export_is_json_lines(
    http: aiohttp.ClientSession, admin: HttpAdmin
) -> None:
    async with http.get("/v1/admin/audit/export",
                        headers={"Authorization": f"Bearer {admin.token}"}) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("application/jsonl")
        text = await response.text()
    lines = [json.loads(line) for line in text.splitlines()]
    assert [e["event"] for e in lines][:3] == ["org.created", "member.added", "member.added"]
    seqs = [e["seq"] for e in lines]
    assert seqs == sorted(seqs)
    for entry in lines:
        assert len(entry["hash"]) == 64 and len(entry["prev_hash"]) == 64
    assert ADMIN_PHONE not in text and admin.token not in text


async def test_verify_and_checkpoint(
    http: aiohttp.ClientSession, admin: HttpAdmin
) -> None:
    status, body = await http_json(http, "GET", "/v1/admin/audit/checkpoint",
                                   bearer=admin.token)
    assert status == 200 and body["checkpoint"] is None
    status, body = await http_json(http, "POST", "/v1/admin/audit/checkpoint",
                                   bearer=admin.token)
    assert status == 201
    checkpoint = body["checkpoint"]
    public = Ed25519PublicKey.from_public_bytes(bytes.fromhex(checkpoint["public_key"]))
    public.verify(bytes.fromhex(checkpoint["signature"]), checkpoint_message(
        tree_size=checkpoint["tree_size"], head_hash=bytes.fromhex(checkpoint["head_hash"]),
        at_ms=checkpoint["at_ms"], key_id=checkpoint["key_id"]))
    status, report = await http_json(http, "POST", "/v1/admin/audit/verify", bearer=admin.token)
    assert status == 200, report
    assert report["ok"] is True and report["problem"] is None
    assert report["entries"] >= checkpoint["tree_size"]
    assert report["latest_checkpoint"]["id"] == checkpoint["id"]
    status, page = await http_json(http, "GET", "/v1/admin/audit?event=audit.verified",
                                   bearer=admin.token)
    assert page["entries"][0]["data"] == {"ok": True, "entries": report["entries"],
                                          "first_bad_seq": None}
