"""The admin portal: server-rendered pages for an organisation's admins, on the same services
as the JSON admin API (so the same checks, organisation isolation and audit entries).

Everything lives under ``/portal/``. Pages work without JavaScript. Security measures
(cookies, CSRF, Origin, CSP) are described in :mod:`semafore.web.portal.security`; the order
of checks around each handler in :mod:`semafore.web.portal.guard`.
"""

from __future__ import annotations

from aiohttp import web

from semafore.web.portal import (
    audit,
    devices,
    members,
    not_found,
    organisation,
    sign_in,
    signup,
    static,
)

_MODULES = (organisation, sign_in, signup, members, devices, audit, static, not_found)


def add_routes(app: web.Application) -> None:
    for module in _MODULES:
        module.add_routes(app)
