"""Wake-up pushes for devices without a live socket.

A device may register one endpoint: an on-site UnifiedPush distributor's endpoint or any HTTPS
webhook. When a row is queued for a device that has no socket, :meth:`PushService.notify` (O(1),
never awaits, never fails) schedules one push ``coalesce_seconds`` later (or at the end of
``min_interval_seconds`` after the previous push, whichever is later). Per device:

* a notify while a push is due (not yet POSTed, or waiting to retry) is absorbed into it;
* a notify while a POST is under way marks one follow-up push, scheduled the same way when that
  POST ends (unless it is retried or the endpoint is gone); further notifies are absorbed into
  the follow-up. That POST began before the row was committed and may already have woken the
  device, which may have drained its queue and gone, so it cannot stand for the new row.

So every notify is followed by a push POSTed after it, a burst is one push (two when it
straddles the start of a POST), and pushes to one device are at least ``min_interval_seconds``
apart. ``stats.scheduled`` counts pushes scheduled (retries not included) and
``stats.coalesced`` notifies absorbed into a push already scheduled.

The body carries only a random reference, never content, sender, size or count::

    {"v": 1, "type": "wake", "ref": "<random 128-bit base64url>"}

Failures (network, 429, 5xx) are retried with exponential backoff up to ``max_attempts``;
404/410 mean the endpoint is gone and it is removed; any other answer drops the push. The
HTTP client is a :class:`PushTransport` the composition root provides (services know no HTTP).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

from semafore.config import PushSettings
from semafore.protocol.encoding import b64u_encode
from semafore.services.clock import Clock
from semafore.services.errors import InvalidInput, NotFound, Unavailable
from semafore.storage.push_store import PushEndpoint, PushStore

log = logging.getLogger("semafore.push")

Address = tuple[str, int]
KINDS = ("unifiedpush", "webhook")
MAX_URL_CHARS = 2048
MAX_CONCURRENT = 32


class PushTransport(Protocol):
    async def post(self, url: str, body: bytes) -> int:
        """POST ``body`` (JSON) to ``url``; the HTTP status. Raises OSError on network failure."""
        ...


@dataclass(slots=True)
class PushStats:
    scheduled: int = 0
    attempts: int = 0
    delivered: int = 0
    failed: int = 0
    coalesced: int = 0


@dataclass(slots=True)
class _State:
    due: float | None = None  # scheduled for this monotonic time
    attempt: int = 0
    busy: bool = False  # a POST is under way
    again: bool = False  # notified while busy: push again when the POST ends
    next_allowed: float = 0.0


_UNKNOWN = object()


class PushService:
    def __init__(
        self,
        settings: PushSettings,
        clock: Clock,
        store: PushStore,
        transport: PushTransport | None,
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._store = store
        self._transport = transport
        self.stats = PushStats()
        self._states: dict[Address, _State] = {}
        self._endpoints: dict[Address, PushEndpoint | None] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._sending: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(MAX_CONCURRENT)

    # -- registration -------------------------------------------------------------------------

    async def register(self, device: Address, body: Mapping[str, Any]) -> dict[str, Any]:
        if not self._settings.enabled:
            raise Unavailable("push is disabled on this appliance", code="push_disabled")
        kind = body.get("kind")
        url = body.get("url")
        if kind not in KINDS:
            raise InvalidInput("kind must be unifiedpush or webhook", code="invalid_push_endpoint")
        if not isinstance(url, str) or not self._url_allowed(url):
            raise InvalidInput(
                "url must be an https URL (on an allowed host) without credentials",
                code="invalid_push_endpoint",
            )
        endpoint = PushEndpoint(str(kind), url)
        await self._store.set_endpoint(device, endpoint, now_ms=int(self._clock.now() * 1000))
        self._endpoints[device] = endpoint
        return {"kind": endpoint.kind, "url": endpoint.url}

    async def unregister(self, device: Address) -> None:
        removed = await self._store.delete_endpoint(device)
        self._endpoints[device] = None
        if not removed:
            raise NotFound("no push endpoint registered", code="push_endpoint_not_found")

    async def endpoint(self, device: Address) -> dict[str, Any]:
        found = await self._store.endpoint(device)
        if found is None:
            raise NotFound("no push endpoint registered", code="push_endpoint_not_found")
        return {"kind": found.kind, "url": found.url}

    def forget(self, device: Address) -> None:
        """The device is gone (revoked): no more pushes to it."""
        self._states.pop(device, None)
        self._endpoints.pop(device, None)

    def _url_allowed(self, url: str) -> bool:
        if len(url) > MAX_URL_CHARS:
            return False
        try:
            parts = urlsplit(url)
            _ = parts.port  # raises on a malformed port
        except ValueError:
            return False
        schemes = ("https", "http") if self._settings.allow_http else ("https",)
        host = (parts.hostname or "").lower()
        if parts.scheme not in schemes or not host or parts.username or parts.password:
            return False
        allowed = self._settings.allowed_hosts
        return not allowed or host in {h.lower() for h in allowed}

    # -- notifying ----------------------------------------------------------------------------

    def notify(self, devices: list[Address]) -> None:
        """Rows were queued for these devices and they have no live socket."""
        if not self._settings.enabled or self._transport is None:
            return
        now = time.monotonic()
        for device in devices:
            if self._endpoints.get(device, _UNKNOWN) is None:
                continue  # known to have no endpoint
            state = self._states.setdefault(device, _State())
            if state.due is not None or state.again:
                self.stats.coalesced += 1
            elif state.busy:
                state.again = True
            else:
                self._schedule(state, now)
        self._wake.set()

    def _schedule(self, state: _State, now: float) -> None:
        state.due = max(now + self._settings.coalesce_seconds, state.next_allowed)
        state.attempt = 0
        self.stats.scheduled += 1

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="push")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        for task in list(self._sending):
            task.cancel()
        await asyncio.gather(*self._sending, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            now = time.monotonic()
            due = [d for d, s in self._states.items() if s.due is not None and s.due <= now]
            for device in due:
                state = self._states[device]
                state.due = None
                state.busy = True
                task = asyncio.get_running_loop().create_task(self._push(device, state))
                self._sending.add(task)
                task.add_done_callback(self._sending.discard)
            waits = [s.due for s in self._states.values() if s.due is not None]
            timeout = max(0.0, min(waits) - time.monotonic()) if waits else None
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)
            self._prune()

    async def _push(self, device: Address, state: _State) -> None:
        settings = self._settings
        try:
            async with self._slots:
                outcome = await self._attempt(device)
        except Exception:  # a bug must not kill the push worker
            log.exception("push attempt failed unexpectedly")
            outcome = "drop"
        finally:
            state.busy = False
        now = time.monotonic()
        again, state.again = state.again, False
        if outcome == "retry" and state.attempt + 1 < settings.max_attempts:
            state.attempt += 1
            delay = min(
                settings.backoff_max_seconds,
                settings.backoff_initial_seconds * 2 ** (state.attempt - 1),
            )
            state.due = now + delay * (0.5 + secrets.randbelow(1000) / 1000)
            if again:  # the retry is POSTed after that notify, so it stands for it
                self.stats.coalesced += 1
        else:
            if outcome == "retry":
                self.stats.failed += 1
            state.attempt = 0
            state.next_allowed = now + settings.min_interval_seconds
            forgotten = self._states.get(device) is not state  # revoked meanwhile
            no_endpoint = self._endpoints.get(device, _UNKNOWN) is None  # e.g. 404/410
            if again and not forgotten and not no_endpoint:
                self._schedule(state, now)
        self._wake.set()

    async def _attempt(self, device: Address) -> str:
        endpoint = self._endpoints.get(device, _UNKNOWN)
        if endpoint is _UNKNOWN:
            endpoint = await self._store.endpoint(device)
            self._endpoints[device] = endpoint  # type: ignore[assignment]
        if not isinstance(endpoint, PushEndpoint):
            return "drop"
        assert self._transport is not None
        body = json.dumps(
            {"v": 1, "type": "wake", "ref": b64u_encode(secrets.token_bytes(16))},
            separators=(",", ":"),
        ).encode()
        self.stats.attempts += 1
        try:
            status = await asyncio.wait_for(
                self._transport.post(endpoint.url, body), self._settings.timeout_seconds
            )
        except (OSError, TimeoutError) as error:
            log.info("push failed (%s); will retry", type(error).__name__)
            return "retry"
        if 200 <= status < 300:
            self.stats.delivered += 1
            return "done"
        if status in (404, 410):
            log.info("push endpoint gone (HTTP %d); removing it", status)
            await self._store.delete_endpoint(device)
            self._endpoints[device] = None
            self.stats.failed += 1
            return "drop"
        if status == 429 or status >= 500:
            return "retry"
        log.info("push refused (HTTP %d); dropped", status)
        self.stats.failed += 1
        return "drop"

    def _prune(self) -> None:
        if len(self._states) < 10_000:
            return
        now = time.monotonic()
        idle = [
            d for d, s in self._states.items()
            if s.due is None and not s.busy and s.next_allowed <= now
        ]
        for device in idle:
            del self._states[device]
