"""What runs around every portal handler.

``admin_page`` wraps a page for signed-in admins: for a POST it checks the Origin and the CSRF
token *before* anything else (so a forged request touches nothing, not even the session's
last-seen time), then asks the admin sign-in service who the session cookie belongs to, exactly
as the JSON API does for a bearer token. ``sign_in_form`` does the same checks for the forms
used before there is a session (sign-in, sign-up), against the sign-in cookie.

A service error that a page does not handle itself becomes an error page with the matching
status; an ended session becomes a redirect to the sign-in page.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from semafore.services import AdminPrincipal, Forbidden, Org, ServiceError, Unauthenticated
from semafore.web.appkeys import SERVICES, SETTINGS
from semafore.web.bodies import read_form
from semafore.web.portal import security, wording
from semafore.web.portal.render import error_message, error_status, render, see_other

PageHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]
AdminHandler = Callable[[web.Request, "Admin"], Awaitable[web.StreamResponse]]
_MAX_FIELD = 4096


@dataclass(frozen=True, slots=True)
class Admin:
    """The signed-in admin of this request."""

    principal: AdminPrincipal
    token: str
    org: Org
    recent: bool  # second factor proven recently enough to approve and revoke

    @property
    def org_id(self) -> str:
        return self.principal.org_id

    @property
    def actor(self) -> str:
        return self.principal.actor

    @property
    def csrf(self) -> str:
        return security.csrf_token(self.token)


async def form(request: web.Request) -> Any:
    """The posted form (aiohttp caches it, so reading it twice is free; 408 if it stalls)."""
    return await read_form(request)


def text(fields: Any, name: str, *, strip: bool = True) -> str:
    """A text field, or "" (a file or an oversized value counts as absent)."""
    value = fields.get(name)
    if not isinstance(value, str) or len(value) > _MAX_FIELD:
        return ""
    return value.strip() if strip else value


def notice(request: web.Request) -> str | None:
    return wording.NOTICES.get(request.query.get("notice", ""))


def csrf_refused() -> web.Response:
    return render("error.html", status=403, admin=None, title="Request refused",
                  message="This form could not be accepted: it did not come from a page of "
                          "this portal, or it has expired. Go back, reload the page and try "
                          "again.")


async def _check_post(request: web.Request, secret: str | None) -> bool:
    if request.method != "POST":
        return True
    try:
        security.check_origin(request)
        security.check_csrf(text(await form(request), security.CSRF_FIELD), secret)
    except security.CsrfRejected:
        return False
    return True


def admin_page(handler: AdminHandler) -> PageHandler:
    @functools.wraps(handler)
    async def page(request: web.Request) -> web.StreamResponse:
        token = security.cookie_value(request, security.SESSION_COOKIE)
        if not await _check_post(request, token):
            return csrf_refused()
        services = request.app[SERVICES]
        try:
            principal = await services.admin_auth.authenticate(token, session_only=True)
        except (Unauthenticated, Forbidden):
            response = see_other("/portal/sign-in",
                                 **({"notice": "session_ended"} if token else {}))
            security.clear_cookie(response, security.SESSION_COOKIE)
            return response
        recent = principal.signed_in_recently(
            services.clock.now(), request.app[SETTINGS].admin.recent_sign_in_seconds
        )
        admin = Admin(principal, token or "", await services.orgs.get_org(principal.org_id),
                      recent)
        try:
            return await handler(request, admin)
        except ServiceError as error:
            return render("error.html", status=error_status(error), admin=admin,
                          title="That didn't work", message=error_message(error))

    return page


def sign_in_form(handler: PageHandler) -> PageHandler:
    @functools.wraps(handler)
    async def page(request: web.Request) -> web.StreamResponse:
        if not await _check_post(
            request, security.cookie_value(request, security.SIGN_IN_COOKIE)
        ):
            return csrf_refused()
        return await handler(request)

    return page


def sign_in_secret(request: web.Request) -> tuple[str, bool]:
    """The sign-in cookie's secret, and whether it is new (then the response must set it)."""
    secret = security.cookie_value(request, security.SIGN_IN_COOKIE)
    if secret is not None:
        return secret, False
    return security.new_sign_in_secret(), True


def with_sign_in_cookie(response: web.Response, secret: str, new: bool) -> web.Response:
    if new:
        security.set_cookie(response, security.SIGN_IN_COOKIE, secret)
    return response
