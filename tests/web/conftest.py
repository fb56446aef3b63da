"""Fixtures shared by the web tests: the app over TLS on a manual clock and a client session
(a module may define its own instead)."""

import ssl
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from semafore.services import ManualClock
from support.appliance import Appliance, RunningServer, client_session


@pytest.fixture
def clock() -> ManualClock:
    """The server's clock: tests advance it to expire sessions, codes and sign-ins."""
    return ManualClock()


@pytest.fixture
async def running(appliance: Appliance, start_server: Any, clock: ManualClock) -> RunningServer:
    """The app over TLS on ``clock``, with the file OTP provider and generous send caps."""
    settings = appliance.configure(
        otp={"provider": "file", "sends_per_number_15min": 100, "sends_per_number_day": 100}
    )
    return await start_server(settings, clock=clock)


@pytest.fixture
async def http(
    running: RunningServer, ca_ssl_context: ssl.SSLContext
) -> AsyncIterator[aiohttp.ClientSession]:
    """A CA-pinned session without a cookie jar: every test says exactly which cookie it sends."""
    async with client_session(
        running.url, ca_ssl_context, cookie_jar=aiohttp.DummyCookieJar()
    ) as session:
        yield session
