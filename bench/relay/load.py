"""One load-generator process: its share of the devices on TLS 1.3 WebSockets.

Each worker connects its devices, reports ready, waits for the common start time, then sends
``send`` frames (at its share of the offered rate, or flat out with a window per device) for the
duration, acks every ``envelopes`` frame with one ``ack`` frame covering all its ids, and keeps
draining until everything its senders had accepted arrived (bounded by ``drain_seconds``).
Latency is measured from a tag (sequence number and send time) carried in the envelope's opaque
``header`` bytes: the server never looks at them, the receiver decodes them.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import ssl
import struct
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import aiohttp

CT = base64.urlsafe_b64encode(os.urandom(224)).rstrip(b"=").decode()  # ~300 chars of base64
_TAG = struct.Struct(">QQ")
_PAD = os.urandom(24)
CONNECT_CONCURRENCY = 64


@dataclass
class Plan:
    """What one worker does. ``routes[i]`` lists the targets of device i's sends (empty: it
    only receives); ``rate`` is this worker's share of the offered sends/s (0: flat out)."""

    index: int
    mode: str
    url: str
    ca_path: str
    devices: list[tuple[str, int, str]]
    routes: list[list[tuple[str, int]]]
    rate: float
    duration: float
    warmup: float
    window: int
    drain_seconds: float
    keys: list[bytes] | None = None  # crypto mode: each device's SessionManager state


@dataclass
class Result:
    connected: int = 0
    tls_version: str = ""
    sent: int = 0
    accepted: int = 0
    accepted_in_window: int = 0
    envelopes_accepted: int = 0
    delivered: int = 0
    delivered_in_window: int = 0
    duplicates: int = 0
    latencies_us: list[int] = field(default_factory=list)
    # group mode: seq -> [sent_ns, envelopes received, last receipt ns]
    messages: dict[int, list[int]] = field(default_factory=dict)
    errors: Counter[str] = field(default_factory=Counter)
    behind: int = 0  # sends that were due but every window was full
    cpu_seconds: float = 0.0
    frames_in: int = 0
    open_at_end: int = 0  # sockets still open when the load ended
    encrypt_us: int = 0  # crypto mode: client-side protocol work
    decrypt_us: int = 0


def tag_header(seq: int, sent_ns: int) -> str:
    return base64.urlsafe_b64encode(_TAG.pack(seq, sent_ns) + _PAD).rstrip(b"=").decode()


def read_tag(header: str) -> tuple[int, int]:
    seq, sent_ns = _TAG.unpack(base64.urlsafe_b64decode(header[:24])[:16])
    return seq, sent_ns


def send_frame(msg_id: str, sender: tuple[str, int], targets: list[tuple[str, int]],
               header: str) -> str:
    source = f'{{"user_id":"{sender[0]}","device_id":{sender[1]}}}'
    envelopes = ",".join(
        f'{{"v":1,"type":"msg","from":{source},"to":{{"user_id":"{user_id}",'
        f'"device_id":{device_id}}},"header":"{header}","ct":"{CT}"}}'
        for user_id, device_id in targets
    )
    return f'{{"type":"send","v":1,"msg_id":"{msg_id}","envelopes":[{envelopes}]}}'


