"""Fixtures shared by every test package: a real appliance over real TLS on loopback.

- ``appliance_template`` (session): one ``semafore init`` per test session, never modified.
- ``appliance``: a private copy of it for this test (fresh database, same CA): an
  :class:`support.appliance.Appliance` with ``data_dir``, ``config_path``, ``ca_path``,
  ``settings()`` and ``configure(section={...})`` to change the config file.
- ``ca_ssl_context`` (session): a client ``ssl.SSLContext`` trusting only the appliance CA.
- ``start_server``: ``await start_server(settings=None, clock=None, configure=None)`` serves
  ``create_app(settings, clock=clock)`` in-process over TLS on a free port and returns a
  :class:`support.appliance.RunningServer` (``.app``, ``.url``, ``.settings``); ``configure(app)``
  may add test-only routes. Stopped at teardown (cleanup_ctx closes the database).
- ``server``: ``start_server()`` with the appliance's settings.
- ``client``: an ``aiohttp.ClientSession`` for ``server`` (``base_url`` set, CA pinned).
- ``serve_process``: a real ``semafore serve`` subprocess on the appliance (``.url``,
  ``.terminate()``, ``.log_text()``), SIGTERMed at teardown.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from support.appliance import (
    Appliance,
    RunningServer,
    ServeProcess,
    client_session,
    client_ssl_context,
    init_appliance,
)


@pytest.fixture(scope="session")
def appliance_template(tmp_path_factory: pytest.TempPathFactory) -> Appliance:
    return init_appliance(tmp_path_factory.mktemp("template") / "appliance")


@pytest.fixture
def appliance(appliance_template: Appliance, tmp_path: Path) -> Appliance:
    return appliance_template.copy_to(tmp_path / "appliance")


@pytest.fixture(scope="session")
def ca_ssl_context(appliance_template: Appliance) -> ssl.SSLContext:
    return client_ssl_context(appliance_template.ca_path)


StartServer = Callable[..., Awaitable[RunningServer]]


@pytest.fixture
async def start_server(appliance: Appliance) -> AsyncIterator[StartServer]:
    started: list[RunningServer] = []

    async def start(settings: Any = None, **kwargs: Any) -> RunningServer:
        running = await RunningServer.start(settings or appliance.settings(), **kwargs)
        started.append(running)
        return running

    yield start
    for running in reversed(started):
        await running.stop()


@pytest.fixture
async def server(start_server: StartServer) -> RunningServer:
    return await start_server()


@pytest.fixture
async def client(
    server: RunningServer, ca_ssl_context: ssl.SSLContext
) -> AsyncIterator[aiohttp.ClientSession]:
    async with client_session(server.url, ca_ssl_context) as session:
        yield session


@pytest.fixture
def serve_process(appliance: Appliance) -> Iterator[ServeProcess]:
    served = ServeProcess.start(appliance)
    yield served
    served.terminate()
