"""The API contract (web/openapi.yaml, linked as docs/openapi.yaml) matches the routes."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import yaml

from semafore.app import create_app
from semafore.web.routes.openapi import load_openapi
from support.appliance import Appliance

ROOT = Path(__file__).resolve().parents[2]
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
# The admin portal's HTML pages are not part of the API contract (tests/web/test_portal_*.py
# and tests/browser cover them); every other route must be documented.
PORTAL_HTML_PREFIX = "/portal"


def app_routes(appliance: Appliance) -> set[tuple[str, str]]:
    app = create_app(appliance.settings())
    routes = set()
    for route in app.router.routes():
        method = route.method.lower()
        if method == "*":
            method = "any"
        routes.add((method, route.resource.canonical))
    # aiohttp adds HEAD beside every GET; the document describes the GET.
    return {(m, p) for m, p in routes
            if not (m == "head" and ("get", p) in routes) and not is_portal_page(p)}


def is_portal_page(path: str) -> bool:
    return path == PORTAL_HTML_PREFIX or path.startswith(PORTAL_HTML_PREFIX + "/")


def documented_routes() -> set[tuple[str, str]]:
    paths = load_openapi()["paths"]
    assert isinstance(paths, dict)
    return {
        (method, path)
        for path, operations in paths.items()
        for method in operations
        if method in HTTP_METHODS
    }


def test_every_route_is_documented_and_every_documented_route_exists(
    appliance: Appliance,
) -> None:
    served, documented = app_routes(appliance), documented_routes()
    assert served - documented == set(), "routes missing from web/openapi.yaml"
    assert documented - served == set(), "web/openapi.yaml describes routes the app lacks"


def test_document_is_openapi_3_1_with_problem_responses() -> None:
    document = load_openapi()
    assert document["openapi"] == "3.1.0"
    problem = document["components"]["schemas"]["Problem"]  # type: ignore[index]
    assert set(problem["required"]) == {"type", "title", "status", "detail", "code"}
    for path, operations in document["paths"].items():  # type: ignore[union-attr]
        for method, operation in operations.items():
            if method in HTTP_METHODS:
                assert "default" in operation["responses"], f"{method} {path}: no default"


def test_docs_openapi_is_a_link_to_the_packaged_document() -> None:
    link = ROOT / "docs" / "openapi.yaml"
    assert link.is_symlink()
    packaged = ROOT / "appliance" / "semafore" / "web" / "openapi.yaml"
    assert link.resolve() == packaged.resolve()


async def test_document_is_served_as_json(client: aiohttp.ClientSession) -> None:
    async with client.get("/v1/openapi.json") as response:
        assert response.status == 200
        served = await response.json()
    packaged = ROOT / "appliance" / "semafore" / "web" / "openapi.yaml"
    assert served == yaml.safe_load(packaged.read_text())
