"""The audit log of the admin's organisation: list (filters, pages), export (JSON Lines),
verify the chain, the latest signed checkpoint, sign one now."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from semafore.services.audit import entry_dict, parse_filter
from semafore.storage.audit_chain import Checkpoint, checkpoint_dict
from semafore.web.admin_auth import admin_principal
from semafore.web.appkeys import SERVICES
from semafore.web.bodies import json_response

JSONL_CONTENT_TYPE = "application/jsonl"
_FLUSH_BYTES = 64 * 1024


def _filter(request: web.Request, org_id: str) -> Any:
    query = request.query
    return parse_filter(
        org_id, event=query.get("event"), actor=query.get("actor"), since=query.get("since"),
        until=query.get("until"),
    )


def _checkpoint_json(request: web.Request, checkpoint: Checkpoint | None) -> Any:
    if checkpoint is None:
        return None
    audit = request.app[SERVICES].audit
    body = checkpoint_dict(checkpoint)
    if checkpoint.key_id == audit.key_id:
        body["public_key"] = audit.public_key.hex()
    return body


async def list_entries(request: web.Request) -> web.Response:
    principal = await admin_principal(request, "audit:read")
    page = await request.app[SERVICES].audit.list_entries(
        _filter(request, principal.org_id), before=request.query.get("before"),
        limit=request.query.get("limit"),
    )
    return json_response({
        "entries": [entry_dict(e) for e in page.entries],
        "next_before": page.next_before,
    })


async def export(request: web.Request) -> web.StreamResponse:
    principal = await admin_principal(request, "audit:read")
    entries = request.app[SERVICES].audit.export(_filter(request, principal.org_id))
    response = web.StreamResponse(headers={
        "Content-Type": JSONL_CONTENT_TYPE,
        "Content-Disposition": 'attachment; filename="audit.jsonl"',
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


async def verify(request: web.Request) -> web.Response:
    principal = await admin_principal(request, "audit:read")
    report = await request.app[SERVICES].audit.verify(
        actor=principal.actor, org_id=principal.org_id
    )
    body = report.as_dict()
    body["latest_checkpoint"] = _checkpoint_json(request, report.latest_checkpoint)
    return json_response(body)


async def latest_checkpoint(request: web.Request) -> web.Response:
    await admin_principal(request, "audit:read")
    checkpoint = await request.app[SERVICES].audit.latest_checkpoint()
    return json_response({"checkpoint": _checkpoint_json(request, checkpoint)})


async def sign_checkpoint(request: web.Request) -> web.Response:
    await admin_principal(request, session_only=True)
    checkpoint = await request.app[SERVICES].audit.checkpoint()
    return json_response({"checkpoint": _checkpoint_json(request, checkpoint)}, status=201)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/v1/admin/audit", list_entries)
    app.router.add_get("/v1/admin/audit/export", export)
    app.router.add_post("/v1/admin/audit/verify", verify)
    app.router.add_get("/v1/admin/audit/checkpoint", latest_checkpoint)
    app.router.add_post("/v1/admin/audit/checkpoint", sign_checkpoint)
