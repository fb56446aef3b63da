"""The http and smtp OTP providers against real servers on loopback (HTTPS with a test CA; an
SMTP sink with implicit TLS, STARTTLS and plain)."""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiohttp import web

from semafore.config import OtpSettings, settings_from_dict
from semafore.services.otp_providers import (
    HttpProvider,
    OtpDeliveryError,
    SmtpProvider,
    build_provider,
)

PHONE = "+447700900123"
MESSAGE = "Your SemaFore code is 123456. It expires in 10 minutes."


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def ca_file(ca: trustme.CA, tmp_path: Path) -> Path:
    path = tmp_path / "gateway-ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return path


def server_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    return context


# -- HTTPS gateway ----------------------------------------------------------------------------


@dataclass
class Gateway:
    url: str
    received: list[dict[str, Any]] = field(default_factory=list)
    status: int = 200


@pytest.fixture
async def gateway(ca: trustme.CA) -> AsyncIterator[Gateway]:
    state = Gateway(url="")

    async def handle(request: web.Request) -> web.Response:
        state.received.append({
            "method": request.method,
            "path": request.path,
            "query": dict(request.query),
            "headers": dict(request.headers),
            "body": await request.text(),
        })
        if request.path == "/redirect":
            raise web.HTTPFound("/sms")
        return web.Response(status=state.status, text="queued")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server_context(ca))
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    state.url = f"https://127.0.0.1:{port}"
    yield state
    await runner.cleanup()


def http_settings(url: str, **values: Any) -> OtpSettings:
    return settings_from_dict({"otp": {"provider": "http", "http_url": url, **values}}).otp


async def test_http_provider_sends_the_templated_request(gateway: Gateway, ca_file: Path) -> None:
    settings = http_settings(
        gateway.url + "/sms?to={{ number_digits }}&text={{ message|urlencode }}",
        http_headers={"Authorization": "Bearer gw-token", "Content-Type": "application/json"},
        http_body='{"to": {{ number|tojson }}, "text": {{ message|tojson }}}',
    )
    await HttpProvider(settings, ca_file=ca_file).send(PHONE, MESSAGE)
    (request,) = gateway.received
    assert (request["method"], request["path"]) == ("POST", "/sms")
    assert request["query"] == {"to": "447700900123", "text": MESSAGE}
    assert request["headers"]["Authorization"] == "Bearer gw-token"
    assert json.loads(request["body"]) == {"to": PHONE, "text": MESSAGE}


async def test_http_provider_verifies_tls(gateway: Gateway) -> None:
    provider = HttpProvider(http_settings(gateway.url + "/sms"))  # system store only
    with pytest.raises(OtpDeliveryError) as caught:
        await provider.send(PHONE, MESSAGE)
    assert gateway.received == []
    assert PHONE not in caught.value.message and "123456" not in caught.value.message


async def test_http_provider_reports_gateway_errors(gateway: Gateway, ca_file: Path) -> None:
    gateway.status = 500
    with pytest.raises(OtpDeliveryError) as caught:
        await HttpProvider(http_settings(gateway.url + "/sms"), ca_file=ca_file).send(
            PHONE, MESSAGE
        )
    assert caught.value.message == "OTP gateway answered HTTP 500"


async def test_http_provider_does_not_follow_redirects(gateway: Gateway, ca_file: Path) -> None:
    provider = HttpProvider(http_settings(gateway.url + "/redirect"), ca_file=ca_file)
    with pytest.raises(OtpDeliveryError):
        await provider.send(PHONE, MESSAGE)
    assert [r["path"] for r in gateway.received] == ["/redirect"]


async def test_http_templates_are_sandboxed(gateway: Gateway, ca_file: Path) -> None:
    settings = http_settings(
        gateway.url + "/sms", http_body="{{ ''.__class__.__mro__[1].__subclasses__() }}"
    )
    with pytest.raises(OtpDeliveryError):
        await HttpProvider(settings, ca_file=ca_file).send(PHONE, MESSAGE)
    assert gateway.received == []


def test_http_provider_needs_an_https_url() -> None:
    from semafore.config import ConfigError

    with pytest.raises(ConfigError, match=r"otp\.http_url"):
        http_settings("http://gateway.example/sms")


