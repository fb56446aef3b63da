"""Self-service organisation creation (only when ``orgs.self_service_signup`` is on): the
organisation's name and the first admin's number, then the code sent to that number."""

from __future__ import annotations

from aiohttp import web

from semafore.services import ServiceError
from semafore.web.appkeys import SERVICES, SETTINGS
from semafore.web.portal import security
from semafore.web.portal.guard import form, sign_in_form, sign_in_secret, text, with_sign_in_cookie
from semafore.web.portal.render import error_message, error_status, render


def _page(request: web.Request, template: str, *, status: int = 200, **context: object
          ) -> web.Response:
    secret, new = sign_in_secret(request)
    settings = request.app[SETTINGS].orgs
    if not settings.self_service_signup:
        return render("signup_off.html", status=404, admin=None)
    response = render(template, status=status, admin=None, csrf=security.csrf_token(secret),
                      free_limit=settings.free_plan_member_limit, **context)
    return with_sign_in_cookie(response, secret, new)


async def start_page(request: web.Request) -> web.Response:
    return _page(request, "signup_start.html", name="", phone="", error=None)


@sign_in_form
async def send_code(request: web.Request) -> web.Response:
    fields = await form(request)
    name, phone = text(fields, "name"), text(fields, "phone").replace(" ", "")
    try:
        await request.app[SERVICES].orgs.request_signup_code(phone,
                                                             client_address=request.remote)
    except ServiceError as error:
        return _page(request, "signup_start.html", status=error_status(error), name=name,
                     phone=phone, error=error_message(error))
    return _page(request, "signup_code.html", name=name, phone=phone, error=None)


@sign_in_form
async def create(request: web.Request) -> web.Response:
    fields = await form(request)
    name, phone = text(fields, "name"), text(fields, "phone")
    try:
        org, _admin = await request.app[SERVICES].orgs.sign_up(name, phone, text(fields, "code"))
    except ServiceError as error:
        return _page(request, "signup_code.html", status=error_status(error), name=name,
                     phone=phone, error=error_message(error))
    return _page(request, "signup_done.html", org=org)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/portal/sign-up", start_page)
    app.router.add_post("/portal/sign-up", send_code)
    app.router.add_post("/portal/sign-up/code", create)
