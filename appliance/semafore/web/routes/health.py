"""Liveness and readiness probes."""

from __future__ import annotations

from aiohttp import web

from semafore.web import problems
from semafore.web.appkeys import SERVICES
from semafore.web.bodies import json_response


async def healthz(request: web.Request) -> web.Response:
    """The process is up and serving HTTP (it does not look at the database)."""
    return json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Ready for traffic: the database answers a query."""
    if await request.app[SERVICES].health.ready():
        return json_response({"status": "ready"})
    return problems.problem_response(503, "not_ready", "The database is not reachable.")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
