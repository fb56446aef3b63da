"""Running an application on a TLS socket: shared by ``semafore serve`` and the test fixtures,
so tests exercise exactly the production server settings."""

from __future__ import annotations

import asyncio.sslproto
import contextlib
import logging
import ssl
from collections.abc import Iterator
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from semafore.config import Settings
from semafore.web import problems
from semafore.web.accesslog import AccessLogger
from semafore.web.headers import DEFAULTS, FORCED

# HTTP parser limits: request line (method + URL) and any one header line; count of headers.
# Tokens travel in Authorization (well under 2 KiB). Violations are a 400 from the parser.
MAX_REQUEST_LINE_BYTES = 4096
MAX_HEADER_FIELD_BYTES = 8190
MAX_HEADERS = 64
KEEPALIVE_TIMEOUT_SECONDS = 75.0

ACCESS_LOGGER = "semafore.access"

# asyncio's TLS transport allocates a read buffer of this size for every connection (256 KiB by
# default in CPython 3.11). Most of the appliance's connections are idle device WebSockets, so
# 32 KiB cuts server memory per socket from ~290 KiB to ~77 KiB (10,000 sockets: 2.9 GiB ->
# 0.8 GiB, docs/performance.md). A connection streaming an upload body reads in larger pieces
# while it does (large_tls_reads below).
TLS_READ_BUFFER_BYTES = 32 * 1024
UPLOAD_TLS_READ_BUFFER_BYTES = 256 * 1024


log = logging.getLogger("semafore.web")


class _ProblemRequestHandler(RequestHandler):
    """Requests the HTTP parser refuses (over-long request line or header, too many headers,
    bad chunking, not HTTP at all) never reach the app, its middlewares or its response hook;
    aiohttp would answer them in plain text, echoing the input, with its version banner. They
    get a problem document with the security headers instead, like every other error."""

    def handle_error(
        self, request: Any, status: int = 500, exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if request.writer.output_size > 0:
            raise ConnectionError("the response was already started")
        if status >= 500:
            log.error("error handling a request", exc_info=exc)
            response = problems.internal_error()
        else:
            log.info("refused a malformed request: %s", type(exc).__name__)
            response = problems.problem_response(
                status, problems.CODE_FOR_STATUS.get(status, f"http_{status}"),
                "The request is not well-formed HTTP or exceeds a size limit of the server.",
            )
        response.headers.update(FORCED)
        response.headers.update(DEFAULTS)
        response.force_close()
        return response


class _ProblemServer(web.Server):
    def __call__(self) -> RequestHandler:
        return _ProblemRequestHandler(self, loop=self._loop, **self._kwargs)


class _Runner(web.AppRunner):
    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        server.__class__ = _ProblemServer  # same object, only the connection handler differs
        return server


def make_runner(app: web.Application, settings: Settings) -> web.AppRunner:
    access_log = logging.getLogger(ACCESS_LOGGER) if settings.logging.access_log else None
    return _Runner(
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


@contextlib.contextmanager
def large_tls_reads(request: web.BaseRequest) -> Iterator[None]:
    """While the block runs, read this request's TLS connection up to
    ``UPLOAD_TLS_READ_BUFFER_BYTES`` at a time (one socket read and one body chunk per 16 TLS
    records rather than 2: a large upload's cost is per chunk); then give the buffer back, so
    the connection stays as small as an idle one. Other transports are left as they are."""
    protocol = getattr(request.transport, "_ssl_protocol", None)
    if not isinstance(protocol, asyncio.sslproto.SSLProtocol) or not hasattr(
        protocol, "_ssl_buffer"
    ):
        yield
        return
    protocol.max_size = UPLOAD_TLS_READ_BUFFER_BYTES  # get_buffer() grows the buffer to it
    try:
        yield
    finally:
        del protocol.max_size  # the class-wide TLS_READ_BUFFER_BYTES again
        if len(protocol._ssl_buffer) > protocol.max_size:
            protocol._ssl_buffer = bytearray(protocol.max_size)
            protocol._ssl_buffer_view = memoryview(protocol._ssl_buffer)


async def start_tls_site(
    runner: web.AppRunner, ssl_context: ssl.SSLContext, host: str, port: int
) -> int:
    """Listen on ``host:port`` (port 0: any free port) with TLS; return the bound port."""
    if hasattr(asyncio.sslproto.SSLProtocol, "max_size"):  # process-wide; see the constant
        asyncio.sslproto.SSLProtocol.max_size = TLS_READ_BUFFER_BYTES
    site = web.TCPSite(runner, host, port, ssl_context=ssl_context, reuse_address=True)
    await site.start()
    return int(runner.addresses[-1][1])
