"""Abusive HTTP against a real ``semafore serve``: oversized bodies (declared, chunked, or
declared and never sent) are 413, oversized or broken requests are 400 problem documents, and
slow clients holding connections never stop the server serving others."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import aiohttp

from robustness.conftest import Served
from robustness.rawhttp import open_tls, raw_request
from support.relay_client import RelayDevice, send_body
from support.streams import close_stream

BIG = 100_000  # over both limits of the served appliance (64 KiB)


async def chunks(total: int) -> AsyncIterator[bytes]:
    for _ in range(total // 10_000):
        yield b" " * 10_000


def devices(served: Served, context: ssl.SSLContext) -> tuple[RelayDevice, RelayDevice]:
    alice, bob, _ = (served.world.devices(u)[0] for u in served.world.members)
    return RelayDevice(served.url, context, alice), RelayDevice(served.url, context, bob)


async def test_oversized_bodies_are_413_and_store_nothing(
    served: Served, ca_ssl_context: ssl.SSLContext
) -> None:
    alice, bob = devices(served, ca_ssl_context)
    token = alice.creds.access_token
    try:
        big = send_body(alice.address, [bob.address], ct=b"x" * BIG)
        for path, body in (("/v1/messages", big), ("/v1/enrolment/code", {"phone": "x" * BIG})):
            status, problem = await alice.request("POST", path, body)
            assert (status, problem["code"]) == (413, "payload_too_large"), path
            async with alice.session.post(served.url + path, data=chunks(BIG),
                                          headers={"Content-Type": "application/json"}) as r:
                assert r.status == 413 and (await r.json())["code"] == "payload_too_large"
            started = time.monotonic()
            response = await raw_request(served.url, ca_ssl_context, (
                f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
                "Content-Type: application/json\r\nContent-Length: 10000000000\r\n\r\n"
            ).encode(), timeout=15)  # and never sends it
            assert response.status == 413 and response.json()["code"] == "payload_too_large"
            assert time.monotonic() - started < 4, "waited for a body it would refuse"
        status, queued = await bob.fetch()
        assert status == 200 and queued["messages"] == []
    finally:
        await alice.close()
        await bob.close()


BROKEN = {
    "header line too long": b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 10_000
    + b"\r\n\r\n",
    "token too long": b"GET /v1/me HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + b"a" * 9000
    + b"\r\n\r\n",
    "too many headers": b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
    + b"".join(b"X-%d: a\r\n" % i for i in range(200)) + b"\r\n",
    "request line too long": b"GET /healthz?" + b"a" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    "not http": b"\x00\x01aaaa\r\n\r\n",
    "bad chunk size": b"POST /v1/enrolment/code HTTP/1.1\r\nHost: x\r\nContent-Type: "
    b"application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\naaaa\r\n",
}


async def test_oversized_and_broken_requests_get_problem_documents(
    served: Served, ca_ssl_context: ssl.SSLContext
) -> None:
    for name, data in BROKEN.items():
        response = await raw_request(served.url, ca_ssl_context, data)
        assert response.status == 400, name
        assert response.headers["content-type"] == "application/problem+json", name
        assert response.json()["code"] == "bad_request", name
        assert response.headers["server"] == "SemaFore", name  # no version banner
        assert response.headers["x-content-type-options"] == "nosniff", name
        assert b"aaaa" not in response.body, name  # the input is not echoed
    assert "unhandled" not in served.process.log_text()


async def hold(kind: str, served: Served, context: ssl.SSLContext, until: float) -> None:
    """One slow client of ``kind``, trickling a byte every 0.3 s until ``until``."""
    if kind == "tcp-no-tls":
        parts = urlsplit(served.url)
        _, writer = await asyncio.open_connection(parts.hostname, parts.port)
        data = b""
    else:
        _, writer = await open_tls(served.url, context)
        data = {
            "idle-tls": b"",
            "slow-headers": b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 1000,
            "slow-body": b"POST /v1/enrolment/code HTTP/1.1\r\nHost: x\r\nContent-Type: "
            b"application/json\r\nContent-Length: 1000\r\n\r\n" + b" " * 1000,
        }[kind]
    try:
        with contextlib.suppress(ConnectionError):
            for byte in data:
                if time.monotonic() > until:
                    break
                writer.write(bytes([byte]))
                await writer.drain()
                await asyncio.sleep(0.3)
            await asyncio.sleep(max(0.0, until - time.monotonic()))
    finally:
        await close_stream(writer)


async def test_slow_clients_holding_connections_do_not_stop_others(
    served: Served, ca_ssl_context: ssl.SSLContext
) -> None:
    alice, bob = devices(served, ca_ssl_context)
    until = time.monotonic() + 10  # held longer than the bound below
    slow = [asyncio.create_task(hold(kind, served, ca_ssl_context, until))
            for kind in ("tcp-no-tls", "idle-tls", "slow-headers", "slow-body")
            for _ in range(25)]
    latencies: list[float] = []
    try:
        await asyncio.sleep(0.5)  # all of them connected and trickling
        async with asyncio.timeout(30):
            while time.monotonic() < until - 0.5:
                started = time.monotonic()
                assert (await alice.send([bob.address]))[0] == 200
                async with alice.session.get(served.url + "/healthz") as response:
                    assert response.status == 200
                latencies.append(time.monotonic() - started)
        assert len(latencies) >= 5 and max(latencies) < 4, latencies
        assert not any(task.done() and task.exception() for task in slow)
    finally:
        for task in slow:
            task.cancel()
        await asyncio.gather(*slow, return_exceptions=True)
        await alice.close()
        await bob.close()
    assert served.process.process.poll() is None
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ca_ssl_context)) as s, \
            s.get(served.url + "/healthz") as response:
        assert response.status == 200
