"""The organisation overview and its settings page (code provider test, limits, sign-up)."""

from __future__ import annotations

from aiohttp import web

from semafore.services import ServiceError
from semafore.web.appkeys import SERVICES, SETTINGS
from semafore.web.portal.guard import Admin, admin_page, notice
from semafore.web.portal.render import error_message, error_status, render, see_other


async def root(request: web.Request) -> web.Response:
    return see_other("/portal/overview")


@admin_page
async def overview(request: web.Request, admin: Admin) -> web.Response:
    services = request.app[SERVICES]
    members = await services.members.list_members(admin.org_id)
    pending = await services.devices.list_devices(admin.org_id, status="pending")
    people = {m.user_id: m for m in members}
    return render("overview.html", admin=admin, active="overview", notice=notice(request),
                  members=members, pending=pending, people=people)


def _settings_page(request: web.Request, admin: Admin, *, status: int = 200,
                   **extra: object) -> web.Response:
    services = request.app[SERVICES]
    settings = request.app[SETTINGS]
    context: dict[str, object] = {"test_result": None, "test_error": None}
    context.update(extra)
    return render(
        "settings.html", status=status, admin=admin, active="settings", notice=notice(request),
        provider=services.otp.provider.name, orgs=settings.orgs,
        recent_minutes=settings.admin.recent_sign_in_seconds // 60,
        idle_minutes=settings.admin.session_idle_seconds // 60, **context,
    )


@admin_page
async def settings_page(request: web.Request, admin: Admin) -> web.Response:
    return _settings_page(request, admin)


@admin_page
async def test_send(request: web.Request, admin: Admin) -> web.Response:
    """The fixed test message to the admin's own number (the service picks the number, caps
    and audits it)."""
    try:
        phone = await request.app[SERVICES].otp.send_test(
            org_id=admin.org_id, member_id=admin.principal.member_id, actor=admin.actor
        )
    except ServiceError as error:
        return _settings_page(request, admin, status=error_status(error),
                              test_error=error_message(error))
    return _settings_page(request, admin, test_result=phone)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/portal", root)
    app.router.add_get("/portal/", root)
    app.router.add_get("/portal/overview", overview)
    app.router.add_get("/portal/settings", settings_page)
    app.router.add_post("/portal/settings/test-message", test_send)
