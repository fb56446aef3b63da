"""Members: list and search, add one, import a CSV file (with a report per row), a member's
page with their devices and display name, and removal (confirmed, and only after a recent
sign-in)."""

from __future__ import annotations

from aiohttp import web

from semafore.services import InvalidInput, Member, ServiceError
from semafore.web.appkeys import SERVICES
from semafore.web.portal.devices import device_view
from semafore.web.portal.guard import Admin, admin_page, form, notice, text
from semafore.web.portal.render import error_message, error_status, render, see_other
from semafore.web.portal.sign_in import reauth_required

CSV_MAX_BYTES = 1024 * 1024


def _matches(query: str, member: Member) -> bool:
    digits = "".join(ch for ch in query if ch.isdigit())
    folded = query.casefold()
    return (bool(digits) and digits in member.phone) or folded in member.user_id.casefold() \
        or (member.display_name is not None and folded in member.display_name.casefold())


async def _members_page(request: web.Request, admin: Admin, *, status: int = 200,
                        error: str | None = None, phone: str = "",
                        display_name: str = "") -> web.Response:
    members = await request.app[SERVICES].members.list_members(admin.org_id)
    query = request.query.get("q", "").strip()[:100]
    shown = [m for m in members if _matches(query, m)] if query else members
    return render("members.html", status=status, admin=admin, active="members",
                  notice=notice(request), members=shown, total=len(members), query=query,
                  error=error, phone=phone, display_name=display_name)


@admin_page
async def list_members(request: web.Request, admin: Admin) -> web.Response:
    return await _members_page(request, admin)


@admin_page
async def add_member(request: web.Request, admin: Admin) -> web.Response:
    fields = await form(request)
    phone = text(fields, "phone").replace(" ", "")
    role = "admin" if text(fields, "role") == "admin" else "member"
    name = text(fields, "display_name")
    try:
        member = await request.app[SERVICES].members.add_member(
            admin.org_id, phone, role=role, display_name=name.strip() or None,
            actor=admin.actor,
        )
    except ServiceError as error:
        return await _members_page(request, admin, status=error_status(error),
                                   error=error_message(error), phone=phone,
                                   display_name=name)
    return see_other(f"/portal/members/{member.user_id}", notice="member_added")


async def _csv_text(request: web.Request) -> str:
    upload = (await form(request)).get("file")
    raw = getattr(upload, "file", None)
    data = raw.read(CSV_MAX_BYTES + 1) if raw is not None else b""
    if not data:
        raise InvalidInput("choose a CSV file to upload", code="csv_invalid")
    if len(data) > CSV_MAX_BYTES:
        raise InvalidInput("the file is larger than 1 MiB; split it up", code="csv_invalid")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput("the CSV file must be UTF-8 text", code="csv_invalid") from None


@admin_page
async def import_members(request: web.Request, admin: Admin) -> web.Response:
    try:
        report = await request.app[SERVICES].members.import_csv(
            admin.org_id, await _csv_text(request), actor=admin.actor
        )
    except ServiceError as error:
        rows = error.details.get("rows") if error.code == "import_rejected" else None
        return render("import_report.html", status=error_status(error), admin=admin,
                      active="members", imported=False, rows=rows or [],
                      message=error_message(error))
    rows = [{"row": r.row, "status": r.status, "code": r.code} for r in report.rows]
    return render("import_report.html", admin=admin, active="members", imported=True,
                  rows=rows, message=f"{report.added} members were added.")


async def _member_page(request: web.Request, admin: Admin, *, status: int = 200,
                       error: str | None = None, name: str | None = None) -> web.Response:
    services = request.app[SERVICES]
    member = await services.members.get_member(admin.org_id, request.match_info["user_id"])
    devices = await services.devices.list_devices(admin.org_id, user_id=member.user_id)
    return render("member.html", status=status, admin=admin, active="members",
                  notice=notice(request), member=member,
                  devices=[device_view(d) for d in devices], error=error,
                  name=(member.display_name or "") if name is None else name)


@admin_page
async def member_page(request: web.Request, admin: Admin) -> web.Response:
    return await _member_page(request, admin)


@admin_page
async def rename(request: web.Request, admin: Admin) -> web.Response:
    """Set or clear (an empty field) the member's display name."""
    user_id = request.match_info["user_id"]
    name = text(await form(request), "display_name")
    try:
        await request.app[SERVICES].members.set_display_name(
            admin.org_id, user_id, name.strip() or None, actor=admin.actor
        )
    except InvalidInput as error:
        return await _member_page(request, admin, status=error_status(error),
                                  error=error_message(error), name=name)
    return see_other(f"/portal/members/{user_id}", notice="member_renamed")


@admin_page
async def confirm_remove(request: web.Request, admin: Admin) -> web.Response:
    member = await request.app[SERVICES].members.get_member(
        admin.org_id, request.match_info["user_id"]
    )
    path = f"/portal/members/{member.user_id}/remove"
    if not admin.recent:
        return reauth_required(admin, path, "Removing a member")
    return render(
        "confirm.html", admin=admin, active="members", action=path,
        title=f"Remove {_label(member)}?", button="Remove member",
        cancel=f"/portal/members/{member.user_id}",
        consequences=[
            "Their account is deleted, and every device they have is signed out at once.",
            "Messages waiting for their devices are deleted; their keys disappear from every "
            "contact's device list.",
            "Messages they already received stay on their devices, but they cannot read "
            "anything sent from now on.",
            "You can add the number again later; they would enrol as a new member.",
        ],
    )


@admin_page
async def remove(request: web.Request, admin: Admin) -> web.Response:
    user_id = request.match_info["user_id"]
    if not admin.recent:
        return reauth_required(admin, f"/portal/members/{user_id}/remove", "Removing a member")
    await request.app[SERVICES].members.remove_member(admin.org_id, user_id, actor=admin.actor)
    return see_other("/portal/members", notice="member_removed")


def _label(member: Member) -> str:
    return f"{member.display_name} ({member.phone})" if member.display_name else member.phone


def add_routes(app: web.Application) -> None:
    app.router.add_get("/portal/members", list_members)
    app.router.add_post("/portal/members", add_member)
    app.router.add_post("/portal/members/import", import_members)
    app.router.add_get("/portal/members/{user_id}", member_page)
    app.router.add_post("/portal/members/{user_id}/name", rename)
    app.router.add_get("/portal/members/{user_id}/remove", confirm_remove)
    app.router.add_post("/portal/members/{user_id}/remove", remove)
