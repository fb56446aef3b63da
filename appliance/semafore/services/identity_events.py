"""Audit events of the identity features, written inside the unit of work they describe.

The one place this feature talks to the audit log, so event names and target formats stay
consistent: actors and targets are ``kind:id`` strings (``operator``, ``member:<user_id>``,
``device:<user_id>/<device_id>``, ``org:<org_id>``). Never a phone number, code or token.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from semafore.storage import audit

OPERATOR = "operator"
SYSTEM = "system"


def member_ref(user_id: str) -> str:
    return f"member:{user_id}"


def device_ref(user_id: str, device_id: int) -> str:
    return f"device:{user_id}/{device_id}"


def org_ref(org_id: str) -> str:
    return f"org:{org_id}"


async def record(
    conn: Any,
    *,
    at: float,
    org_id: str | None,
    actor: str,
    event: str,
    target: str | None = None,
    data: Mapping[str, Any] | None = None,
) -> None:
    await audit.append_event(
        conn, at=at, org_id=org_id, actor=actor, event=event, target=target, data=data
    )
