"""A TCP relay in front of the appliance that lets a set number of bytes through from clients to
the server and then holds the rest, until `cut()` resets every connection.

It carries TLS untouched (the client still checks the appliance's certificate for 127.0.0.1),
so a test can stop an upload at a point it chose, with the server holding part of the blob,
whatever the speed of the machine."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from support.appliance import HOST

READ_BYTES = 1 << 16


class HoldingRelay:
    def __init__(self, upstream_port: int, let_through: int) -> None:
        self.upstream_port = upstream_port
        self.budget = let_through  # client-to-server bytes still let through
        self.held = asyncio.Event()  # set once bytes are being held back
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0

    @property
    def url(self) -> str:
        return f"https://{HOST}:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._connection, HOST, 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _connection(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter
                          ) -> None:
        server_r, server_w = await asyncio.open_connection(HOST, self.upstream_port)
        self._writers += [client_w, server_w]
        up = asyncio.create_task(self._pump(client_r, server_w, held=True))
        down = asyncio.create_task(self._pump(server_r, client_w, held=False))
        self._tasks |= {up, down}
        await asyncio.wait({up, down}, return_when=asyncio.FIRST_COMPLETED)

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *,
                    held: bool) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(READ_BYTES):
                if held:
                    data = data[: self.budget]
                    self.budget -= len(data)
                    if self.budget <= 0:
                        self.held.set()
                if data:
                    writer.write(data)
                    await writer.drain()
                if held and self.budget <= 0:
                    await asyncio.Event().wait()  # hold until cut() cancels this
        writer.close()

    async def cut(self) -> None:
        """Reset every connection (the server sees the body end early) and stop listening."""
        for task in self._tasks:
            task.cancel()
        for writer in self._writers:
            writer.transport.abort()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        await asyncio.gather(*self._tasks, return_exceptions=True)


@contextlib.asynccontextmanager
async def holding_relay(upstream_port: int, let_through: int) -> AsyncIterator[HoldingRelay]:
    relay = HoldingRelay(upstream_port, let_through)
    await relay.start()
    try:
        yield relay
    finally:
        await relay.cut()
