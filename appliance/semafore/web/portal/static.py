"""The portal's own static files (CSS, icon, a little JS), read once at start-up from the
package and served by name from that fixed set: no path from the request touches the disk."""

from __future__ import annotations

import hashlib
from importlib import resources

from aiohttp import web

TYPES = {
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
}


def load_files() -> dict[str, tuple[bytes, str, str]]:
    """name -> (content, content type, ETag), for every file we serve."""
    root = resources.files("semafore.web").joinpath("static", "portal")
    files: dict[str, tuple[bytes, str, str]] = {}
    for entry in root.iterdir():
        suffix = "." + entry.name.rsplit(".", 1)[-1]
        if entry.is_file() and suffix in TYPES:
            content = entry.read_bytes()
            etag = '"' + hashlib.sha256(content).hexdigest()[:16] + '"'
            files[entry.name] = (content, TYPES[suffix], etag)
    return files


def add_routes(app: web.Application) -> None:
    files = load_files()

    async def static_file(request: web.Request) -> web.Response:
        found = files.get(request.match_info["name"])
        if found is None:
            raise web.HTTPNotFound()
        content, content_type, etag = found
        headers = {"ETag": etag, "Cache-Control": "no-cache"}
        if request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers=headers)
        return web.Response(body=content, headers={"Content-Type": content_type, **headers})

    app.router.add_get("/portal/static/{name}", static_file)
