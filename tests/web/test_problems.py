"""Errors are problem documents with stable codes, whatever raised them.

Test-only routes are added to an app built by the real factory (``configure``), so the whole
middleware stack, the limits and TLS are the production ones.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from semafore import services
from semafore.storage import StorageError
from semafore.web import json_response, read_json_object
from support.appliance import Appliance, RunningServer

PROBLEM = "application/problem+json"
SECRET = "s3cr3t-in-the-exception-message"


def raiser(error: BaseException) -> Callable[[web.Request], Any]:
    async def handler(request: web.Request) -> web.Response:
        raise error

    return handler


async def echo(request: web.Request) -> web.Response:
    return json_response({"received": await read_json_object(request)})


def add_test_routes(app: web.Application) -> None:
    router = app.router
    router.add_post("/test/echo", echo)
    router.add_get("/test/bug", raiser(RuntimeError(SECRET)))
    storage_down = StorageError("disk on fire", code="storage_unavailable")
    router.add_get("/test/storage", raiser(storage_down))
    router.add_get("/test/rate", raiser(services.RateLimited("slow down", retry_after=42)))
    router.add_get(
        "/test/conflict",
        raiser(services.Conflict("stale devices", code="devices_changed",
                                 details={"missing_devices": [2, 3]})),
    )
    for kind, cls in KINDS.items():
        router.add_get(f"/test/kind/{kind}", raiser(cls(f"a {kind} error")))


KINDS: dict[str, type[services.ServiceError]] = {
    "invalid": services.InvalidInput,
    "unauthenticated": services.Unauthenticated,
    "forbidden": services.Forbidden,
    "not_found": services.NotFound,
    "conflict": services.Conflict,
    "limit": services.LimitReached,
    "too_large": services.TooLarge,
    "unavailable": services.Unavailable,
}
STATUS = {"invalid": 400, "unauthenticated": 401, "forbidden": 403, "not_found": 404,
          "conflict": 409, "limit": 409, "too_large": 413, "unavailable": 503}


@pytest.fixture
async def server(start_server: Callable[..., Any], appliance: Appliance) -> RunningServer:
    settings = appliance.configure(server={"max_request_bytes": 4096})
    return await start_server(settings, configure=add_test_routes)


async def problem(response: aiohttp.ClientResponse, status: int, code: str) -> dict[str, Any]:
    assert response.status == status, await response.text()
    assert response.content_type == PROBLEM
    body = await response.json(content_type=PROBLEM)
    assert body["status"] == status
    assert body["code"] == code
    assert body["type"] == f"urn:semafore:problem:{code}"
    assert body["title"] and isinstance(body["detail"], str)
    return body


async def test_unknown_route_is_404_not_found(client: aiohttp.ClientSession) -> None:
    async with client.get("/no/such/thing") as response:
        await problem(response, 404, "not_found")


async def test_wrong_method_is_405_with_allow(client: aiohttp.ClientSession) -> None:
    async with client.delete("/healthz") as response:
        await problem(response, 405, "method_not_allowed")
        assert "GET" in response.headers["Allow"]


async def test_body_over_the_limit_is_413(client: aiohttp.ClientSession) -> None:
    payload = b'{"x":"' + b"a" * 5000 + b'"}'
    headers = {"Content-Type": "application/json"}
    async with client.post("/test/echo", data=payload, headers=headers) as response:
        await problem(response, 413, "payload_too_large")


async def test_body_within_the_limit_is_accepted(client: aiohttp.ClientSession) -> None:
    async with client.post("/test/echo", json={"hello": "world"}) as response:
        assert response.status == 200
        assert await response.json() == {"received": {"hello": "world"}}


@pytest.mark.parametrize(
    "body",
    [b"", b"{", b"not json", b"[1, 2]", b'"text"', b'{"a": 1, "a": 2}', b'{"a": NaN}',
     b"\xff\xfe"],
    ids=["empty", "truncated", "garbage", "array", "string", "duplicate-key", "nan", "not-utf8"],
)
async def test_malformed_json_is_400_invalid_json(
    client: aiohttp.ClientSession, body: bytes
) -> None:
    headers = {"Content-Type": "application/json"}
    async with client.post("/test/echo", data=body, headers=headers) as response:
        await problem(response, 400, "invalid_json")


async def test_body_not_declared_as_json_is_415(client: aiohttp.ClientSession) -> None:
    async with client.post("/test/echo", data=b"{}", headers={"Content-Type": "text/plain"}) as r:
        await problem(r, 415, "unsupported_media_type")


async def test_unexpected_exception_is_a_logged_500_without_detail(
    client: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="semafore.web"):
        async with client.get("/test/bug") as response:
            body = await problem(response, 500, "internal_error")
            text = await response.text()
    assert SECRET not in text and "Traceback" not in text and "RuntimeError" not in text
    assert set(body) == {"type", "title", "status", "detail", "code"}
    logged = [r for r in caplog.records if r.name == "semafore.web"]
    assert logged and logged[0].exc_info is not None  # the traceback stays server-side


@pytest.mark.parametrize("kind", sorted(KINDS))
async def test_service_error_kinds_map_to_statuses(
    client: aiohttp.ClientSession, kind: str
) -> None:
    async with client.get(f"/test/kind/{kind}") as response:
        body = await problem(response, STATUS[kind], KINDS[kind].code)
    assert body["detail"] == f"a {kind} error"


async def test_rate_limited_is_429_with_retry_after(client: aiohttp.ClientSession) -> None:
    async with client.get("/test/rate") as response:
        body = await problem(response, 429, "rate_limited")
        assert response.headers["Retry-After"] == "42"
    assert body["retry_after"] == 42


async def test_service_error_details_become_members(client: aiohttp.ClientSession) -> None:
    async with client.get("/test/conflict") as response:
        body = await problem(response, 409, "devices_changed")
    assert body["missing_devices"] == [2, 3]


async def test_storage_error_is_503_with_its_code(client: aiohttp.ClientSession) -> None:
    async with client.get("/test/storage") as response:
        body = await problem(response, 503, "storage_unavailable")
    assert "disk on fire" not in body["detail"]


async def test_oversized_header_is_rejected(client: aiohttp.ClientSession) -> None:
    async with client.get("/healthz", headers={"X-Big": "a" * 10_000}) as response:
        assert response.status == 400


async def test_overlong_request_line_is_rejected(client: aiohttp.ClientSession) -> None:
    async with client.get("/healthz?" + "a" * 5000) as response:
        assert response.status in (400, 414)


@pytest.mark.parametrize("path", ["/healthz", "/no/such/thing", "/test/bug", "/test/rate"])
async def test_security_headers_on_every_response(
    client: aiohttp.ClientSession, path: str
) -> None:
    async with client.get(path) as response:
        headers = response.headers
    assert headers["Strict-Transport-Security"].startswith("max-age=")
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["Content-Security-Policy"] == "default-src 'none'; frame-ancestors 'none'"
    assert headers["Cache-Control"] == "no-store"
    assert headers["Server"] == "SemaFore"
