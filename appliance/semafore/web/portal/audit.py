"""The audit log: filtered pages (type, actor, dates), JSON Lines export of the same filter,
chain verification with the latest signed checkpoint, and signing a checkpoint now."""

from __future__ import annotations

import json
import re
from datetime import date, timedelta
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from semafore.services import InvalidInput
from semafore.services.audit import entry_dict, parse_filter
from semafore.storage.audit_chain import checkpoint_dict
from semafore.web.appkeys import SERVICES
from semafore.web.portal import wording
from semafore.web.portal.guard import Admin, admin_page, notice
from semafore.web.portal.render import error_message, format_phone, render, see_other

PAGE_SIZE = 25
FILTERS = ("event", "actor", "since", "until")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_FLUSH_BYTES = 64 * 1024


def _filters(request: web.Request) -> dict[str, str]:
    return {name: request.query.get(name, "").strip()[:200] for name in FILTERS}


def _day_after(value: str) -> str:
    """The "to" date is inclusive on the page; the service's ``until`` is exclusive."""
    if _DATE.fullmatch(value):
        try:
            return (date.fromisoformat(value) + timedelta(days=1)).isoformat()
        except ValueError:
            pass
    return value


def _service_filter(org_id: str, chosen: dict[str, str]) -> Any:
    return parse_filter(org_id, event=chosen["event"], actor=chosen["actor"],
                        since=chosen["since"], until=_day_after(chosen["until"]))


def _label(ref: str | None, phones: dict[str, str]) -> str:
    """member:u_1 -> its phone number; device:u_1/2 -> "<phone>, device 2"; else as stored."""
    if ref is None:
        return "—"
    if ref.startswith("device:") and "/" in ref:
        user_id, device_id = ref[len("device:"):].rsplit("/", 1)
        phone = phones.get(f"member:{user_id}")
        return f"{format_phone(phone)}, device {device_id}" if phone else ref
    return format_phone(phones[ref]) if ref in phones else ref


def _query(chosen: dict[str, str], **extra: object) -> str:
    pairs = {k: v for k, v in chosen.items() if v}
    pairs.update({k: str(v) for k, v in extra.items() if v is not None})
    return urlencode(pairs)


@admin_page
async def audit_page(request: web.Request, admin: Admin) -> web.Response:
    services = request.app[SERVICES]
    chosen = _filters(request)
    try:
        page = await services.audit.list_entries(
            _service_filter(admin.org_id, chosen), before=request.query.get("before"),
            limit=PAGE_SIZE,
        )
    except InvalidInput as error:  # a filter the service cannot read: say so, keep the form
        return render("audit.html", status=400, admin=admin, active="audit", notice=None,
                      chosen=chosen, error=error_message(error), entries=[],
                      groups=wording.EVENT_GROUPS, events=sorted(wording.EVENTS.items()),
                      older=None, first_page=None, export=None)
    phones = {f"member:{m.user_id}": m.phone
              for m in await services.members.list_members(admin.org_id)}
    return render(
        "audit.html", admin=admin, active="audit", notice=notice(request), chosen=chosen,
        entries=[(e, entry_dict(e)["data"], _label(e.actor, phones), _label(e.target, phones))
                 for e in page.entries],
        groups=wording.EVENT_GROUPS, events=sorted(wording.EVENTS.items()),
        older=_query(chosen, before=page.next_before) if page.next_before else None,
        first_page=_query(chosen) if request.query.get("before") else None,
        export=_query(chosen), error=None,
    )


@admin_page
async def export(request: web.Request, admin: Admin) -> web.StreamResponse:
    entries = request.app[SERVICES].audit.export(
        _service_filter(admin.org_id, _filters(request))
    )
    response = web.StreamResponse(headers={
        "Content-Type": "application/jsonl",
        "Content-Disposition": 'attachment; filename="semafore-audit.jsonl"',
    })
    await response.prepare(request)
    buffer = bytearray()
    async for entry in entries:
        buffer += json.dumps(entry_dict(entry), separators=(",", ":"), sort_keys=True).encode()
        buffer += b"\n"
        if len(buffer) >= _FLUSH_BYTES:
            await response.write(bytes(buffer))
            buffer.clear()
    await response.write_eof(bytes(buffer))
    return response


@admin_page
async def verify(request: web.Request, admin: Admin) -> web.Response:
    audit = request.app[SERVICES].audit
    report = await audit.verify(actor=admin.actor, org_id=admin.org_id)
    checkpoint = report.latest_checkpoint
    return render(
        "audit_verify.html", admin=admin, active="audit", report=report,
        checkpoint=None if checkpoint is None else checkpoint_dict(checkpoint),
        own_key=checkpoint is not None and checkpoint.key_id == audit.key_id,
        public_key=audit.public_key.hex(),
    )


@admin_page
async def sign_checkpoint(request: web.Request, admin: Admin) -> web.Response:
    await request.app[SERVICES].audit.checkpoint()
    return see_other("/portal/audit", notice="checkpoint_signed")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/portal/audit", audit_page)
    app.router.add_get("/portal/audit/export", export)
    app.router.add_post("/portal/audit/verify", verify)
    app.router.add_post("/portal/audit/checkpoint", sign_checkpoint)