class Worker:
    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.result = Result()
        self.sockets: list[aiohttp.ClientWebSocketResponse | None] = [None] * len(plan.devices)
        self.inflight = [0] * len(plan.devices)
        self.room = asyncio.Event()
        self.seq = plan.index << 40
        self.start_ns = 0
        self.measure_ns = 0
        self.end_ns = 0
        self.seen: list[set[int]] = [set() for _ in plan.devices]
        self.ready = 0
        self.readers: list[asyncio.Task[None]] = []

    async def prepare(self, session: aiohttp.ClientSession) -> None:
        """Anything before the sockets open (the crypto mode starts its sessions here)."""

    async def connect(self, session: aiohttp.ClientSession) -> None:
        limit = asyncio.Semaphore(CONNECT_CONCURRENCY)

        async def one(i: int) -> None:
            token = self.plan.devices[i][2]
            async with limit:
                try:
                    ws = await session.ws_connect(
                        self.plan.url + "/v1/ws", headers={"Authorization": f"Bearer {token}"},
                        max_msg_size=0, timeout=aiohttp.ClientWSTimeout(ws_close=5),
                    )
                except (aiohttp.ClientError, OSError, TimeoutError) as error:
                    self.result.errors[f"connect:{type(error).__name__}"] += 1
                    return
            self.sockets[i] = ws
            # Read at once: an unread socket does not answer the server's heartbeat pings.
            self.readers.append(asyncio.create_task(self.read(i)))
            if not self.result.tls_version:
                transport = ws._response.connection.transport  # type: ignore[union-attr]
                ssl_object = transport.get_extra_info("ssl_object") if transport else None
                self.result.tls_version = ssl_object.version() if ssl_object else ""
            self.result.connected += 1

        await asyncio.gather(*(one(i) for i in range(len(self.plan.devices))))

    async def read(self, i: int) -> None:
        ws = self.sockets[i]
        assert ws is not None
        result = self.result
        seen = self.seen[i]
        async for message in ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                break
            now = time.monotonic_ns()
            result.frames_in += 1
            frame = json.loads(message.data)
            kind = frame.get("type")
            if kind == "envelopes":
                ids = []
                for item in frame["items"]:
                    server_id = int(item["id"])
                    ids.append(item["id"])
                    if server_id in seen:
                        result.duplicates += 1
                        continue
                    seen.add(server_id)
                    self.on_envelope(i, item["envelope"], now)
                await ws.send_str(f'{{"type":"ack","ids":{json.dumps(ids)}}}')
            elif kind == "sent":
                self._answered(i, now, frame["stored"])
            elif kind == "ready":
                self.ready += 1
            elif kind == "error":
                result.errors[frame.get("code", "?")] += 1
                if "msg_id" in frame:
                    self._answered(i, now, 0)
        if ws.close_code not in (None, 1000, 1001):
            result.errors[f"closed:{ws.close_code}"] += 1

    def on_envelope(self, i: int, envelope: dict[str, Any], now: int) -> None:
        self.delivered(*read_tag(envelope["header"]), now)

    def delivered(self, seq: int, sent_ns: int, now: int) -> None:
        result = self.result
        result.delivered += 1
        if self.start_ns <= now < self.end_ns:
            result.delivered_in_window += 1
        if sent_ns >= self.measure_ns:
            result.latencies_us.append((now - sent_ns) // 1000)
        if self.plan.mode == "group":
            entry = result.messages.setdefault(seq, [sent_ns, 0, 0])
            entry[1] += 1
            entry[2] = max(entry[2], now)

    def _answered(self, i: int, now: int, stored: int) -> None:
        self.inflight[i] -= 1
        self.room.set()
        if stored:
            self.result.accepted += 1
            self.result.envelopes_accepted += stored
            if self.start_ns <= now < self.end_ns:
                self.result.accepted_in_window += 1

    def frame(self, i: int, seq: int, now: int) -> str:
        user_id, device_id, _ = self.plan.devices[i]
        return send_frame(
            f"b{seq}", (user_id, device_id), self.plan.routes[i], tag_header(seq, now)
        )

    async def send(self, i: int) -> None:
        ws = self.sockets[i]
        if ws is None or ws.closed:
            return
        self.seq += 1
        frame = self.frame(i, self.seq, time.monotonic_ns())
        self.inflight[i] += 1
        self.result.sent += 1
        try:
            await ws.send_str(frame)
        except ConnectionError:
            self.inflight[i] -= 1
            self.result.errors["send:ConnectionError"] += 1

    async def offered(self) -> None:
        """Sends at ``rate`` per second, round-robin over the senders with window room."""
        senders = [i for i, route in enumerate(self.plan.routes) if route and self.sockets[i]]
        if not senders:
            return
        due = 0
        cursor = 0
        while (now := time.monotonic_ns()) < self.end_ns:
            target = int((now - self.start_ns) / 1e9 * self.plan.rate)
            for _ in range(min(target - due, len(senders))):
                for _ in range(len(senders)):
                    i = senders[cursor]
                    cursor = (cursor + 1) % len(senders)
                    if self.inflight[i] < self.plan.window:
                        await self.send(i)
                        break
                else:
                    self.result.behind += 1
                due += 1
            due = max(due, target - len(senders))  # never burst more than one round to catch up
            await asyncio.sleep(0.001)

    async def flat_out(self, i: int) -> None:
        while time.monotonic_ns() < self.end_ns:
            if self.inflight[i] < self.plan.window:
                await self.send(i)
                continue
            self.room.clear()
            try:
                left = max(0.001, (self.end_ns - time.monotonic_ns()) / 1e9)
                await asyncio.wait_for(self.room.wait(), left)
            except TimeoutError:
                return

    def outstanding(self) -> bool:
        return any(self.inflight)


async def run(plan: Plan, inbox: Any, outbox: Any, worker: Worker | None = None) -> Result:
    """Connect, tell the parent, wait for the start time it sends, load, drain, report."""
    context = ssl.create_default_context(cafile=plan.ca_path)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    loop = asyncio.get_running_loop()
    worker = worker or Worker(plan)
    connector = aiohttp.TCPConnector(ssl=context, limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        await worker.prepare(session)
        await worker.connect(session)
        deadline = time.monotonic() + 120
        while worker.ready < worker.result.connected:
            if time.monotonic() > deadline:
                worker.result.errors["ready_timeout"] += 1
                break
            await asyncio.sleep(0.05)
        outbox.send(("ready", worker.result.connected))
        start_wall = await loop.run_in_executor(None, inbox.recv)
        await asyncio.sleep(max(0.0, start_wall - time.time()))
        worker.start_ns = time.monotonic_ns()
        worker.measure_ns = worker.start_ns + int(plan.warmup * 1e9)
        worker.end_ns = worker.start_ns + int(plan.duration * 1e9)
        cpu_before = time.process_time()
        if plan.mode == "idle":
            await asyncio.sleep(plan.duration)
        elif plan.rate > 0:
            await worker.offered()
        else:
            await asyncio.gather(*(
                worker.flat_out(i) for i, route in enumerate(plan.routes) if route
            ))
        worker.result.cpu_seconds = time.process_time() - cpu_before
        deadline = time.monotonic() + plan.drain_seconds
        while worker.outstanding() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        outbox.send(("answered", worker.result.envelopes_accepted, worker.result.delivered))
        stop = loop.run_in_executor(None, inbox.recv)
        while not stop.done():  # the parent decides when every worker's deliveries are in
            outbox.send(("progress", worker.result.delivered))
            await asyncio.wait([stop], timeout=0.1)
        worker.result.open_at_end = sum(1 for ws in worker.sockets if ws and not ws.closed)
        for ws in worker.sockets:
            if ws is not None:
                await ws.close()
        await asyncio.gather(*worker.readers, return_exceptions=True)
    return worker.result


def main(plan: Plan, inbox: Any, outbox: Any) -> None:
    """Process entry point (multiprocessing, spawn)."""
    result = asyncio.run(run(plan, inbox, outbox))
    outbox.send(("result", result))
