"""An organisation of approved devices, made the way an operator and real devices make it.

Members are added by the operator services (as ``semafore member add`` does). Each device
enrols through the real HTTP API (code, verify, register with real keys), the operator approves
it (as ``semafore device approve`` does, in one process for speed), and the device collects its
tokens over HTTP. Requests run concurrently so 1,000+ devices take seconds.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from semafore.client.enrolment import registration_body
from semafore.config import load_settings
from semafore.protocol import (
    DeviceAddress,
    DeviceKeys,
    DHKeyPair,
    IdentityKeyPair,
    SessionManager,
    b64u_encode,
)
from semafore.protocol.binding import sign_identity_binding, sign_signed_pre_key
from semafore.services import SystemClock
from semafore.services.identity import build_identity_services
from semafore.services.otp_providers import ConsoleProvider
from semafore.storage import Database

CONCURRENCY = 32
PHONE_BASE = 447700000000


@dataclass(frozen=True)
class Creds:
    user_id: str
    device_id: int
    token: str
    # The device's protocol state (SessionManager bytes), kept only for the crypto mode.
    keys: bytes | None = None

    @property
    def address(self) -> tuple[str, int]:
        return (self.user_id, self.device_id)


async def operator_members(config_path: Path, count: int) -> tuple[str, list[str]]:
    """An organisation with ``count`` members (the first is its admin): (org_id, phones)."""
    phones = [f"+{PHONE_BASE + i}" for i in range(count)]
    async with _operator(config_path) as identity:
        org, _ = await identity.orgs.create_org("Bench", phones[0])
        for start in range(1, count, 256):
            await asyncio.gather(*(
                identity.members.add_member(org.org_id, phone, actor="operator")
                for phone in phones[start : start + 256]
            ))
    return org.org_id, phones


async def operator_approve(config_path: Path, org_id: str, devices: list[tuple[str, int]]) -> None:
    async with _operator(config_path) as identity:
        for start in range(0, len(devices), 256):
            await asyncio.gather(*(
                identity.devices.approve(org_id, user_id, device_id, actor="operator")
                for user_id, device_id in devices[start : start + 256]
            ))


class _operator:
    def __init__(self, config_path: Path) -> None:
        self._settings = load_settings(config_path)
        self._database: Database | None = None

    async def __aenter__(self) -> Any:
        storage = self._settings.storage
        self._database = Database(storage.database_path, busy_timeout_ms=30_000,
                                  reader_connections=1)
        await self._database.open(migrate=False)
        return build_identity_services(
            self._settings, SystemClock(), self._database, provider=ConsoleProvider()
        )

    async def __aexit__(self, *exc: object) -> None:
        assert self._database is not None
        await self._database.close()


async def enrol_devices(
    base_url: str, context: ssl.SSLContext, config_path: Path, phones: list[str],
    org_id: str, *, keep_keys: bool = False,
) -> list[Creds]:
    """One approved device per phone number, enrolled through the HTTP API."""
    spool = load_settings(config_path).resolve(load_settings(config_path).otp.file_spool_dir)
    limit = asyncio.Semaphore(CONCURRENCY)
    connector = aiohttp.TCPConnector(ssl=context, limit=CONCURRENCY)
    async with aiohttp.ClientSession(base_url, connector=connector) as http:

        async def post(path: str, body: Any, bearer: str | None = None) -> Any:
            headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
            async with limit, http.post(path, json=body, headers=headers) as response:
                data = await response.json()
                if response.status >= 300:
                    raise RuntimeError(f"{path}: {response.status} {data}")
                return data

        await asyncio.gather(*(post("/v1/enrolment/code", {"phone": p}) for p in phones))
        codes = await _codes(spool, set(phones))

        async def register(phone: str) -> tuple[str, int, str, bytes | None]:
            ticket = await post("/v1/enrolment/verify", {"phone": phone, "code": codes[phone]})
            body, keys = _registration(ticket["user_id"], ticket["device_id"], keep_keys)
            registered = await post("/v1/enrolment/register", body, ticket["ticket"])
            return registered["user_id"], registered["device_id"], \
                registered["enrolment_secret"], keys

        registered = await asyncio.gather(*(register(p) for p in phones))
        await operator_approve(config_path, org_id, [(u, d) for u, d, _, _ in registered])

        async def collect(user_id: str, device_id: int, secret: str, keys: Any) -> Creds:
            status = await post("/v1/enrolment/status", {}, secret)
            assert status["status"] == "approved", status
            token = status["tokens"]["access_token"]
            return Creds(user_id, device_id, token, keys)

        return list(await asyncio.gather(*(collect(*r) for r in registered)))


async def _codes(spool: Path, phones: set[str], timeout: float = 120) -> dict[str, str]:
    """The latest code per number from the file provider's spool (one JSON file per code)."""
    codes: dict[str, str] = {}
    async with asyncio.timeout(timeout):
        while True:
            for path in sorted(spool.glob("*.json")):
                message = json.loads(path.read_text())
                if message["to"] in phones:
                    codes[message["to"]] = message["message"].split("code is ")[1][:6]
            if len(codes) == len(phones):
                return codes
            await asyncio.sleep(0.2)


def _registration(
    user_id: str, device_id: int, full: bool
) -> tuple[dict[str, Any], bytes | None]:
    """The registration body; with ``full``, keys made and kept by the bundled client's code."""
    address = DeviceAddress(user_id, device_id)
    if full:
        manager = SessionManager(DeviceKeys.generate(address, time.time_ns() // 1_000_000))
        manager.generate_one_time_pre_keys(1)
        return registration_body(manager.device), manager.to_bytes()
    identity = IdentityKeyPair.generate()
    spk = DHKeyPair.generate()
    opk = DHKeyPair.generate()
    body = {
        "identity_key": b64u_encode(identity.ik.data),
        "identity_signing_key": b64u_encode(identity.isk.data),
        "identity_binding_signature": b64u_encode(sign_identity_binding(identity, address)),
        "signed_pre_key_id": 1,
        "signed_pre_key": b64u_encode(spk.public.data),
        "signed_pre_key_signature": b64u_encode(sign_signed_pre_key(identity, spk.public)),
        "one_time_pre_keys": [{"id": 1, "key": b64u_encode(opk.public.data)}],
    }
    return body, None
