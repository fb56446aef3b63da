"""Request bodies read whole (JSON, portal forms) have an idle timeout: a body that stops
arriving is answered 408 ``body_timeout`` and its connection is closed, while a slow but steady
body still gets through. Raw requests over real TLS, against the real app."""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from robustness.rawhttp import RawResponse, open_tls, read_response
from semafore.web.appkeys import SERVICES
from semafore.web.portal.security import SIGN_IN_COOKIE, csrf_token
from support.appliance import Appliance, RunningServer, client_session
from support.relay_client import RELAY_TEST_CONFIG, RelayDevice, send_body, setup_world
from support.streams import close_stream

TIMEOUT = 1.0  # server.body_idle_timeout_seconds in these tests


@dataclass
class Env:
    server: RunningServer
    context: ssl.SSLContext
    alice: RelayDevice
    bob: RelayDevice

    def head(self, path: str, length: int, *, content_type: str = "application/json",
             extra: str = "") -> bytes:
        host = self.server.url.removeprefix("https://")
        return (
            f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {length}\r\n{extra}\r\n"
        ).encode()

    def send_request(self) -> tuple[bytes, bytes]:
        """The head and body of a valid ``POST /v1/messages`` from alice to bob."""
        body = json.dumps(send_body(self.alice.address, [self.bob.address])).encode()
        auth = f"Authorization: Bearer {self.alice.creds.access_token}\r\n"
        return self.head("/v1/messages", len(body), extra=auth), body


@pytest.fixture
async def env(
    appliance: Appliance, start_server: object, ca_ssl_context: ssl.SSLContext
) -> AsyncIterator[Env]:
    appliance.configure(server={"body_idle_timeout_seconds": TIMEOUT}, **RELAY_TEST_CONFIG)
    server = await start_server()  # type: ignore[operator]
    world = await setup_world(server.app[SERVICES], [1, 1])
    alice_id, bob_id = list(world.members)
    alice = RelayDevice(server.url, ca_ssl_context, world.devices(alice_id)[0])
    bob = RelayDevice(server.url, ca_ssl_context, world.devices(bob_id)[0])
    try:
        yield Env(server, ca_ssl_context, alice, bob)
    finally:
        await alice.close()
        await bob.close()


async def stall(env: Env, data: bytes) -> tuple[RawResponse, bytes, float]:
    """Send ``data`` (a head and part of its body), then nothing. While the request waits, a
    probe on another connection must be answered; then the answer to the stalled request and
    whatever follows it until the server closes the connection (with how long that took)."""
    loop = asyncio.get_running_loop()
    reader, writer = await open_tls(env.server.url, env.context)
    try:
        writer.write(data)
        await writer.drain()
        started = loop.time()
        async with client_session(env.server.url, env.context) as http, \
                http.get("/healthz") as probe:
            assert probe.status == 200
        assert loop.time() - started < TIMEOUT, "the probe was not answered meanwhile"
        async with asyncio.timeout(TIMEOUT * 6):
            response = await read_response(reader)
            after = await reader.read()  # b"" once the server has closed the connection
        return response, after, loop.time() - started
    finally:
        await close_stream(writer)


def assert_body_timeout(response: RawResponse, after: bytes, elapsed: float) -> None:
    assert response.status == 408, response.body
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert (problem["status"], problem["code"]) == (408, "body_timeout")
    assert response.headers["connection"] == "close"
    assert after == b""
    assert TIMEOUT <= elapsed < TIMEOUT * 4


async def test_a_stalled_json_body_is_cut_off_and_nothing_is_stored(env: Env) -> None:
    head, body = env.send_request()
    assert_body_timeout(*await stall(env, head + body[: len(body) // 2]))
    status, queued = await env.bob.fetch()
    assert status == 200 and queued["messages"] == []
    # The server is fine afterwards: the same request sent whole is accepted.
    assert (await env.alice.send([env.bob.address]))[0] == 200


async def test_a_body_that_never_starts_is_cut_off(env: Env) -> None:
    assert_body_timeout(*await stall(env, env.head("/v1/enrolment/code", 1000)))


async def test_a_stalled_portal_form_is_cut_off(env: Env) -> None:
    secret = "s" * 43
    form = f"phone=%2B447700900100&csrf_token={csrf_token(secret)}".encode()
    head = env.head(
        "/portal/sign-in", len(form), content_type="application/x-www-form-urlencoded",
        extra=f"Origin: {env.server.url}\r\nCookie: {SIGN_IN_COOKIE}={secret}\r\n",
    )
    assert_body_timeout(*await stall(env, head + form[:10]))


async def test_a_slow_but_steady_body_gets_through(env: Env) -> None:
    """Pauses shorter than the timeout, a whole transfer much longer: it is an idle timeout."""
    loop = asyncio.get_running_loop()
    head, body = env.send_request()
    pieces = 6
    step = -(-len(body) // pieces)
    reader, writer = await open_tls(env.server.url, env.context)
    try:
        started = loop.time()
        writer.write(head)
        for offset in range(0, len(body), step):
            await asyncio.sleep(TIMEOUT * 0.4)
            writer.write(body[offset:offset + step])
            await writer.drain()
        assert loop.time() - started > TIMEOUT * 2
        async with asyncio.timeout(TIMEOUT * 6):
            response = await read_response(reader)
    finally:
        await close_stream(writer)
    assert response.status == 200, response.body
    status, queued = await env.bob.fetch()
    assert status == 200 and len(queued["messages"]) == 1
