"""Getting in: a member's device enrols by phone OTP; an organisation signs itself up (when
the operator allows it). Every route here is unauthenticated or carries its own credential."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from semafore.services.sessions import TokenPair
from semafore.web.appkeys import SERVICES
from semafore.web.bodies import json_response, read_json_object
from semafore.web.device_auth import bearer_credential

SENT = {"status": "sent"}


def tokens_json(tokens: TokenPair, now: float) -> dict[str, Any]:
    return {
        "token_type": tokens.token_type,
        "access_token": tokens.access_token,
        "expires_in": max(0, tokens.access_expires_at - int(now)),
        "access_expires_at": tokens.access_expires_at,
        "refresh_token": tokens.refresh_token,
        "refresh_expires_at": tokens.refresh_expires_at,
    }


async def request_code(request: web.Request) -> web.Response:
    body = await read_json_object(request)
    await request.app[SERVICES].enrolment.request_code(
        body.get("phone"), client_address=request.remote
    )
    return json_response(SENT, status=202)


async def verify_code(request: web.Request) -> web.Response:
    body = await read_json_object(request)
    ticket = await request.app[SERVICES].enrolment.verify_code(body.get("phone"), body.get("code"))
    return json_response({
        "ticket": ticket.ticket,
        "user_id": ticket.user_id,
        "device_id": ticket.device_id,
        "expires_at": ticket.expires_at,
    })


async def register(request: web.Request) -> web.Response:
    ticket = bearer_credential(request, "the enrolment ticket")
    body = await read_json_object(request)
    registration = await request.app[SERVICES].enrolment.register(ticket, body)
    return json_response(
        {
            "status": registration.status,
            "user_id": registration.user_id,
            "device_id": registration.device_id,
            "enrolment_secret": registration.enrolment_secret,
        },
        status=201,
    )


async def status(request: web.Request) -> web.Response:
    secret = bearer_credential(request, "the enrolment secret")
    services = request.app[SERVICES]
    state = await services.enrolment.status(secret)
    body: dict[str, Any] = {
        "status": state.status, "user_id": state.user_id, "device_id": state.device_id
    }
    if state.tokens is not None:
        body["tokens"] = tokens_json(state.tokens, services.clock.now())
    return json_response(body)


async def request_signup_code(request: web.Request) -> web.Response:
    body = await read_json_object(request)
    await request.app[SERVICES].orgs.request_signup_code(
        body.get("phone"), client_address=request.remote
    )
    return json_response(SENT, status=202)


async def sign_up(request: web.Request) -> web.Response:
    body = await read_json_object(request)
    org, admin = await request.app[SERVICES].orgs.sign_up(
        body.get("name"), body.get("phone"), body.get("code")
    )
    return json_response(
        {"org_id": org.org_id, "name": org.name, "member_limit": org.member_limit,
         "admin_user_id": admin.user_id},
        status=201,
    )


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1/enrolment/code", request_code)
    app.router.add_post("/v1/enrolment/verify", verify_code)
    app.router.add_post("/v1/enrolment/register", register)
    app.router.add_post("/v1/enrolment/status", status)
    app.router.add_post("/v1/orgs/signup/code", request_signup_code)
    app.router.add_post("/v1/orgs/signup", sign_up)
