"""A real ``semafore serve`` with small limits and an organisation of approved devices, shared
by the tests of one module (abuse tests)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from robustness.offline import offline_world
from support.appliance import Appliance, ServeProcess
from support.relay_client import RELAY_TEST_CONFIG, World

LIMITS = {
    "server": {"max_request_bytes": 65_536},
    "relay": {"send_max_bytes": 65_536, "envelope_max_bytes": 8192, "heartbeat_seconds": 2},
}


@dataclass
class Served:
    appliance: Appliance
    process: ServeProcess
    world: World

    @property
    def url(self) -> str:
        return self.process.url


@pytest.fixture(scope="module")
def served(
    appliance_template: Appliance, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    appliance = appliance_template.copy_to(tmp_path_factory.mktemp("abuse") / "appliance")
    appliance.configure(**RELAY_TEST_CONFIG, **LIMITS)
    world = asyncio.run(offline_world(appliance, [1, 1, 1]))
    process = ServeProcess.start(appliance)
    try:
        yield Served(appliance, process, world)
    finally:
        process.terminate()
