"""Every piece of application state, as typed keys (the one place they are declared).

Set by :func:`semafore.app.create_app` (``SETTINGS``, ``METRICS``, ``METRICS_TOKEN``), by its
cleanup contexts at start-up (``SERVICES``, ``MESSAGING``, ``FILES``) or by a route module's
``add_routes`` (``OPENAPI_JSON``). Handlers read them with ``request.app[KEY]``; nothing lives in
module globals.
"""

from __future__ import annotations

from aiohttp import web

from semafore.config import Settings
from semafore.services import Services
from semafore.services.files import FileService
from semafore.services.messaging import MessagingServices
from semafore.web.metrics import Metrics

SETTINGS = web.AppKey("settings", Settings)
SERVICES = web.AppKey("services", Services)
METRICS = web.AppKey("metrics", Metrics)
# The relay (key directory, queue, delivery hub, push, expiry), set at start-up by app.py.
MESSAGING = web.AppKey("messaging", MessagingServices)
# Encrypted files (uploads, downloads, expiry), set at start-up by app.py.
FILES = web.AppKey("files", FileService)
# The API contract rendered as JSON once at start-up (served at /v1/openapi.json).
OPENAPI_JSON = web.AppKey("openapi_json", bytes)
# The bearer token that /metrics requires, or None (then only loopback peers may scrape).
METRICS_TOKEN: web.AppKey[str | None] = web.AppKey("metrics_token")

# What logs and metrics say for a request that matched no route (404, 405).
UNMATCHED_ROUTE = "(unmatched)"


def route_template(request: web.BaseRequest) -> str:
    """The matched route's template, never the concrete path (ids and numbers stay out of logs)."""
    try:
        match_info = request.match_info  # type: ignore[attr-defined]
    except (AttributeError, AssertionError):  # a request the HTTP parser refused never matched
        match_info = None
    route = getattr(match_info, "route", None)
    resource = getattr(route, "resource", None)
    if resource is None:
        return UNMATCHED_ROUTE
    return resource.canonical
