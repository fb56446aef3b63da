"""HTTP routes, one module per feature.

Each module exposes ``add_routes(app: web.Application) -> None``; :func:`semafore.app.create_app`
calls every module in :data:`ROUTE_MODULES`. To add a feature: write ``routes/<feature>.py``,
add one line below, describe its routes in ``web/openapi.yaml`` (a test compares both).
"""

from __future__ import annotations

from types import ModuleType

from semafore.web import portal
from semafore.web.routes import (
    admin_audit,
    admin_auth,
    admin_devices,
    admin_members,
    admin_tokens,
    devices,
    enrolment,
    files,
    health,
    keys,
    messages,
    metrics,
    openapi,
    push,
    sessions,
    websocket,
)

ROUTE_MODULES: tuple[ModuleType, ...] = (
    health,
    metrics,
    openapi,
    enrolment,
    sessions,
    devices,
    messages,
    keys,
    push,
    websocket,
    files,
    admin_auth,
    admin_tokens,
    admin_audit,
    admin_members,
    admin_devices,
    portal,  # HTML pages under /portal/ (not part of the API contract)
)
