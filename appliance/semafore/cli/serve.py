"""``semafore serve``: run the appliance over TLS 1.3 until SIGTERM/SIGINT, then stop gracefully.

Shutdown: stop accepting connections, let in-flight requests finish (up to
``server.shutdown_timeout_seconds``), then close the database, which first commits every
queued write.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
from collections.abc import Callable

from aiohttp import web

from semafore import __version__
from semafore.app import create_app
from semafore.cli.common import CliError, add_config_option, load_settings
from semafore.cli.logsetup import configure_logging
from semafore.cli.preflight import check_settings
from semafore.config import Settings
from semafore.web.server import make_runner, start_tls_site
from semafore.web.tls import server_ssl_context

log = logging.getLogger("semafore.serve")


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "serve", help="run the appliance (HTTPS, TLS 1.3 only)",
        description="Run the appliance in the foreground until SIGTERM or SIGINT.",
    )
    add_config_option(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = load_settings(args)
    configure_logging(settings.logging)
    for warning in check_settings(settings):
        log.warning("%s", warning)
    os.umask(0o077)  # every file the appliance creates is private to its user
    asyncio.run(serve(settings))
    return 0


async def serve(
    settings: Settings, *, configure: Callable[[web.Application], None] | None = None
) -> None:
    """Serve until a stop signal. ``configure`` may add to the app before it starts."""
    ssl_context = server_ssl_context(settings)
    app = create_app(settings)
    if configure is not None:
        configure(app)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    runner = make_runner(app, settings)
    await runner.setup()  # opens the database
    try:
        host, port = settings.server.host, settings.server.port
        try:
            await start_tls_site(runner, ssl_context, host, port)
        except OSError as exc:
            raise CliError(
                f"server.host/server.port: cannot listen on {host}:{port} ({exc.strerror})"
            ) from None
        log.info("SemaFore %s listening on %s (TLS 1.3 only)", __version__, _url(settings))
        log.info("CA certificate for clients: %s",
                 settings.resolve(settings.server.tls_ca_certificate))
        await stop.wait()
        log.info("stopping: finishing in-flight requests (up to %gs)",
                 settings.server.shutdown_timeout_seconds)
    finally:
        await runner.cleanup()  # sites stop, handlers finish, then the database drains and closes
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
    log.info("stopped")


def _url(settings: Settings) -> str:
    if settings.server.public_url:
        return settings.server.public_url
    host = settings.server.host
    shown = f"[{host}]" if ":" in host else host
    return f"https://{shown}:{settings.server.port}/"
