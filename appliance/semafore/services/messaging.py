"""Builds the relay's services (key directory, relay, delivery hub, push, expiry) and runs their
background work. Used by the app's start-up."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

from semafore.config import Settings
from semafore.services.clock import Clock
from semafore.services.delivery import CLOSE_SHUTDOWN, DeliveryHub
from semafore.services.devices import DeviceService, RevokedSession
from semafore.services.expiry import ExpirySweeper
from semafore.services.keydir import KeyDirectoryService
from semafore.services.push import PushService, PushTransport
from semafore.services.relay import RelayService
from semafore.storage import Database
from semafore.storage.keydir import KeyDirectory
from semafore.storage.push_store import PushStore
from semafore.storage.relay_queue import RelayQueue

log = logging.getLogger("semafore.relay")

DEPTH_REFRESH_SECONDS = 10.0


@dataclass(slots=True)
class MessagingServices:
    hub: DeliveryHub
    relay: RelayService
    keys: KeyDirectoryService
    push: PushService
    expiry: ExpirySweeper
    queue_depth: int = 0

    async def on_revoked(self, session: RevokedSession) -> None:
        """Identity's revocation hook: close the socket at once, stop pushing to the device."""
        device = (session.user_id, session.device_id)
        if session.chain_id is None:
            self.relay.device_revoked(device)
            self.push.forget(device)
        else:
            self.relay.session_revoked(device, session.chain_id)

    @contextlib.asynccontextmanager
    async def background(self) -> AsyncIterator[None]:
        """Push worker, expiry sweep, queue-depth gauge; on exit, sockets are told to close."""
        self.push.start()
        tasks = [
            asyncio.create_task(self.expiry.run(), name="relay-expiry"),
            asyncio.create_task(self._refresh_depth(), name="relay-depth"),
        ]
        try:
            yield
        finally:
            self.hub.close_all(CLOSE_SHUTDOWN)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.push.stop()
            await self.relay.flush_acks()

    async def _refresh_depth(self) -> None:
        while True:
            try:
                self.queue_depth = await self.relay.queue_depth()
            except Exception:
                log.warning("could not read the queue depth", exc_info=True)
            await asyncio.sleep(DEPTH_REFRESH_SECONDS)


def build_messaging_services(
    settings: Settings,
    clock: Clock,
    database: Database,
    *,
    devices: DeviceService | None,
    push_transport: PushTransport | None,
) -> MessagingServices:
    relay_settings = settings.relay
    queue = RelayQueue(database)
    keydir = KeyDirectory(database)
    hub = DeliveryHub(
        outbox_capacity=relay_settings.socket_outbox_envelopes,
        max_unacked=relay_settings.socket_max_unacked,
    )
    relay = RelayService(relay_settings, clock, queue, keydir, hub)
    keys = KeyDirectoryService(relay_settings, clock, keydir)
    push = PushService(settings.push, clock, PushStore(database), push_transport)
    hub.on_offline = push.notify
    services = MessagingServices(
        hub=hub,
        relay=relay,
        keys=keys,
        push=push,
        expiry=ExpirySweeper(relay_settings, clock, queue, keys),
    )
    if devices is not None:
        devices.on_revoked.append(services.on_revoked)
    return services
