"""Bearer-token authentication of a device for the relay's routes.

Stand-in until ``semafore.web.device_auth.device_principal`` (identity) is in the tree; it
checks the same thing through the same service (token valid, device still approved).
"""

from __future__ import annotations

from aiohttp import web

from semafore.services import DevicePrincipal, Unauthenticated
from semafore.web.appkeys import SERVICES


async def device_principal(request: web.Request) -> DevicePrincipal:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("a device access token is required", code="unauthenticated")
    return await request.app[SERVICES].sessions.authenticate(token.strip())
