"""The API contract, served as JSON."""

from __future__ import annotations

import json
from importlib import resources

import yaml
from aiohttp import web

from semafore.web.appkeys import OPENAPI_JSON

OPENAPI_RESOURCE = "openapi.yaml"


def load_openapi() -> dict[str, object]:
    """The packaged OpenAPI document (``semafore/web/openapi.yaml``) as a dict."""
    text = resources.files("semafore.web").joinpath(OPENAPI_RESOURCE).read_text("utf-8")
    document = yaml.safe_load(text)
    if not isinstance(document, dict):
        raise ValueError("openapi.yaml is not a mapping")
    return document


async def openapi_json(request: web.Request) -> web.Response:
    return web.Response(body=request.app[OPENAPI_JSON], content_type="application/json")


def add_routes(app: web.Application) -> None:
    app[OPENAPI_JSON] = json.dumps(load_openapi(), separators=(",", ":")).encode()
    app.router.add_get("/v1/openapi.json", openapi_json)
