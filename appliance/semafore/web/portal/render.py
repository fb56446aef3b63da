"""Rendering: one Jinja2 environment (autoescaping on, undefined names are errors), HTML
responses with the portal's CSP, redirects, and the humane wording of service errors."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from semafore.services import ServiceError
from semafore.web.portal import wording
from semafore.web.portal.security import CSP
from semafore.web.problems import STATUS_FOR_KIND

# Templates ship with the package and never change at run time: one environment, built once
# (like the OTP providers' sandbox). Autoescaping is on for every template.
ENVIRONMENT = Environment(
    loader=PackageLoader("semafore.web", "templates/portal"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def _when(timestamp: float | None) -> str:
    if timestamp is None:
        return "—"
    return datetime.fromtimestamp(timestamp, UTC).strftime("%-d %b %Y, %H:%M UTC")


def _day(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%-d %b %Y")


def _when_ms(at_ms: int) -> str:
    return datetime.fromtimestamp(at_ms / 1000, UTC).strftime("%-d %b %Y, %H:%M:%S UTC")


def format_phone(number: str) -> str:
    """+447700900002 -> +44 7700 900002 (readability only; E.164 is kept in links)."""
    if number.startswith("+44") and len(number) == 13:
        return f"{number[:3]} {number[3:7]} {number[7:]}"
    return number


ENVIRONMENT.filters["when"] = _when
ENVIRONMENT.filters["when_ms"] = _when_ms
ENVIRONMENT.filters["day"] = _day
ENVIRONMENT.filters["phone"] = format_phone
# Optional on every page (a page passes them when it has them).
ENVIRONMENT.globals.update(notice=None, active=None, error=None)
ENVIRONMENT.globals["event_label"] = wording.event_label
ENVIRONMENT.globals["import_status"] = wording.import_status


def render(template: str, status: int = 200, **context: Any) -> web.Response:
    html = ENVIRONMENT.get_template(template).render(**context)
    return web.Response(
        text=html, status=status, content_type="text/html", charset="utf-8",
        headers={"Content-Security-Policy": CSP, "Cache-Control": "no-store"},
    )


def see_other(path: str, **query: str) -> web.Response:
    """303 to a portal page (after a POST, so a reload does not repeat it)."""
    location = f"{path}?{urlencode(query)}" if query else path
    return web.Response(status=303, headers={"Location": location})


def error_status(error: ServiceError) -> int:
    return STATUS_FOR_KIND.get(error.kind, 400)


def error_message(error: ServiceError) -> str:
    return wording.error_message(error.code, error.message)
