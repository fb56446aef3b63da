"""A minimal relay client for tests, built on aiohttp only (not the bundled client).

- :func:`setup_world`: an organisation with members and approved devices, made through the
  identity services of a running app (or of a database the test opens itself); each device
  gets a real access token.
- :class:`RelayDevice`: HTTP calls (send, fetch, ack, keys, push) with the device's token.
- :class:`WsClient`: the device's WebSocket (frames as dicts).
- :func:`envelope`: a syntactically valid envelope; the server never looks inside ``ct``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import ssl
import types
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from semafore.protocol.encoding import b64u_encode
from semafore.services import ManualClock, Services
from semafore.services.messaging import MessagingServices, build_messaging_services
from semafore.storage.otp_spool import read_spool
from support.identity import EnrollingDevice, identity_env

Address = tuple[str, int]

# Settings a relay test appliance needs: OTP codes in files, room for many devices.
RELAY_TEST_CONFIG: dict[str, dict[str, Any]] = {
    "otp": {
        "provider": "file",
        "sends_per_number_15min": 1000,
        "sends_per_number_day": 10_000,
        "sends_per_address_15min": 100_000,
        "sends_per_address_day": 100_000,
    },
    "orgs": {"free_plan_member_limit": 1000},
}


def envelope(sender: Address, target: Address, ct: bytes | None = None) -> dict[str, Any]:
    return {
        "v": 1,
        "type": "msg",
        "from": {"user_id": sender[0], "device_id": sender[1]},
        "to": {"user_id": target[0], "device_id": target[1]},
        "header": b64u_encode(os.urandom(40)),
        "ct": b64u_encode(ct if ct is not None else os.urandom(48)),
    }


def send_body(
    sender: Address,
    targets: Sequence[Address],
    *,
    msg_id: str | None = None,
    ct: bytes | None = None,
) -> dict[str, Any]:
    return {
        "v": 1,
        "msg_id": msg_id or str(uuid.uuid4()),
        "envelopes": [envelope(sender, t, ct) for t in targets],
    }


@dataclass
class DeviceCreds:
    user_id: str
    device_id: int
    access_token: str
    keys: EnrollingDevice

    @property
    def address(self) -> Address:
        return (self.user_id, self.device_id)


@dataclass
class World:
    org_id: str
    # user_id -> that member's devices, in enrolment order
    members: dict[str, list[DeviceCreds]] = field(default_factory=dict)

    def devices(self, user_id: str) -> list[DeviceCreds]:
        return self.members[user_id]


async def setup_world(
    services: Services, devices_per_member: Sequence[int], *, phone_base: int = 7700900100
) -> World:
    """An organisation whose admin is the first member; member i gets devices_per_member[i]."""
    spool = services.settings.resolve(services.settings.otp.file_spool_dir)
    phones = [f"+44{phone_base + i}" for i in range(len(devices_per_member))]
    org, admin = await services.orgs.create_org("Relay Test", phones[0])
    world = World(org.org_id)
    user_ids = [admin.user_id]
    for phone in phones[1:]:
        member = await services.members.add_member(org.org_id, phone, actor="operator")
        user_ids.append(member.user_id)
    for user_id, phone, count in zip(user_ids, phones, devices_per_member, strict=True):
        world.members[user_id] = [
            await enrol_approved(services, spool, org.org_id, phone) for _ in range(count)
        ]
    return world


async def enrol_approved(
    services: Services, spool: Path, org_id: str, phone: str
) -> DeviceCreds:
    await services.enrolment.request_code(phone, client_address="192.0.2.1")
    await services.otp.wait_for_deliveries()
    codes = [m["message"].split("code is ")[1][:6] for m in read_spool(spool) if m["to"] == phone]
    ticket = await services.enrolment.verify_code(phone, codes[-1])
    keys = EnrollingDevice()
    registration = await services.enrolment.register(
        ticket.ticket, keys.registration(ticket.user_id, ticket.device_id)
    )
    await services.devices.approve(
        org_id, registration.user_id, registration.device_id, actor="operator"
    )
    status = await services.enrolment.status(registration.enrolment_secret)
    assert status.tokens is not None
    return DeviceCreds(
        registration.user_id, registration.device_id, status.tokens.access_token, keys
    )


class RelayDevice:
    """HTTP calls as one device."""

    def __init__(self, base_url: str, context: ssl.SSLContext, creds: DeviceCreds) -> None:
        self.base_url = base_url.rstrip("/")
        self.context = context
        self.creds = creds
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=context),
            headers={"Authorization": f"Bearer {creds.access_token}"},
        )

    @property
    def address(self) -> Address:
        return self.creds.address

    async def close(self) -> None:
        await self.session.close()

    async def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        kwargs: dict[str, Any] = {}
        if body is not None:
            kwargs["json"] = body
        async with self.session.request(method, self.base_url + path, **kwargs) as response:
            raw = await response.read()
            return response.status, (json.loads(raw) if raw else None)

    async def send(self, targets: Sequence[Address], **kwargs: Any) -> tuple[int, Any]:
        body = send_body(self.address, targets, **kwargs)
        return await self.request("POST", "/v1/messages", body)

    async def fetch(self, limit: int | None = None) -> tuple[int, Any]:
        query = "" if limit is None else f"?limit={limit}"
        return await self.request("GET", "/v1/messages" + query)

    async def ack(self, ids: Sequence[str]) -> tuple[int, Any]:
        return await self.request("POST", "/v1/messages/ack", {"ids": list(ids)})

    async def ws(self, *, header_auth: bool = True) -> WsClient:
        """The device's socket, authenticated by header or (header_auth=False) first frame."""
        url = self.base_url + "/v1/ws"
        if header_auth:
            return WsClient(await self.session.ws_connect(url), None)
        bare = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=self.context))
        client = WsClient(await bare.ws_connect(url), bare)
        await client.send_frame({"type": "auth", "token": self.creds.access_token})
        return client


