"""Test-side helpers for the file API: an appliance with two organisations of approved devices,
and a raw HTTP client for one device (aiohttp only, not the bundled client)."""

from __future__ import annotations

import io
import json as json_module
import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from semafore.web.appkeys import FILES, SERVICES
from support.appliance import Appliance, RunningServer
from support.relay_client import RELAY_TEST_CONFIG, DeviceCreds, World, setup_world

OCTETS = "application/offset+octet-stream"


def files_config(**files: Any) -> dict[str, dict[str, Any]]:
    return {**RELAY_TEST_CONFIG, "files": files}


class FileDevice:
    """HTTP calls to the file API as one device."""

    def __init__(self, base_url: str, context: ssl.SSLContext, creds: DeviceCreds) -> None:
        self.base_url = base_url.rstrip("/")
        self.creds = creds
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=context),
            headers={"Authorization": f"Bearer {creds.access_token}"},
        )

    async def close(self) -> None:
        await self.session.close()

    async def call(
        self, method: str, path: str, *, data: Any = None, json: Any = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any, Any]:
        """(status, JSON body or raw bytes, headers)."""
        if isinstance(data, bytes) and len(data) > 1 << 19:
            data = io.BytesIO(data)  # aiohttp warns about large raw bodies
        async with self.session.request(
            method, self.base_url + path, data=data, json=json, headers=headers
        ) as response:
            raw = await response.read()
            body: Any = raw
            if raw and response.content_type in ("application/json", "application/problem+json"):
                body = json_module.loads(raw)
            return response.status, body, response.headers

    async def create(self, length: int) -> tuple[int, Any]:
        status, body, _ = await self.call("POST", "/v1/uploads", json={"length": length})
        return status, body

    async def new_upload(self, length: int) -> str:
        status, body = await self.create(length)
        assert status == 201, body
        return str(body["id"])

    async def patch(
        self, file_id: str, offset: int, data: Any, *, method: str = "PATCH",
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        hdrs = {"Upload-Offset": str(offset), "Content-Type": OCTETS, **(headers or {})}
        status, body, _ = await self.call(method, f"/v1/uploads/{file_id}", data=data,
                                          headers=hdrs)
        return status, body

    async def state(self, file_id: str) -> tuple[int, Any]:
        status, body, _ = await self.call("GET", f"/v1/uploads/{file_id}")
        return status, body

    async def upload(self, data: bytes) -> str:
        file_id = await self.new_upload(len(data))
        status, body = await self.patch(file_id, 0, data)
        assert status == 200 and body["complete"], body
        return file_id

    async def download(
        self, file_id: str, headers: dict[str, str] | None = None
    ) -> tuple[int, Any, Any]:
        return await self.call("GET", f"/v1/files/{file_id}", headers=headers)


@dataclass
class FilesEnv:
    server: RunningServer
    context: ssl.SSLContext
    world: World
    other_org: World
    clients: list[FileDevice] = field(default_factory=list)

    def device(self, creds: DeviceCreds) -> FileDevice:
        client = FileDevice(self.server.url, self.context, creds)
        self.clients.append(client)
        return client

    @property
    def files(self) -> Any:
        return self.server.app[FILES]

    @property
    def services(self) -> Any:
        return self.server.app[SERVICES]

    @property
    def blob_root(self) -> Any:
        return self.services.blobs.root

    async def close(self) -> None:
        for client in self.clients:
            await client.close()


async def files_env(
    appliance: Appliance,
    start_server: Callable[..., Any],
    context: ssl.SSLContext,
    *,
    clock: Any = None,
    **files: Any,
) -> FilesEnv:
    """Org A: a member with two devices and one with one; org B: one member, one device."""
    appliance.configure(**files_config(**files))
    server = await start_server(clock=clock)
    services = server.app[SERVICES]
    world = await setup_world(services, [2, 1])
    other = await setup_world(services, [1], phone_base=7700900500)
    return FilesEnv(server, context, world, other)


async def env_fixture(
    appliance: Appliance, start_server: Callable[..., Any], context: ssl.SSLContext, **kw: Any
) -> AsyncIterator[FilesEnv]:
    env = await files_env(appliance, start_server, context, **kw)
    try:
        yield env
    finally:
        await env.close()
