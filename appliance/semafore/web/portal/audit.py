"""The audit log: filtered pages (type, actor, dates), JSON Lines export of the same filter,
chain verification with the latest signed checkpoint, and signing a checkpoint now.

The page shows members and devices as an admin recognises them (display name and number,
device name); the log itself, and the export, keep the stored references."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from semafore.services import Device, InvalidInput, Member
from semafore.services.audit import entry_dict, parse_filter
from semafore.storage.audit_chain import checkpoint_dict
from semafore.web.appkeys import SERVICES
from semafore.web.portal import wording
from semafore.web.portal.guard import Admin, admin_page, notice
from semafore.web.portal.render import error_message, render, see_other

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


@dataclass(frozen=True, slots=True)
class Label:
    """An actor or target as the page shows it. ``member`` set: that member (and, with
    ``device_id``, one of their devices, named ``device_name`` if it has a name); otherwise
    ``text``, the reference as stored. Names are user text: the template escapes them."""

    text: str
    member: Member | None = None
    device_id: str | None = None
    device_name: str | None = None


def _label(ref: str | None, people: dict[str, Member],
           device_names: dict[tuple[str, str], str]) -> Label:
    """member:u_1 -> that member; device:u_1/2 -> their device 2 (and its name); anything else,
    or a member no longer in the organisation, as stored."""
    if ref is None:
        return Label("—")
    if ref.startswith("device:") and "/" in ref:
        user_id, device_id = ref.removeprefix("device:").rsplit("/", 1)
        member = people.get(user_id)
        if member is not None:
            return Label(ref, member, device_id, device_names.get((user_id, device_id)))
    elif ref.startswith("member:") and (member := people.get(ref.removeprefix("member:"))):
        return Label(ref, member)
    return Label(ref)


def _directory(members: list[Member], devices: list[Device]
               ) -> tuple[dict[str, Member], dict[tuple[str, str], str]]:
    """Members by id, and the names of named devices by (member id, device id)."""
    return ({m.user_id: m for m in members},
            {(d.user_id, str(d.device_id)): d.device_name for d in devices if d.device_name})


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
    # One read of the organisation's members and one of its devices per page, not per row.
    people, device_names = _directory(await services.members.list_members(admin.org_id),
                                      await services.devices.list_devices(admin.org_id))
    return render(
        "audit.html", admin=admin, active="audit", notice=notice(request), chosen=chosen,
        entries=[(e, entry_dict(e)["data"], _label(e.actor, people, device_names),
                  _label(e.target, people, device_names)) for e in page.entries],
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
