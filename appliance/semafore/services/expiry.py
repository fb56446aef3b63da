"""The expiry sweep: the only thing that removes rows nobody acknowledged.

Every ``relay.expiry_interval_seconds`` it deletes queue rows older than the TTL (in chunks, so
the writer is never held for long), idempotency records older than their window and signed pre
keys retired longer ago than the retention window.
"""

from __future__ import annotations

import asyncio
import logging

from semafore.config import RelaySettings
from semafore.services.clock import Clock
from semafore.services.keydir import KeyDirectoryService
from semafore.storage.relay_queue import RelayQueue

log = logging.getLogger("semafore.expiry")

CHUNK = 5000
DAY = 86_400


class ExpirySweeper:
    def __init__(
        self,
        settings: RelaySettings,
        clock: Clock,
        queue: RelayQueue,
        keydir: KeyDirectoryService,
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._queue = queue
        self._keydir = keydir
        self.expired = 0

    async def sweep(self) -> int:
        """One full pass; returns how many queue rows expired."""
        now = self._clock.now()
        queued_before = int((now - self._settings.message_ttl_days * DAY) * 1000)
        sends_before = int((now - self._settings.idempotency_hours * 3600) * 1000)
        total = 0
        while True:
            removed, forgotten = await self._queue.expire(
                queued_before_ms=queued_before, sends_before_ms=sends_before, limit=CHUNK
            )
            total += removed
            if removed < CHUNK and forgotten < CHUNK:
                break
            await asyncio.sleep(0)  # let other writers in between chunks
        await self._keydir.expire_retired()
        self.expired += total
        if total:
            log.info("expired %d undelivered messages older than %d days", total,
                     self._settings.message_ttl_days)
        return total

    async def run(self) -> None:
        """Forever (a background task): sleep, sweep, repeat; errors are logged, not fatal."""
        while True:
            await asyncio.sleep(self._settings.expiry_interval_seconds)
            try:
                await self.sweep()
            except Exception:
                log.exception("expiry sweep failed; will retry")
