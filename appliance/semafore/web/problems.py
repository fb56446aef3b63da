"""Errors as RFC 9457 problem details: the one place that decides HTTP statuses for errors.

A problem document is ``application/problem+json`` with ``type``, ``title``, ``status``,
``detail`` and ``code`` (stable, machine-readable; clients branch on it), plus any ``details``
the service error carries (e.g. ``retry_after``, ``missing_devices``).
"""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

from aiohttp import web

from semafore.services import ServiceError
from semafore.storage import StorageError

PROBLEM_CONTENT_TYPE = "application/problem+json"
TYPE_PREFIX = "urn:semafore:problem:"

# ServiceError.kind -> HTTP status. "limit" (a quota or cap is full) is 409: the request is
# valid and allowed, but the current state refuses it until something changes; 403 would read
# as "you may not", and 429 as "try again later", neither of which is true.
STATUS_FOR_KIND: dict[str, int] = {
    "invalid": 400,
    "unauthenticated": 401,
    "forbidden": 403,
    "not_found": 404,
    "timeout": 408,
    "conflict": 409,
    "limit": 409,
    "too_large": 413,
    "rate_limited": 429,
    "unavailable": 503,
}

# Codes for errors aiohttp raises itself (unknown route, wrong method, body too large, ...).
CODE_FOR_STATUS: dict[int, str] = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    408: "request_timeout",
    409: "conflict",
    411: "length_required",
    413: "payload_too_large",
    414: "uri_too_long",
    415: "unsupported_media_type",
    416: "range_not_satisfiable",
    417: "expectation_failed",
    429: "rate_limited",
    431: "headers_too_large",
    500: "internal_error",
    501: "not_implemented",
    503: "unavailable",
}

_RESERVED = {"type", "title", "status", "detail", "code"}


def problem_response(
    status: int,
    code: str,
    detail: str,
    *,
    details: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    body: dict[str, Any] = {
        "type": TYPE_PREFIX + code,
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "code": code,
    }
    for key, value in (details or {}).items():
        if key not in _RESERVED:
            body[key] = value
    response = web.Response(
        status=status,
        body=json.dumps(body, separators=(",", ":")).encode(),
        headers=headers,
    )
    response.content_type = PROBLEM_CONTENT_TYPE
    if status == 408:
        # The request body was not read to its end, so the connection cannot carry another
        # request: say so (Connection: close, RFC 9110 s15.5.9) and aiohttp closes it.
        response.force_close()
    return response


def from_service_error(error: ServiceError) -> web.Response:
    status = STATUS_FOR_KIND.get(error.kind, 400)
    headers = None
    retry_after = getattr(error, "retry_after", None)
    if status == 429 and retry_after is not None:
        headers = {"Retry-After": str(max(0, int(retry_after)))}
    elif status == 401:
        headers = {"WWW-Authenticate": "Bearer"}
    return problem_response(status, error.code, error.message, details=error.details,
                            headers=headers)


def from_storage_error(error: StorageError) -> web.Response:
    # The message can name internals (units, migrations); the client gets a fixed sentence.
    return problem_response(
        503, error.code, "Storage is temporarily unavailable; try again later.",
        headers={"Retry-After": "5"},
    )


def from_http_exception(error: web.HTTPException) -> web.Response:
    status = error.status
    code = CODE_FOR_STATUS.get(status, f"http_{status}")
    headers = {
        name: value
        for name, value in error.headers.items()
        if name.lower() in {"allow", "retry-after", "www-authenticate", "location"}
    }
    detail = error.reason if error.text is None or error.text.startswith(f"{status}:") else (
        error.text
    )
    return problem_response(status, code, detail, headers=headers)


def internal_error() -> web.Response:
    return problem_response(
        500, "internal_error", "The server hit an unexpected error; it has been logged."
    )
