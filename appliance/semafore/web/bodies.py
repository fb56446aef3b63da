"""JSON in and out. Every handler that takes a body reads it with :func:`read_json_object`.

A body is read whole (it is capped by ``server.max_request_bytes``: beyond that aiohttp raises
413, which the error middleware turns into ``payload_too_large``). Anything that is not one
UTF-8 JSON object with unique keys is a 400 ``invalid_json`` with a message saying why.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from semafore.services import InvalidInput
from semafore.web.appkeys import SETTINGS

JSON_CONTENT_TYPE = "application/json"


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


async def read_json_object(request: web.Request) -> dict[str, Any]:
    """The request body as a JSON object (415 if it is not declared as JSON)."""
    if request.content_type != JSON_CONTENT_TYPE:
        raise web.HTTPUnsupportedMediaType(text=f"send the body as {JSON_CONTENT_TYPE}")
    limit = request.app[SETTINGS].server.max_request_bytes
    if request.content_length is not None and request.content_length > limit:
        # Refuse at once: waiting for a body that will be refused anyway holds the connection.
        raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=request.content_length)
    return parse_json_object(await request.read())


def json_response(data: Any, *, status: int = 200, headers: dict[str, str] | None = None
                  ) -> web.Response:
    return web.Response(
        status=status,
        body=json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode("utf-8"),
        content_type=JSON_CONTENT_TYPE,
        headers=headers,
    )
