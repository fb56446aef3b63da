"""Running an application on a TLS socket: shared by ``semafore serve`` and the test fixtures,
so tests exercise exactly the production server settings."""

from __future__ import annotations

import logging
import ssl

from aiohttp import web

from semafore.config import Settings
from semafore.web.accesslog import AccessLogger

# HTTP parser limits: request line (method + URL) and any one header line; count of headers.
# Tokens travel in Authorization (well under 2 KiB). Violations are a 400 from the parser.
MAX_REQUEST_LINE_BYTES = 4096
MAX_HEADER_FIELD_BYTES = 8190
MAX_HEADERS = 64
KEEPALIVE_TIMEOUT_SECONDS = 75.0

ACCESS_LOGGER = "semafore.access"


def make_runner(app: web.Application, settings: Settings) -> web.AppRunner:
    access_log = logging.getLogger(ACCESS_LOGGER) if settings.logging.access_log else None
    return web.AppRunner(
        app,
        handle_signals=False,  # serve installs its own handlers (graceful shutdown)
        shutdown_timeout=settings.server.shutdown_timeout_seconds,
        access_log_class=AccessLogger,
        access_log=access_log,
        max_line_size=MAX_REQUEST_LINE_BYTES,
        max_field_size=MAX_HEADER_FIELD_BYTES,
        max_headers=MAX_HEADERS,
        keepalive_timeout=KEEPALIVE_TIMEOUT_SECONDS,
        handler_cancellation=False,  # a client hanging up never interrupts a write mid-way
    )


async def start_tls_site(
    runner: web.AppRunner, ssl_context: ssl.SSLContext, host: str, port: int
) -> int:
    """Listen on ``host:port`` (port 0: any free port) with TLS; return the bound port."""
    site = web.TCPSite(runner, host, port, ssl_context=ssl_context, reuse_address=True)
    await site.start()
    return int(runner.addresses[-1][1])