class WsClient:
    def __init__(
        self, ws: aiohttp.ClientWebSocketResponse, owned: aiohttp.ClientSession | None
    ) -> None:
        self.ws = ws
        self._owned = owned
        self.received: list[dict[str, Any]] = []  # every envelope item, in arrival order

    async def send_frame(self, frame: dict[str, Any]) -> None:
        await self.ws.send_str(json.dumps(frame))

    async def next_frame(self, timeout: float = 10) -> dict[str, Any]:
        message = await self.ws.receive(timeout=timeout)
        if message.type != aiohttp.WSMsgType.TEXT:
            raise ConnectionError(f"socket closed: {message.type} {self.ws.close_code}")
        frame = json.loads(message.data)
        if frame.get("type") == "envelopes":
            self.received.extend(frame["items"])
        return frame

    async def until(self, kind: str, timeout: float = 10) -> dict[str, Any]:
        """Frames up to and including the first of ``kind`` (others are kept in ``received``)."""
        async with asyncio.timeout(timeout):
            while True:
                frame = await self.next_frame(timeout)
                if frame.get("type") == kind:
                    return frame

    async def receive_items(self, count: int, timeout: float = 10) -> list[dict[str, Any]]:
        """Wait until ``count`` envelope items have arrived in total; return them all."""
        async with asyncio.timeout(timeout):
            while len(self.received) < count:
                await self.next_frame(timeout)
        return self.received

    async def ack(self, ids: Sequence[str]) -> None:
        await self.send_frame({"type": "ack", "ids": list(ids)})

    async def close(self) -> None:
        await self.ws.close()
        if self._owned is not None:
            await self._owned.close()


@contextlib.asynccontextmanager
async def messaging_env(
    tmp_path: Path,
    *,
    clock: ManualClock | None = None,
    push_transport: Any = None,
    **sections: dict[str, Any],
) -> AsyncIterator[MessagingEnv]:
    """Identity and relay services on one real database under ``tmp_path`` (no HTTP)."""
    config = {**RELAY_TEST_CONFIG}
    for name, values in sections.items():
        config[name] = {**config.get(name, {}), **values}
    async with identity_env(tmp_path, clock=clock, **config) as env:
        messaging = build_messaging_services(
            env.settings, env.clock, env.database,
            devices=env.services.devices, push_transport=push_transport,
        )
        services = types.SimpleNamespace(settings=env.settings, **{
            name: getattr(env.services, name)
            for name in ("orgs", "members", "otp", "enrolment", "devices")
        })
        yield MessagingEnv(env, messaging, services)


@dataclass
class MessagingEnv:
    identity: Any
    messaging: MessagingServices
    services: Any

    async def world(self, devices_per_member: Sequence[int], **kwargs: int) -> World:
        return await setup_world(self.services, devices_per_member, **kwargs)


async def wait_until_empty(device: RelayDevice, timeout: float = 10) -> None:
    """Poll the fetch endpoint until nothing is queued for the device."""
    async with asyncio.timeout(timeout):
        while True:
            status, body = await device.fetch()
            assert status == 200, body
            if not body["messages"]:
                return
            await asyncio.sleep(0.05)
