"""Request bodies in, JSON out: every handler that takes a body reads it here, JSON with
:func:`read_json_object`, other bytes (a CSV import) with :func:`read_body`, a portal form with
:func:`read_form`.

A body is read whole, capped by ``server.max_request_bytes`` or the route's own cap (such as
``relay.send_max_bytes``): beyond it is 413 ``payload_too_large``. A body that stalls, with no
byte arriving for ``server.body_idle_timeout_seconds``, is 408 ``body_timeout``: nothing of it
is used, and the connection is closed since the rest of the body was never read. Anything that
is not one UTF-8 JSON object with unique keys is a 400 ``invalid_json`` saying why.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator
from typing import Any

from aiohttp import web
from multidict import MultiDictProxy

from semafore.services import InvalidInput, ServiceError, TooLarge
from semafore.web.appkeys import SETTINGS

JSON_CONTENT_TYPE = "application/json"


class BodyTimeout(ServiceError):
    """No byte of the request body arrived for ``server.body_idle_timeout_seconds`` (408)."""

    kind = "timeout"
    code = "body_timeout"


class _Stalled(TimeoutError):
    """Set on a stalled request's stream, so the pending read and every later one raise it.
    A ``TimeoutError`` because aiohttp's lingering read after the response stops quietly on
    one and then closes the connection."""


@contextlib.contextmanager
def _idle_timeout(request: web.Request) -> Iterator[None]:
    """Reads of the body inside the block raise :class:`BodyTimeout` once no byte has arrived
    for ``server.body_idle_timeout_seconds``. It covers any reader of ``request.content``
    (aiohttp's own form parser too): a timer looks at the byte count every quarter of the
    timeout, so a stalled body is cut off after 1 to 1.25 times the timeout."""
    stream = request.content
    limit = request.app[SETTINGS].server.body_idle_timeout_seconds
    loop = asyncio.get_running_loop()
    seen, since = stream.total_bytes, loop.time()

    def check() -> None:
        nonlocal seen, since, timer
        if stream.is_eof():
            return  # all of it has arrived
        if stream.total_bytes != seen:
            seen, since = stream.total_bytes, loop.time()
        elif loop.time() - since >= limit:
            stream.set_exception(_Stalled())
            return
        timer = loop.call_later(limit / 4, check)

    timer = loop.call_later(limit / 4, check)
    try:
        yield
    except _Stalled:
        raise BodyTimeout(
            f"no byte of the request body arrived for {limit:g} seconds"
        ) from None
    finally:
        timer.cancel()


async def read_body(request: web.Request, max_bytes: int | None = None) -> bytes:
    """The whole body: at most ``max_bytes`` (default ``server.max_request_bytes``; 413 beyond),
    and 408 if it stalls."""
    settings = request.app[SETTINGS].server
    limit = settings.max_request_bytes if max_bytes is None else max_bytes
    too_large = TooLarge(f"the body is larger than {limit} bytes", code="payload_too_large")
    if request.content_length is not None and request.content_length > limit:
        # Refuse at once: waiting for a body that will be refused anyway holds the connection.
        raise too_large
    chunks: list[bytes] = []
    size = 0
    with _idle_timeout(request):
        async for chunk in request.content.iter_any():
            size += len(chunk)
            if size > limit:
                raise too_large
            chunks.append(chunk)
    return b"".join(chunks)


async def read_form(request: web.Request) -> MultiDictProxy[str | bytes | web.FileField]:
    """The posted form (aiohttp caches it, so reading it twice is free); 408 if it stalls."""
    with _idle_timeout(request):
        return await request.post()


def _invalid(detail: str) -> InvalidInput:
    return InvalidInput(detail, code="invalid_json")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise _invalid(f"duplicate member {key!r} in JSON object")
        obj[key] = value
    return obj


def _no_constants(name: str) -> Any:
    raise _invalid(f"{name} is not valid JSON")


def parse_json_object(raw: bytes) -> dict[str, Any]:
    """Parse ``raw`` as one JSON object; raise ``invalid_json`` (400) otherwise."""
    if not raw:
        raise _invalid("request body is empty; expected a JSON object")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _invalid("request body is not UTF-8") from None
    try:
        value = json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_no_constants)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno} column {exc.colno}"
        raise _invalid(f"malformed JSON at {where}: {exc.msg}") from None
    except RecursionError:
        raise _invalid("JSON nested too deeply") from None
    if not isinstance(value, dict):
        raise _invalid(f"expected a JSON object, got {type(value).__name__}")
    return value


async def read_json_object(request: web.Request, *, max_bytes: int | None = None
                           ) -> dict[str, Any]:
    """The request body as a JSON object (415 if it is not declared as JSON), read with
    :func:`read_body`."""
    if request.content_type != JSON_CONTENT_TYPE:
        raise web.HTTPUnsupportedMediaType(text=f"send the body as {JSON_CONTENT_TYPE}")
    return parse_json_object(await read_body(request, max_bytes))


def json_response(data: Any, *, status: int = 200, headers: dict[str, str] | None = None
                  ) -> web.Response:
    return web.Response(
        status=status,
        body=json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode("utf-8"),
        content_type=JSON_CONTENT_TYPE,
        headers=headers,
    )
