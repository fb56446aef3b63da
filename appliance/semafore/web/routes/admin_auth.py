"""Admin sign-in (phone code, then TOTP or a recovery code), the session, re-auth, sign-out."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from semafore.services.admin_auth import AdminSession, SessionInfo, SignInChallenge
from semafore.web.admin_auth import admin_credential, admin_principal
from semafore.web.appkeys import SERVICES
from semafore.web.bodies import json_response, read_json_object


def challenge_json(challenge: SignInChallenge) -> dict[str, Any]:
    body: dict[str, Any] = {
        "sign_in_ticket": challenge.ticket,
        "expires_at": challenge.expires_at,
        "next": challenge.next,
    }
    if challenge.totp_uri is not None:
        body["totp"] = {
            "uri": challenge.totp_uri,
            "secret": challenge.totp_secret,
            "qr_svg": challenge.totp_qr_svg,
        }
    return body


def session_json(session: AdminSession) -> dict[str, Any]:
    body: dict[str, Any] = {
        "token_type": "Bearer",
        "session_token": session.token,
        "session_id": session.session_id,
        "org_id": session.org_id,
        "member_id": session.member_id,
        "expires_at": session.expires_at,
        "idle_timeout_seconds": session.idle_timeout_seconds,
    }
    if session.recovery_codes:
        body["recovery_codes"] = session.recovery_codes
    return body


def session_info_json(info: SessionInfo) -> dict[str, Any]:
    return {
        "session_id": info.session_id,
        "org_id": info.org_id,
        "member_id": info.member_id,
        "created_at": info.created_at,
        "expires_at": info.expires_at,
        "idle_expires_at": info.idle_expires_at,
        "reauthenticated_at": info.reauthenticated_at,
        "recovery_codes_left": info.recovery_codes_left,
    }


async def start(request: web.Request) -> web.Response:
    body = await read_json_object(request)
    await request.app[SERVICES].admin_auth.start_sign_in(
        body.get("phone"), client_address=request.remote
    )
    return json_response({"status": "sent"}, status=202)


async def verify(request: web.Request) -> web.Response:
    body = await read_json_object(request)
    challenge = await request.app[SERVICES].admin_auth.verify_phone_code(
        body.get("phone"), body.get("code"), client_address=request.remote
    )
    return json_response(challenge_json(challenge))


async def complete(request: web.Request) -> web.Response:
    body = await read_json_object(request)
    session = await request.app[SERVICES].admin_auth.complete_sign_in(
        body.get("sign_in_ticket"), code=body.get("code"), recovery_code=body.get("recovery_code"),
        client_address=request.remote,
    )
    return json_response(session_json(session), status=201)


async def session_info(request: web.Request) -> web.Response:
    principal = await admin_principal(request, session_only=True)
    info = await request.app[SERVICES].admin_auth.session_info(
        principal, admin_credential(request)
    )
    return json_response(session_info_json(info))


async def reauth(request: web.Request) -> web.Response:
    principal = await admin_principal(request, session_only=True)
    body = await read_json_object(request)
    when = await request.app[SERVICES].admin_auth.reauthenticate(
        principal, admin_credential(request), code=body.get("code"),
        recovery_code=body.get("recovery_code"), client_address=request.remote,
    )
    return json_response({"reauthenticated_at": when})


async def sign_out(request: web.Request) -> web.Response:
    principal = await admin_principal(request, session_only=True)
    await request.app[SERVICES].admin_auth.sign_out(principal, admin_credential(request))
    return web.Response(status=204)


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1/admin/sign-in", start)
    app.router.add_post("/v1/admin/sign-in/verify", verify)
    app.router.add_post("/v1/admin/sign-in/complete", complete)
    app.router.add_get("/v1/admin/session", session_info)
    app.router.add_post("/v1/admin/session/reauth", reauth)
    app.router.add_post("/v1/admin/sign-out", sign_out)
