"""Unknown portal addresses get a portal page (not a JSON problem document)."""

from __future__ import annotations

from aiohttp import web

from semafore.web.portal.render import render


async def not_found(request: web.Request) -> web.Response:
    if request.method not in ("GET", "HEAD"):
        raise web.HTTPMethodNotAllowed(request.method, ["GET"])
    return render("error.html", status=404, admin=None, title="Page not found",
                  message="There is no page at this address. It may have moved, or the link "
                          "may be mistyped.")


def add_routes(app: web.Application) -> None:
    # Registered last, so every real portal route matches first.
    app.router.add_route("*", "/portal/{tail:.*}", not_found)
