"""Fixtures for the portal's browser tests (marker ``browser``): a running appliance with the
file OTP provider and self-service sign-up on, a hand-moved clock, and headless Chromium.

Chromium comes from Debian (tests/browser/setup-host.sh installs it; ``./dev test`` runs that
script). Without it the tests are skipped with that reason, except under CI, where they fail.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import async_playwright

from support.appliance import Appliance, client_session

from .harness import CHROMIUM, Portal, launch, wall_clock

BROWSER_CONFIG: dict[str, dict[str, Any]] = {
    "otp": {"provider": "file", "sends_per_number_15min": 100, "sends_per_number_day": 100},
    "orgs": {"self_service_signup": True},
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).parent == here:
            item.add_marker(pytest.mark.browser)
            if not CHROMIUM.exists() and not os.environ.get("CI"):
                item.add_marker(pytest.mark.skip(
                    reason="needs Debian's chromium: run tests/browser/setup-host.sh as root"))


async def _portal(appliance: Appliance, start_server: Any, ca_ssl_context: ssl.SSLContext,
                  tmp_path: Path, *, javascript: bool, **config: dict[str, Any]
                  ) -> AsyncIterator[Portal]:
    settings = appliance.configure(**{**BROWSER_CONFIG, **config})
    clock = wall_clock()
    running = await start_server(settings, clock=clock)
    async with async_playwright() as playwright, client_session(
        running.url, ca_ssl_context
    ) as http:
        context = await launch(playwright, tmp_path / "chromium", appliance.ca_path,
                               javascript=javascript)
        try:
            page = context.pages[0] if context.pages else await context.new_page()
            yield Portal(running, clock, page, http)
        finally:
            await context.close()


@pytest.fixture
async def portal(appliance: Appliance, start_server: Any, ca_ssl_context: ssl.SSLContext,
                 tmp_path: Path) -> AsyncIterator[Portal]:
    """Chromium with JavaScript on (so that an injected script would run and be noticed)."""
    async for portal in _portal(appliance, start_server, ca_ssl_context, tmp_path,
                                javascript=True):
        yield portal


@pytest.fixture
async def portal_no_js(appliance: Appliance, start_server: Any, ca_ssl_context: ssl.SSLContext,
                       tmp_path: Path) -> AsyncIterator[Portal]:
    """Chromium with JavaScript off: the portal must work entirely without it."""
    async for portal in _portal(appliance, start_server, ca_ssl_context, tmp_path,
                                javascript=False):
        yield portal


@pytest.fixture
async def portal_signup_off(appliance: Appliance, start_server: Any,
                            ca_ssl_context: ssl.SSLContext, tmp_path: Path
                            ) -> AsyncIterator[Portal]:
    """As ``portal``, on an appliance where self-service sign-up is off (the default)."""
    async for portal in _portal(appliance, start_server, ca_ssl_context, tmp_path,
                                javascript=True, orgs={"self_service_signup": False}):
        yield portal
