"""HTTPS to the appliance: a ClientSession pinned to the appliance CA, problem details mapped to
typed errors, bearer tokens refreshed once on expiry.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp

from semafore.client import errors

USER_AGENT = "semafore-client/1"
REQUEST_TIMEOUT_S = 30.0

# Problem `code`s with a meaning of their own on the client; anything else maps by status.
_CODE_ERRORS: dict[str, type[errors.ServerError]] = {
    "device_pending": errors.NotApproved,
    "device_revoked": errors.Revoked,
    "session_revoked": errors.Revoked,
    "refresh_token_invalid": errors.Revoked,
    "member_revoked": errors.Revoked,
    "device_rejected": errors.Revoked,
    "device_list_stale": errors.StaleDevices,
    "stale_devices": errors.StaleDevices,
}
_STATUS_ERRORS: dict[int, type[errors.ServerError]] = {
    409: errors.ServerError,
    401: errors.Unauthorised,
    404: errors.NotFound,
    429: errors.RateLimited,
}


def appliance_ssl_context(ca_file: Path) -> ssl.SSLContext:
    """Trust only the appliance CA (no system roots), TLS 1.3, host name checked."""
    try:
        context = ssl.create_default_context(cafile=str(ca_file))
    except FileNotFoundError:
        raise errors.ClientError(f"CA certificate not found: {ca_file}") from None
    except ssl.SSLError:
        raise errors.ClientError(f"not a PEM CA certificate: {ca_file}") from None
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def error_from_problem(status: int, body: bytes) -> errors.ServerError:
    try:
        problem = json.loads(body)
        if not isinstance(problem, dict):
            problem = {}
    except ValueError:
        problem = {}
    code = str(problem.get("code") or f"http_{status}")
    detail = str(problem.get("detail") or problem.get("title") or f"HTTP {status}")
    details = {k: v for k, v in problem.items() if k not in {"type", "title", "status", "detail"}}
    cls = _CODE_ERRORS.get(code) or _STATUS_ERRORS.get(status) or errors.ServerError
    return cls(f"server refused: {detail} [{code}]", status=status, code=code, details=details)


TokenRefresher = Callable[[], Awaitable[str]]


class Http:
    """One ClientSession to one appliance. `access_token` is used until a 401 says it expired;
    then `refresh` (if set) is awaited once for a new one and the request is repeated."""

    def __init__(self, base_url: str, ca_file: Path) -> None:
        self.base_url = base_url.rstrip("/")
        if not self.base_url.startswith("https://"):
            raise errors.ClientError("the server URL must start with https://")
        self.ssl = appliance_ssl_context(ca_file)
        self.access_token: str | None = None
        self.refresh: TokenRefresher | None = None
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=self.ssl),
                timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S),
                headers={"User-Agent": USER_AGENT},
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        data: bytes | None = None,
        headers: dict[str, str] | None = None,
        auth: bool = True,
        bearer: str | None = None,
    ) -> Any:
        """Send one request; returns the decoded JSON body (or None for an empty one)."""
        for attempt in (0, 1):
            hdrs = dict(headers or {})
            token = bearer or (self.access_token if auth else None)
            if token:
                hdrs["Authorization"] = f"Bearer {token}"
            status, body = await self._send(method, path, json_body, data, hdrs)
            if status == 401 and auth and bearer is None and attempt == 0 and self.refresh:
                problem = error_from_problem(status, body)
                if not isinstance(problem, errors.Revoked):
                    self.access_token = await self.refresh()
                    continue
            if status >= 400:
                raise error_from_problem(status, body)
            if not body:
                return None
            try:
                return json.loads(body)
            except ValueError:
                raise errors.ServerError(
                    "server sent a malformed response", status=status, code="bad_response"
                ) from None
        raise AssertionError("unreachable")

    async def _send(
        self,
        method: str,
        path: str,
        json_body: Any,
        data: bytes | None,
        headers: dict[str, str],
    ) -> tuple[int, bytes]:
        try:
            async with self.session.request(
                method, self.base_url + path, json=json_body, data=data, headers=headers
            ) as resp:
                return resp.status, await resp.read()
        except aiohttp.ClientConnectorCertificateError:
            raise errors.ServerUnreachable(
                f"{self.base_url}: the server certificate is not signed by the appliance CA"
                " (or does not name this host)"
            ) from None
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise errors.ServerUnreachable(
                f"cannot reach {self.base_url} ({type(exc).__name__})"
            ) from None
