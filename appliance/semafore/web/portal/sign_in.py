"""Sign-in (phone code, then authenticator code; enrolment with a QR code and recovery codes
the first time), confirming it's you again ("recent sign-in"), and sign-out."""

from __future__ import annotations

import base64
import re

from aiohttp import web

from semafore.services import ServiceError
from semafore.services import totp as totp_codes
from semafore.web.appkeys import SERVICES, SETTINGS
from semafore.web.portal import security
from semafore.web.portal.guard import (
    Admin,
    admin_page,
    form,
    notice,
    sign_in_form,
    sign_in_secret,
    text,
    with_sign_in_cookie,
)
from semafore.web.portal.render import error_message, error_status, render, see_other

# Where "confirm it's you" may send the admin back to: a portal path, nothing else.
_BACK = re.compile(r"^/portal/[A-Za-z0-9_/\-]*$")
DEFAULT_BACK = "/portal/approvals"


def safe_back(value: str) -> str:
    return value if _BACK.fullmatch(value) and "//" not in value else DEFAULT_BACK


def qr_data_uri(uri: str) -> str:
    """The enrolment QR code as an ``img`` source (never inline markup: CSP and escaping)."""
    svg = totp_codes.qr_svg(uri).encode()
    return "data:image/svg+xml;base64," + base64.b64encode(svg).decode()


def _grouped(secret: str) -> str:
    return " ".join(secret[i:i + 4] for i in range(0, len(secret), 4))


def _page(request: web.Request, template: str, secret: str, new: bool, *, status: int = 200,
          **context: object) -> web.Response:
    signup = request.app[SETTINGS].orgs.self_service_signup
    response = render(template, status=status, admin=None, csrf=security.csrf_token(secret),
                      signup_enabled=signup, **context)
    return with_sign_in_cookie(response, secret, new)


async def phone_page(request: web.Request) -> web.Response:
    secret, new = sign_in_secret(request)
    return _page(request, "sign_in_phone.html", secret, new, notice=notice(request), error=None,
                 phone="")


@sign_in_form
async def send_code(request: web.Request) -> web.Response:
    secret, new = sign_in_secret(request)
    phone = text(await form(request), "phone")
    try:
        await request.app[SERVICES].admin_auth.start_sign_in(phone, client_address=request.remote)
    except ServiceError as error:
        return _page(request, "sign_in_phone.html", secret, new, status=error_status(error),
                     notice=None, error=error_message(error), phone=phone)
    return _page(request, "sign_in_code.html", secret, new, phone=phone, error=None)


@sign_in_form
async def check_code(request: web.Request) -> web.Response:
    secret, new = sign_in_secret(request)
    fields = await form(request)
    phone = text(fields, "phone")
    try:
        challenge = await request.app[SERVICES].admin_auth.verify_phone_code(
            phone, text(fields, "code"), client_address=request.remote
        )
    except ServiceError as error:
        return _page(request, "sign_in_code.html", secret, new, status=error_status(error),
                     phone=phone, error=error_message(error))
    return _second_factor_page(request, secret, new, challenge.ticket, challenge.totp_uri,
                               challenge.totp_secret)


def _second_factor_page(request: web.Request, secret: str, new: bool, ticket: str,
                        totp_uri: str | None, totp_secret: str | None, *,
                        error: str | None = None, status: int = 200) -> web.Response:
    enrol = None
    if totp_uri and totp_secret:
        enrol = {"uri": totp_uri, "secret": totp_secret, "grouped": _grouped(totp_secret),
                 "qr": qr_data_uri(totp_uri)}
    return _page(request, "sign_in_totp.html", secret, new, status=status, ticket=ticket,
                 enrol=enrol, error=error)


@sign_in_form
async def complete(request: web.Request) -> web.Response:
    secret, new = sign_in_secret(request)
    fields = await form(request)
    ticket, code, recovery = text(fields, "ticket"), text(fields, "code"), text(fields, "recovery")
    try:
        session = await request.app[SERVICES].admin_auth.complete_sign_in(
            ticket, code=code or None, recovery_code=recovery or None,
            client_address=request.remote,
        )
    except ServiceError as error:
        # The enrolment secret rides along in the form so that a mistyped first code can be
        # retried without a new sign-in (the page showed it already).
        uri, totp_secret = text(fields, "totp_uri"), text(fields, "totp_secret")
        enrolling = uri.startswith("otpauth://") and bool(totp_secret)
        return _second_factor_page(
            request, secret, new, ticket, uri if enrolling else None,
            totp_secret if enrolling else None, error=error_message(error),
            status=error_status(error),
        )
    if session.recovery_codes:
        response = render("sign_in_recovery.html", admin=None, codes=session.recovery_codes)
    else:
        response = see_other("/portal/overview")
    security.clear_cookie(response, security.SIGN_IN_COOKIE)
    security.set_cookie(response, security.SESSION_COOKIE, session.token)
    return response


@admin_page
async def reauth_page(request: web.Request, admin: Admin) -> web.Response:
    return render("reauth.html", admin=admin, back=safe_back(request.query.get("back", "")),
                  error=None, reason=None)


@admin_page
async def reauth(request: web.Request, admin: Admin) -> web.Response:
    fields = await form(request)
    back = safe_back(text(fields, "back"))
    code, recovery = text(fields, "code"), text(fields, "recovery")
    try:
        await request.app[SERVICES].admin_auth.reauthenticate(
            admin.principal, admin.token, code=code or None, recovery_code=recovery or None,
            client_address=request.remote,
        )
    except ServiceError as error:
        return render("reauth.html", status=error_status(error), admin=admin, back=back,
                      error=error_message(error), reason=None)
    return see_other(back, notice="reauthenticated")


def reauth_required(admin: Admin, back: str, reason: str) -> web.Response:
    """The page shown instead of an approval or revocation when the sign-in is not recent."""
    return render("reauth.html", status=403, admin=admin, back=safe_back(back), error=None,
                  reason=reason)


@admin_page
async def sign_out(request: web.Request, admin: Admin) -> web.Response:
    await request.app[SERVICES].admin_auth.sign_out(admin.principal, admin.token)
    response = see_other("/portal/sign-in", notice="signed_out")
    security.clear_cookie(response, security.SESSION_COOKIE)
    return response


def add_routes(app: web.Application) -> None:
    app.router.add_get("/portal/sign-in", phone_page)
    app.router.add_post("/portal/sign-in", send_code)
    app.router.add_post("/portal/sign-in/code", check_code)
    app.router.add_post("/portal/sign-in/second-factor", complete)
    app.router.add_get("/portal/reauth", reauth_page)
    app.router.add_post("/portal/reauth", reauth)
    app.router.add_post("/portal/sign-out", sign_out)
