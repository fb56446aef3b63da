"""A running appliance with an organisation of approved devices, and test-side clients."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

import pytest

from semafore.web.appkeys import MESSAGING, SERVICES
from support.appliance import Appliance, RunningServer
from support.relay_client import (
    RELAY_TEST_CONFIG,
    DeviceCreds,
    RelayDevice,
    World,
    setup_world,
)


@dataclass
class RelayEnv:
    server: RunningServer
    context: ssl.SSLContext
    clients: list[RelayDevice] = field(default_factory=list)

    async def world(self, devices_per_member: Sequence[int], **kwargs: int) -> World:
        return await setup_world(self.server.app[SERVICES], devices_per_member, **kwargs)

    def device(self, creds: DeviceCreds) -> RelayDevice:
        client = RelayDevice(self.server.url, self.context, creds)
        self.clients.append(client)
        return client

    async def total_depth(self) -> int:
        return await self.server.app[MESSAGING].relay.queue_depth()


@pytest.fixture
async def relay_env(
    appliance: Appliance, start_server, ca_ssl_context: ssl.SSLContext  # type: ignore[no-untyped-def]
) -> AsyncIterator[RelayEnv]:
    appliance.configure(**RELAY_TEST_CONFIG)
    env = RelayEnv(await start_server(), ca_ssl_context)
    yield env
    for client in env.clients:
        await client.close()
