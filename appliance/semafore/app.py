"""The composition root: builds the aiohttp application from settings.

Everything the app holds is a typed key from :mod:`semafore.web.appkeys`. Resources (database,
blob store, services) are opened in a cleanup context at start-up and closed at shutdown, after
in-flight requests have finished; closing the database first drains the queued writes.
"""

from __future__ import annotations

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
from semafore.storage import BlobStore, Database
from semafore.web.appkeys import METRICS, METRICS_TOKEN, SERVICES, SETTINGS
from semafore.web.headers import add_security_headers
from semafore.web.metrics import Metrics
from semafore.web.middlewares import error_middleware, metrics_middleware
from semafore.web.routes import ROUTE_MODULES

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
    app.cleanup_ctx.append(_resources(clock or SystemClock()))
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
