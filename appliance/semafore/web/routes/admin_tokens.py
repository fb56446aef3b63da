"""Admin API tokens: create (the secret is shown once), list, revoke. Signed-in admins only."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from semafore.services.admin_tokens import ApiToken
from semafore.web.admin_auth import admin_principal
from semafore.web.appkeys import SERVICES
from semafore.web.bodies import json_response, read_json_object


def token_json(token: ApiToken) -> dict[str, Any]:
    return {
        "token_id": token.token_id,
        "name": token.name,
        "scopes": list(token.scopes),
        "created_by": token.created_by,
        "created_at": token.created_at,
        "expires_at": token.expires_at,
        "revoked_at": token.revoked_at,
        "last_used_day": token.last_used_day,
    }


async def create(request: web.Request) -> web.Response:
    principal = await admin_principal(request, session_only=True, recent_sign_in=True)
    body = await read_json_object(request)
    created = await request.app[SERVICES].api_tokens.create(
        principal, name=body.get("name"), scopes=body.get("scopes"),
        expires_in_days=body.get("expires_in_days"),
    )
    return json_response({**token_json(created.token), "token": created.secret}, status=201)


async def list_tokens(request: web.Request) -> web.Response:
    principal = await admin_principal(request, session_only=True)
    tokens = await request.app[SERVICES].api_tokens.list(principal)
    return json_response({"tokens": [token_json(t) for t in tokens]})


async def revoke(request: web.Request) -> web.Response:
    principal = await admin_principal(request, session_only=True)
    token = await request.app[SERVICES].api_tokens.revoke(
        principal, request.match_info["token_id"]
    )
    return json_response(token_json(token))


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1/admin/tokens", create)
    app.router.add_get("/v1/admin/tokens", list_tokens)
    app.router.add_delete("/v1/admin/tokens/{token_id}", revoke)
