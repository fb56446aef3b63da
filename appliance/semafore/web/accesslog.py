"""Access log lines that carry no personal data.

One line per request: method, route *template* (``/v1/devices/{device_id}``; never the concrete
path, which can hold ids or phone numbers, and never the query string), status, response bytes
and duration. No peer address, headers, tokens or bodies. Requests that match no route are
logged as ``(unmatched)``.
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from semafore.web.appkeys import route_template


class AccessLogger(AbstractAccessLogger):
    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info(
            "%s %s %d %dB %.1fms",
            request.method,
            route_template(request),
            response.status,
            response.body_length,
            time * 1000,
        )
