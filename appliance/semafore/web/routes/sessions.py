"""Device sessions: exchanging a (single-use) refresh token for a new token pair."""

from __future__ import annotations

from aiohttp import web

from semafore.web.appkeys import SERVICES
from semafore.web.bodies import json_response, read_json_object
from semafore.web.routes.enrolment import tokens_json


async def refresh(request: web.Request) -> web.Response:
    body = await read_json_object(request)
    services = request.app[SERVICES]
    tokens = await services.sessions.refresh(body.get("refresh_token"))
    return json_response(tokens_json(tokens, services.clock.now()))


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1/auth/refresh", refresh)
