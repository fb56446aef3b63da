"""Raw HTTP/1.1 over TLS (asyncio streams), for requests no well-behaved client would send."""

from __future__ import annotations

import asyncio
import json
import ssl
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from support.streams import close_stream


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


async def open_tls(url: str, context: ssl.SSLContext) -> tuple[asyncio.StreamReader,
                                                               asyncio.StreamWriter]:
    parts = urlsplit(url)
    return await asyncio.open_connection(parts.hostname, parts.port, ssl=context,
                                         server_hostname=parts.hostname)


async def read_response(reader: asyncio.StreamReader) -> RawResponse:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, v in
               (line.split(":", 1) for line in lines[1:] if ":" in line)}
    length = int(headers.get("content-length", "0"))
    body = await reader.readexactly(length) if length else b""
    return RawResponse(status, headers, body)


async def raw_request(url: str, context: ssl.SSLContext, data: bytes,
                      timeout: float = 5) -> RawResponse:
    async with asyncio.timeout(timeout):
        reader, writer = await open_tls(url, context)
        try:
            writer.write(data)
            await writer.drain()
            return await read_response(reader)
        finally:
            await close_stream(writer)
