"""Admin API: the members of the caller's organisation. Every lookup is scoped to that
organisation; another organisation's members answer exactly like absent ones (404)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from semafore.services import InvalidInput, Member
from semafore.web.admin_auth import admin_principal
from semafore.web.appkeys import SERVICES
from semafore.web.bodies import json_response, read_body, read_json_object

CSV_TYPES = frozenset({"text/csv", "text/plain"})


def member_json(member: Member) -> dict[str, Any]:
    return {
        "user_id": member.user_id,
        "phone": member.phone,
        "display_name": member.display_name,
        "role": member.role,
        "joined_at": datetime.fromtimestamp(member.joined_at, UTC).isoformat(),
        "last_active": member.last_active,
        "device_count": member.device_count,
    }


async def list_members(request: web.Request) -> web.Response:
    principal = await admin_principal(request, "members:read")
    members = await request.app[SERVICES].members.list_members(principal.org_id)
    return json_response({"members": [member_json(m) for m in members]})


async def add_member(request: web.Request) -> web.Response:
    principal = await admin_principal(request, "members:write")
    body = await read_json_object(request)
    member = await request.app[SERVICES].members.add_member(
        principal.org_id, body.get("phone"), role=body.get("role", "member"),
        display_name=body.get("display_name"), actor=principal.actor,
    )
    return json_response(member_json(member), status=201)


async def import_members(request: web.Request) -> web.Response:
    principal = await admin_principal(request, "members:write")
    if request.content_type not in CSV_TYPES:
        raise web.HTTPUnsupportedMediaType(text="send the file as text/csv")
    try:
        text = (await read_body(request)).decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput("the CSV file must be UTF-8", code="csv_invalid") from None
    report = await request.app[SERVICES].members.import_csv(
        principal.org_id, text, actor=principal.actor
    )
    return json_response(
        {"imported": report.imported, "added": report.added,
         "rows": [{"row": r.row, "status": r.status, "user_id": r.user_id}
                  for r in report.rows]},
        status=201,
    )


async def get_member(request: web.Request) -> web.Response:
    principal = await admin_principal(request, "members:read")
    member = await request.app[SERVICES].members.get_member(
        principal.org_id, request.match_info["user_id"]
    )
    return json_response(member_json(member))


async def update_member(request: web.Request) -> web.Response:
    principal = await admin_principal(request, "members:write")
    body = await read_json_object(request)
    member = await request.app[SERVICES].members.update(
        principal.org_id, request.match_info["user_id"], body, actor=principal.actor
    )
    return json_response(member_json(member))


async def remove_member(request: web.Request) -> web.Response:
    principal = await admin_principal(request, "members:write", recent_sign_in=True)
    await request.app[SERVICES].members.remove_member(
        principal.org_id, request.match_info["user_id"], actor=principal.actor
    )
    return web.Response(status=204)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/v1/admin/members", list_members)
    app.router.add_post("/v1/admin/members", add_member)
    app.router.add_post("/v1/admin/members/import", import_members)
    app.router.add_get("/v1/admin/members/{user_id}", get_member)
    app.router.add_patch("/v1/admin/members/{user_id}", update_member)
    app.router.add_delete("/v1/admin/members/{user_id}", remove_member)
