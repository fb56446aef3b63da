"""Prometheus scrape endpoint.

Access: without ``metrics.token_file`` only loopback peers may scrape (a Prometheus agent on the
appliance host); with it, every scrape must send ``Authorization: Bearer <token>`` (any peer,
loopback included), which is how a central Prometheus scrapes over the network.
"""

from __future__ import annotations

import hmac
import ipaddress

from aiohttp import web

from semafore.services import Forbidden, Unauthenticated
from semafore.web.appkeys import METRICS, METRICS_TOKEN


def is_loopback(peer: str | None) -> bool:
    if not peer:
        return False
    try:
        address = ipaddress.ip_address(peer.split("%", 1)[0])
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return (mapped or address).is_loopback


def check_access(token: str | None, peer: str | None, authorization: str) -> None:
    """Raise unless this scrape is allowed (see the module docstring)."""
    if token is None:
        if not is_loopback(peer):
            raise Forbidden(
                "metrics are served to loopback peers only unless metrics.token_file is set",
                code="metrics_forbidden",
            )
        return
    scheme, _, presented = authorization.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        presented.strip().encode(), token.encode()
    ):
        raise Unauthenticated("a valid metrics bearer token is required", code="unauthenticated")


async def metrics(request: web.Request) -> web.Response:
    check_access(
        request.app[METRICS_TOKEN], request.remote, request.headers.get("Authorization", "")
    )
    registry = request.app[METRICS]
    return web.Response(body=registry.render(), headers={"Content-Type": registry.content_type})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/metrics", metrics)
