"""The HTTP client that delivers wake-up pushes (the :class:`PushTransport` of services/push).

TLS verification always on (system CAs plus ``push.ca_file`` for an on-site distributor's CA,
TLS 1.2 or newer, since distributors are not ours to pin to 1.3); no redirects followed, no
cookies kept, no proxy from the environment; one small connection pool for the process.
"""

from __future__ import annotations

import ssl

import aiohttp

from semafore.config import ConfigError, Settings

USER_AGENT = "SemaFore-push/1"


class HttpPushTransport:
    def __init__(self, settings: Settings) -> None:
        self._context = ssl.create_default_context()
        self._context.minimum_version = ssl.TLSVersion.TLSv1_2
        ca_file = settings.push.ca_file
        if ca_file is not None:
            path = settings.resolve(ca_file)
            try:
                self._context.load_verify_locations(cafile=str(path))
            except (OSError, ssl.SSLError):
                raise ConfigError(f"push.ca_file: cannot load {path}") from None
        self._timeout = aiohttp.ClientTimeout(total=settings.push.timeout_seconds)
        self._session: aiohttp.ClientSession | None = None

    async def post(self, url: str, body: bytes) -> int:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=self._context, limit=32),
                timeout=self._timeout,
                cookie_jar=aiohttp.DummyCookieJar(),
                trust_env=False,
            )
        try:
            async with self._session.post(
                url,
                data=body,
                allow_redirects=False,
                headers={"Content-Type": "application/json", "User-Agent": USER_AGENT},
            ) as response:
                response.release()  # the body is not ours to read
                return response.status
        except aiohttp.ClientError as error:
            raise OSError(f"push request failed: {type(error).__name__}") from None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
