"""Authentication of devices: ``Authorization: Bearer <access token>`` on every device route.

:func:`device_principal` checks the token (pinned EdDSA JWT, device audience) and that the
device is still approved and its session alive; anything else is 401. Enrolment routes use
:func:`bearer_credential` for the ticket and the enrolment secret, which are not access tokens.
"""

from __future__ import annotations

from aiohttp import web

from semafore.services import DevicePrincipal, Unauthenticated
from semafore.web.appkeys import SERVICES

MAX_CREDENTIAL_CHARS = 4096


def bearer_credential(request: web.Request, what: str = "an access token") -> str:
    """The credential of an ``Authorization: Bearer`` header, or 401 naming what is needed."""
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    value = value.strip()
    if scheme.lower() != "bearer" or not value or len(value) > MAX_CREDENTIAL_CHARS:
        raise Unauthenticated(f"send {what} as Authorization: Bearer", code="unauthenticated")
    return value


async def device_principal(request: web.Request) -> DevicePrincipal:
    """The approved device making this request (401 otherwise)."""
    token = bearer_credential(request, "a device access token")
    return await request.app[SERVICES].sessions.authenticate(token)