def test_build_provider_resolves_paths(tmp_path: Path) -> None:
    settings = settings_from_dict({
        "storage": {"data_dir": str(tmp_path)},
        "otp": {"provider": "file", "file_spool_dir": "spool"},
    })
    provider = build_provider(settings.otp, settings.resolve)
    assert provider.spool_dir == tmp_path / "spool"  # type: ignore[attr-defined]


# -- SMTP relay -------------------------------------------------------------------------------


@dataclass
class SmtpSink:
    port: int
    mails: list[dict[str, Any]] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)


async def _smtp_session(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, sink: SmtpSink,
    starttls: ssl.SSLContext | None,
) -> None:
    async def say(line: str) -> None:
        writer.write(line.encode() + b"\r\n")
        await writer.drain()

    mail: dict[str, Any] = {"rcpt": []}
    await say("220 sink ESMTP")
    while line := await reader.readline():
        command = line.decode().strip()
        verb = command.split(" ", 1)[0].upper()
        if verb in ("EHLO", "HELO"):
            extensions = ["250-sink", "250-AUTH PLAIN"]
            if starttls is not None:
                extensions.append("250-STARTTLS")
            for ext in extensions:
                await say(ext)
            await say("250 OK")
        elif verb == "STARTTLS" and starttls is not None:
            await say("220 go ahead")
            await writer.start_tls(starttls)
            starttls = None
        elif verb == "AUTH":
            sink.logins.append(command)
            await say("235 ok")
        elif verb == "MAIL":
            mail["from"] = command
            await say("250 ok")
        elif verb == "RCPT":
            mail["rcpt"].append(command)
            await say("250 ok")
        elif verb == "DATA":
            await say("354 end with .")
            data = b""
            while not data.endswith(b"\r\n.\r\n"):
                data += await reader.readline()
            mail["data"] = data.decode()
            sink.mails.append(mail)
            mail = {"rcpt": []}
            await say("250 queued")
        elif verb == "QUIT":
            await say("221 bye")
            break
        else:
            await say("250 ok")
    writer.close()


@pytest.fixture(params=["tls", "starttls", "none"])
async def smtp(
    request: pytest.FixtureRequest, ca: trustme.CA
) -> AsyncIterator[tuple[str, SmtpSink]]:
    mode = request.param
    context = server_context(ca)
    sink = SmtpSink(port=0)
    server = await asyncio.start_server(
        lambda r, w: _smtp_session(r, w, sink, context if mode == "starttls" else None),
        "127.0.0.1", 0, ssl=context if mode == "tls" else None,
    )
    sink.port = server.sockets[0].getsockname()[1]
    yield mode, sink
    server.close()
    await server.wait_closed()


async def test_smtp_provider_sends_one_mail(
    smtp: tuple[str, SmtpSink], ca_file: Path, tmp_path: Path
) -> None:
    mode, sink = smtp
    password = tmp_path / "smtp.password"
    password.write_text("s3cret\n")
    settings = settings_from_dict({"otp": {
        "provider": "smtp", "smtp_host": "127.0.0.1", "smtp_port": sink.port,
        "smtp_security": mode, "smtp_from": "semafore@example.org",
        "smtp_to": "{{ number_digits }}@sms.example.net", "smtp_username": "appliance",
    }}).otp
    await SmtpProvider(settings, ca_file=ca_file, password_file=password).send(PHONE, MESSAGE)
    (mail,) = sink.mails
    assert [r.upper() for r in mail["rcpt"]] == ["RCPT TO:<447700900123@SMS.EXAMPLE.NET>"]
    assert "semafore@example.org" in mail["from"]
    assert MESSAGE in mail["data"]
    assert len(sink.logins) == 1


async def test_smtp_provider_verifies_tls(smtp: tuple[str, SmtpSink]) -> None:
    mode, sink = smtp
    settings = settings_from_dict({"otp": {
        "provider": "smtp", "smtp_host": "127.0.0.1", "smtp_port": sink.port,
        "smtp_security": mode, "smtp_from": "a@example.org", "smtp_to": "{{ number }}@x",
    }}).otp
    if mode == "none":  # a relay on the same host, no TLS at all: nothing to verify
        await SmtpProvider(settings).send(PHONE, MESSAGE)
        assert len(sink.mails) == 1
        return
    with pytest.raises(OtpDeliveryError):
        await SmtpProvider(settings).send(PHONE, MESSAGE)  # system store: the test CA is unknown
    assert sink.mails == []
