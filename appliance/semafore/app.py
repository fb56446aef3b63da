"""The composition root: builds the aiohttp application from settings.

Everything the app holds is a typed key from :mod:`semafore.web.appkeys`. Resources (database,
blob store, services) are opened in cleanup contexts at start-up and closed at shutdown, after
in-flight requests have finished, in reverse order: the file sweep stops, then the relay (sockets
told to close, expiry and push stopped, pending acks written, push client closed), then the
identity and admin background work; the database closes last, draining the queued writes.
Route modules only register handlers that read these keys.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from semafore.config import ConfigError, Settings
from semafore.services import (
    Clock,
    HealthService,
    Services,
    SystemClock,
    build_admin_services,
    build_identity_services,
)
from semafore.services.delivery import CLOSE_SHUTDOWN
from semafore.services.files import FileService
from semafore.services.messaging import build_messaging_services
from semafore.storage import BlobStore, Database
from semafore.storage.blob_uploads import FileRecords
from semafore.web.appkeys import FILES, MESSAGING, METRICS, METRICS_TOKEN, SERVICES, SETTINGS
from semafore.web.headers import add_security_headers
from semafore.web.metrics import Metrics
from semafore.web.middlewares import error_middleware, metrics_middleware
from semafore.web.push_transport import HttpPushTransport
from semafore.web.relay_metrics import register_relay_metrics
from semafore.web.routes import ROUTE_MODULES
from semafore.web.routes.files import register_file_metrics

log = logging.getLogger("semafore.app")

MIN_METRICS_TOKEN_CHARS = 32


def create_app(settings: Settings, *, clock: Clock | None = None) -> web.Application:
    app = web.Application(
        # Order matters (see semafore.web.middlewares): metrics outermost, errors innermost.
        middlewares=[metrics_middleware, error_middleware],
        client_max_size=settings.server.max_request_bytes,
    )
    app[SETTINGS] = settings
    app[METRICS] = Metrics()
    app[METRICS_TOKEN] = read_metrics_token(settings)
    app.on_response_prepare.append(add_security_headers)
    # Started in this order, stopped in reverse; each needs the ones before it.
    app.cleanup_ctx.extend([_resources(clock or SystemClock()), _messaging, _files])
    app.on_shutdown.append(_close_sockets)
    for module in ROUTE_MODULES:
        module.add_routes(app)
    return app


def _resources(clock: Clock) -> Callable[[web.Application], AsyncIterator[None]]:
    async def resources(app: web.Application) -> AsyncIterator[None]:
        settings = app[SETTINGS]
        storage = settings.storage
        database = Database(
            storage.database_path,
            busy_timeout_ms=storage.busy_timeout_ms,
            reader_connections=storage.reader_connections,
            max_batch_units=storage.max_batch_units,
        )
        await database.open()
        try:
            blobs = BlobStore(storage.blob_dir)
            swept = blobs.prepare()
            if swept:
                log.info("removed %d unfinished blob uploads", swept)
            metrics = app[METRICS]
            database.add_commit_observer(metrics.observe_commit)
            metrics.track_queue_depth(lambda: database.queue_depth)
            identity = build_identity_services(settings, clock, database)
            admin = build_admin_services(settings, clock, database, identity)
            app[SERVICES] = Services(
                settings=settings,
                clock=clock,
                database=database,
                blobs=blobs,
                health=HealthService(database),
                orgs=identity.orgs,
                members=identity.members,
                otp=identity.otp,
                enrolment=identity.enrolment,
                devices=identity.devices,
                sessions=identity.sessions,
                audit=admin.audit,
                admin_auth=admin.admin_auth,
                api_tokens=admin.api_tokens,
            )
            async with identity.background(), admin.background():
                yield
        finally:
            await database.close()

    return resources


async def _messaging(app: web.Application) -> AsyncIterator[None]:
    """The relay: key directory, queue, delivery hub, push, expiry (MESSAGING)."""
    services = app[SERVICES]
    transport = HttpPushTransport(services.settings)
    messaging = build_messaging_services(
        services.settings,
        services.clock,
        services.database,
        devices=services.devices,
        push_transport=transport,
    )
    app[MESSAGING] = messaging
    register_relay_metrics(app[METRICS], messaging)
    try:
        async with messaging.background():
            yield
    finally:
        await transport.close()


async def _close_sockets(app: web.Application) -> None:
    # Before the runner waits for handlers: WebSocket handlers return once told to close.
    messaging = app.get(MESSAGING)
    if messaging is not None:
        messaging.hub.close_all(CLOSE_SHUTDOWN)


async def _files(app: web.Application) -> AsyncIterator[None]:
    """Encrypted files: uploads, downloads and the expiry sweep (FILES)."""
    services = app[SERVICES]
    files = FileService(
        services.settings.files, services.clock, FileRecords(services.database), services.blobs
    )
    await files.load()
    app[FILES] = files
    register_file_metrics(app[METRICS], files.stats)
    sweeper = asyncio.create_task(files.run(), name="files-sweep")
    try:
        yield
    finally:
        sweeper.cancel()
        await asyncio.gather(sweeper, return_exceptions=True)


def read_metrics_token(settings: Settings) -> str | None:
    path = settings.metrics.token_file
    if path is None:
        return None
    path = settings.resolve(path)
    try:
        token = path.read_text("utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or "not UTF-8 text"
        raise ConfigError(f"metrics.token_file: cannot read {path} ({reason})") from None
    if len(token) < MIN_METRICS_TOKEN_CHARS:
        raise ConfigError(
            f"metrics.token_file: the token must be at least {MIN_METRICS_TOKEN_CHARS} characters"
        )
    return token
