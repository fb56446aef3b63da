"""The organisation overview and its settings page (code provider test, limits, sign-up)."""

from __future__ import annotations

from aiohttp import web

from semafore.services import ServiceError
from semafore.web.appkeys import SERVICES, SETTINGS
from semafore.web.portal.guard import Admin, admin_page, notice
from semafore.web.portal.render import error_message, render, see_other

TEST_MESSAGE = (
    "SemaFore: this is a test message from your admin portal. Your code provider works; "
    "no action is needed."
)


async def root(request: web.Request) -> web.Response:
    return see_other("/portal/overview")


@admin_page
async def overview(request: web.Request, admin: Admin) -> web.Response:
    services = request.app[SERVICES]
    members = await services.members.list_members(admin.org_id)
    pending = await services.devices.list_devices(admin.org_id, status="pending")
    phones = {m.user_id: m.phone for m in members}
    return render("overview.html", admin=admin, active="overview", notice=notice(request),
                  members=members, pending=pending, phones=phones)


def _settings_page(request: web.Request, admin: Admin, **extra: object) -> web.Response:
    services = request.app[SERVICES]
    settings = request.app[SETTINGS]
    context: dict[str, object] = {"test_result": None, "test_error": None}
    context.update(extra)
    return render(
        "settings.html", admin=admin, active="settings", notice=notice(request),
        provider=services.otp.provider.name, orgs=settings.orgs,
        recent_minutes=settings.admin.recent_sign_in_seconds // 60,
        idle_minutes=settings.admin.session_idle_seconds // 60, **context,
    )


@admin_page
async def settings_page(request: web.Request, admin: Admin) -> web.Response:
    return _settings_page(request, admin)


@admin_page
async def test_send(request: web.Request, admin: Admin) -> web.Response:
    """Send a fixed test message through the configured provider to the admin's own number
    (never another number: this cannot become a way to message people)."""
    services = request.app[SERVICES]
    me = await services.members.get_member(admin.org_id, admin.principal.member_id)
    try:
        await services.otp.provider.send(me.phone, TEST_MESSAGE)
    except ServiceError as error:
        return _settings_page(request, admin, test_error=error_message(error))
    return _settings_page(request, admin, test_result=me.phone)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/portal", root)
    app.router.add_get("/portal/", root)
    app.router.add_get("/portal/overview", overview)
    app.router.add_get("/portal/settings", settings_page)
    app.router.add_post("/portal/settings/test-message", test_send)
