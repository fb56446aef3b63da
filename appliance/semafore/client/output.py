"""How the CLI shows things: one line per message (human) or one JSON object per line."""

from __future__ import annotations

import json
import sys
from typing import Any

from semafore.client.groups import Groups
from semafore.client.messaging import Received
from semafore.protocol import DeviceAddress
from semafore.protocol.encoding import b64u_encode


def message_record(r: Received, own: DeviceAddress, groups: Groups) -> dict[str, Any]:
    c = r.content
    group = groups.get(c.g.id) if c.g is not None else None
    out: dict[str, Any] = {
        "from": r.sender.user_id,
        "device": r.sender.device_id,
        "own_device": r.sender.user_id == own.user_id,
        "type": c.t,
        "mid": c.mid,
        "ts": c.ts,
        "body": c.body,
    }
    to = r.extra.get("to")
    if isinstance(to, str):
        out["to"] = to
    if c.g is not None:
        out["group"] = b64u_encode(c.g.id)
        out["group_name"] = group.name if group else None
    if c.t == "group_update":
        out["members"] = list(group.members) if group else r.extra.get("members")
    if c.att is not None:
        out["attachment"] = {
            "id": c.att.id,
            "size": c.att.size,
            "name": c.att.name,
            "content_type": c.att.content_type,
        }
    return out


def human_line(rec: dict[str, Any]) -> str:
    sender = f"{rec['from']}/{rec['device']}"
    where = ""
    if "group" in rec:
        where = f" in {rec.get('group_name') or rec['group']}"
    elif rec["own_device"] and rec.get("to"):
        where = f" to {rec['to']}"
    if rec["type"] == "group_update":
        members = ", ".join(rec.get("members") or [])
        return f"[{sender}{where}] group updated: members {members}"
    if rec["type"] == "attachment":
        att = rec["attachment"]
        caption = f" {rec['body']}" if rec.get("body") else ""
        return (
            f"[{sender}{where}] file {att['name'] or att['id']} ({att['size']} bytes){caption}"
            f" -- semafore-client get-file {rec['mid']}"
        )
    if rec["type"] != "text":
        return f"[{sender}{where}] ({rec['type']} message)"
    return f"[{sender}{where}] {rec['body']}"


def emit(rec: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(rec, ensure_ascii=False), flush=True)
    else:
        print(human_line(rec), flush=True)


def warn(text: str) -> None:
    print(f"semafore-client: warning: {text}", file=sys.stderr, flush=True)
