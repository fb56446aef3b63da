"""The crypto mode: pairs whose devices run the bundled client's real protocol code.

Each sender fetches its partner's bundle over HTTP, runs X3DH (SessionManager.start_session),
and encrypts every message with the Double Ratchet (AES-256-GCM); the partner decrypts each
one. Sends go one way (even device to odd) so no session is started from both ends. The report
adds the client-side CPU per message for encryption and decryption.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

import aiohttp
from bench.relay import load

from semafore.client.messaging import new_content
from semafore.protocol import Bundle, DeviceAddress, Envelope, SessionManager

FILLER = "x" * 160  # with the content JSON and padding: ciphertext of realistic size


class CryptoWorker(load.Worker):
    def __init__(self, plan: load.Plan) -> None:
        super().__init__(plan)
        assert plan.keys is not None
        self.managers = [SessionManager.from_bytes(k) for k in plan.keys]

    async def prepare(self, session: aiohttp.ClientSession) -> None:
        for i, route in enumerate(self.plan.routes):
            if not route:
                continue
            (user_id, device_id), token = route[0], self.plan.devices[i][2]
            async with session.get(
                f"{self.plan.url}/v1/users/{user_id}/devices/{device_id}/bundle",
                headers={"Authorization": f"Bearer {token}"},
            ) as response:
                response.raise_for_status()
                bundle = Bundle.from_dict(await response.json())
            self.managers[i].start_session(bundle, DeviceAddress(user_id, device_id))

    def frame(self, i: int, seq: int, now: int) -> str:
        started = time.perf_counter_ns()
        _, content = new_content("text", f"{seq}:{now}:{FILLER}")
        target = DeviceAddress(*self.plan.routes[i][0])
        envelope = self.managers[i].encrypt(target, content)
        frame = json.dumps({
            "type": "send", "v": 1, "msg_id": f"c{seq}", "envelopes": [envelope.to_dict()],
        }, separators=(",", ":"))
        self.result.encrypt_us += (time.perf_counter_ns() - started) // 1000
        return frame

    def on_envelope(self, i: int, envelope: dict[str, Any], now: int) -> None:
        started = time.perf_counter_ns()
        received = self.managers[i].decrypt(Envelope.from_dict(envelope))
        body = json.loads(received.content)["body"]
        self.result.decrypt_us += (time.perf_counter_ns() - started) // 1000
        seq, sent_ns, _ = body.split(":", 2)
        self.delivered(int(seq), int(sent_ns), now)


def plans(args: argparse.Namespace, url: str, ca: str, creds: list[Any]) -> list[load.Plan]:
    routes: list[list[tuple[str, int]]] = [[] for _ in creds]
    for i in range(0, len(creds) - 1, 2):
        routes[i] = [creds[i + 1].address]
    per_proc = [list(range(p * 2, len(creds), 2 * args.procs)) for p in range(args.procs)]
    senders = sum(1 for r in routes if r) or 1
    result = []
    for index, pairs in enumerate(per_proc):
        mine = [j for i in pairs for j in (i, i + 1)]
        result.append(load.Plan(
            index=index, mode="crypto", url=url, ca_path=ca,
            devices=[(creds[j].user_id, creds[j].device_id, creds[j].token) for j in mine],
            routes=[routes[j] for j in mine],
            rate=args.rate * len(pairs) / senders, duration=args.duration, warmup=args.warmup,
            window=args.window, drain_seconds=args.drain, keys=[creds[j].keys for j in mine],
        ))
    return result


def main(plan: load.Plan, inbox: Any, outbox: Any) -> None:
    """Process entry point (multiprocessing, spawn)."""
    result = asyncio.run(load.run(plan, inbox, outbox, CryptoWorker(plan)))
    outbox.send(("result", result))
