"""Security headers on every response (an ``on_response_prepare`` hook, see middlewares.py).

API responses get a CSP that allows nothing; a handler that renders HTML sets its own
``Content-Security-Policy`` (and, for cacheable static files, ``Cache-Control``) and the hook
leaves those alone. The others are always forced.
"""

from __future__ import annotations

from aiohttp import web

API_CSP = "default-src 'none'; frame-ancestors 'none'"

FORCED = {
    "Strict-Transport-Security": "max-age=63072000; includeSubDomains",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Server": "SemaFore",  # no version banner
}
DEFAULTS = {
    "Content-Security-Policy": API_CSP,
    "Cache-Control": "no-store",
}


async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    headers = response.headers
    for name, value in FORCED.items():
        headers[name] = value
    for name, value in DEFAULTS.items():
        headers.setdefault(name, value)
