"""Authentication of admins on every ``/v1/admin/`` route.

:func:`admin_principal` reads the credential (an admin session token ``sfs_…`` or an admin API
token ``sfk_…``) from ``Authorization: Bearer`` and asks the admin sign-in service who it is:

* anything else — a device access token included — is ``401 admin_credentials_required``;
* an ended session or a dead token is ``401 admin_session_expired`` / ``api_token_invalid``;
* an API token without the route's ``scope`` is ``403 scope_missing``; a route that only a
  signed-in admin may use (``session_only``: token management, sign-out, re-auth) refuses API
  tokens with ``403 session_required``;
* a route that changes who has access (``recent_sign_in``: approve or revoke a device, remove
  a member, create an API token) refuses a session whose last second-factor proof is older than
  ``admin.recent_sign_in_seconds`` with ``403 recent_sign_in_required``; the admin proves TOTP
  again with ``POST /v1/admin/session/reauth``. API tokens are authorised by scope alone.

The browser portal keeps the same session token in a cookie; it reads it with its own
credential function and calls the same service, so both paths share every check.
"""

from __future__ import annotations

from aiohttp import web

from semafore.services import AdminPrincipal
from semafore.web.appkeys import SERVICES
from semafore.web.device_auth import bearer_credential

WHAT = "an admin session token or admin API token"


def admin_credential(request: web.Request) -> str:
    """The bearer credential of the request (401 when there is none)."""
    return bearer_credential(request, WHAT)


async def admin_principal(
    request: web.Request, scope: str | None = None, *, session_only: bool = False,
    recent_sign_in: bool = False,
) -> AdminPrincipal:
    """The admin making this request, allowed ``scope`` (401/403 otherwise)."""
    return await request.app[SERVICES].admin_auth.authenticate(
        admin_credential(request), scope=scope, session_only=session_only,
        recent_sign_in=recent_sign_in,
    )
