"""The portal's browser-facing defences: cookies, CSRF tokens, the Origin check, the CSP.

* The admin session token lives in ``__Host-semafore-session`` (Secure, HttpOnly,
  SameSite=Strict, Path=/, no Domain, no Max-Age: the server decides when a session ends).
  Before sign-in, ``__Host-semafore-sign-in`` holds a random value that binds the sign-in and
  sign-up forms the same way.
* The CSRF token is a synchronizer token derived from that cookie's secret:
  HMAC-SHA256(secret, label). It is unguessable without the cookie, bound to one session, needs
  no server state, and reveals nothing about the secret. Compared in constant time.
* Every POST also has to come from this origin. ``Referrer-Policy: no-referrer`` makes browsers
  send ``Origin: null`` on same-origin form posts (Fetch spec), so a null or missing Origin is
  accepted only with ``Sec-Fetch-Site: same-origin``; a foreign Origin is always refused.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from aiohttp import web

SESSION_COOKIE = "__Host-semafore-session"
SIGN_IN_COOKIE = "__Host-semafore-sign-in"
CSRF_FIELD = "csrf_token"
_CSRF_LABEL = b"semafore/portal-csrf/v1"
_MAX_COOKIE = 128

CSP = (
    "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


class CsrfRejected(Exception):
    """A state-changing request without proof that it came from our own page."""


def cookie_value(request: web.Request, name: str) -> str | None:
    value = request.cookies.get(name)
    return value if value and len(value) <= _MAX_COOKIE else None


def set_cookie(response: web.StreamResponse, name: str, value: str) -> None:
    response.set_cookie(name, value, path="/", secure=True, httponly=True, samesite="Strict")


def clear_cookie(response: web.StreamResponse, name: str) -> None:
    response.del_cookie(name, path="/", secure=True, httponly=True, samesite="Strict")


def new_sign_in_secret() -> str:
    return secrets.token_urlsafe(32)


def csrf_token(secret: str) -> str:
    mac = hmac.new(secret.encode(), _CSRF_LABEL, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def check_csrf(presented: object, secret: str | None) -> None:
    if secret is None or not isinstance(presented, str) or not presented:
        raise CsrfRejected("missing token")
    if not hmac.compare_digest(presented.encode(), csrf_token(secret).encode()):
        raise CsrfRejected("wrong token")


def check_origin(request: web.Request) -> None:
    origin = request.headers.get("Origin")
    if origin is not None and origin != "null":
        if origin != f"https://{request.host}":
            raise CsrfRejected("foreign origin")
        return
    if request.headers.get("Sec-Fetch-Site") != "same-origin":
        raise CsrfRejected("no origin")
