"""Request middlewares, one concern each. Order (outermost first), as the factory installs it:

1. ``metrics_middleware`` — outermost so it times the whole request and counts the *final*
   status, including error responses the inner middleware produced.
2. ``error_middleware`` — innermost, right around the handler, so every exception (service,
   storage, aiohttp's own 404/405/413, and bugs) becomes a problem document before anything
   outside looks at the response.

Security headers are not a middleware but an ``on_response_prepare`` hook
(:mod:`semafore.web.headers`): it runs for every response at the moment its headers are sent,
including streamed responses a handler prepares itself, which a middleware would see too late.
"""

from __future__ import annotations

import logging
import time

from aiohttp import web
from aiohttp.typedefs import Handler

from semafore.services import ServiceError
from semafore.storage import StorageError
from semafore.web import problems
from semafore.web.appkeys import METRICS, route_template

log = logging.getLogger("semafore.web")


@web.middleware
async def metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.perf_counter()
    response = await handler(request)
    request.app[METRICS].observe_request(
        request.method, route_template(request), response.status, time.perf_counter() - started
    )
    return response


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ServiceError as error:
        return problems.from_service_error(error)
    except StorageError as error:
        if error.code == "storage_unavailable":
            log.warning("storage unavailable in %s %s", request.method, route_template(request))
        else:
            log.error("storage error %s in %s %s", error.code, request.method,
                      route_template(request), exc_info=error)
        return problems.from_storage_error(error)
    except web.HTTPException as error:
        if error.status < 400:
            raise  # redirects and other non-errors pass through untouched
        return problems.from_http_exception(error)
    except ConnectionResetError:
        # The client hung up while its body was being read: not a bug, and nobody to answer.
        log.info("client went away in %s %s", request.method, route_template(request))
        return problems.problem_response(
            400, "client_disconnected", "The connection closed before the request was read."
        )
    except Exception:
        # Always a bug. The traceback goes to the server log only; the client learns nothing.
        log.exception("unhandled error in %s %s", request.method, route_template(request))
        return problems.internal_error()
