"""An initialised appliance directory, and ways to run it over TLS.

- :class:`Appliance`: a data directory made by ``semafore init`` (config inside it).
- :class:`RunningServer`: the app from ``create_app`` served in-process (AppRunner + TCPSite with
  the production TLS context and runner settings) on a free loopback port.
- :class:`ServeProcess`: a real ``semafore serve`` subprocess (black-box tests).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from semafore.app import create_app
from semafore.config import Settings, load_settings
from semafore.services import Clock
from semafore.web.server import make_runner, start_tls_site
from semafore.web.tls import server_ssl_context
from support import toml

HOST = "127.0.0.1"


@dataclass
class Appliance:
    """A data directory created by ``semafore init`` (``semafore.toml`` inside, data_dir ".")."""

    data_dir: Path

    @property
    def config_path(self) -> Path:
        return self.data_dir / "semafore.toml"

    @property
    def ca_path(self) -> Path:
        return self.data_dir / "tls" / "ca.crt"

    def settings(self) -> Settings:
        return load_settings(self.config_path)

    def config(self) -> dict[str, dict[str, Any]]:
        return tomllib.loads(self.config_path.read_text())

    def configure(self, **sections: dict[str, Any]) -> Settings:
        """Merge ``section={key: value}`` into the config file; return the new settings.

        ``appliance.configure(server={"max_request_bytes": 4096}, metrics={"token_file": "t"})``
        """
        data = self.config()
        for section, values in sections.items():
            data.setdefault(section, {}).update(values)
        self.config_path.write_text(toml.dumps(data))
        return self.settings()

    def copy_to(self, target: Path) -> Appliance:
        """A private copy: same CA and certificates, its own database and blobs."""
        shutil.copytree(self.data_dir, target, symlinks=True)
        return Appliance(target)


def init_appliance(data_dir: Path, *extra_args: str) -> Appliance:
    """Run ``semafore init`` (in-process, the real command) into ``data_dir``."""
    from semafore.cli.main import main

    with contextlib.redirect_stdout(None):
        code = main(["init", "--data-dir", str(data_dir), *extra_args])
    if code != 0:
        raise RuntimeError(f"semafore init failed with exit code {code}")
    return Appliance(data_dir)


def client_ssl_context(ca_path: Path) -> ssl.SSLContext:
    """A client context that trusts only the appliance CA (hostname checking on)."""
    # With cafile given, the system trust store is not loaded: only our CA is trusted.
    return ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca_path))


def client_session(
    base_url: str,
    context: ssl.SSLContext,
    *,
    cookie_jar: aiohttp.abc.AbstractCookieJar | None = None,
) -> aiohttp.ClientSession:
    """A ClientSession for ``base_url`` (paths like "/healthz" are relative to it)."""
    return aiohttp.ClientSession(
        base_url=base_url, connector=aiohttp.TCPConnector(ssl=context), cookie_jar=cookie_jar
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@dataclass
class RunningServer:
    """An app built by ``create_app`` and served over TLS in this process."""

    app: web.Application
    runner: web.AppRunner
    settings: Settings
    port: int

    @property
    def url(self) -> str:
        return f"https://{HOST}:{self.port}"

    @classmethod
    async def start(
        cls,
        settings: Settings,
        *,
        clock: Clock | None = None,
        configure: Callable[[web.Application], None] | None = None,
    ) -> RunningServer:
        app = create_app(settings, clock=clock)
        if configure is not None:
            configure(app)  # e.g. add test-only routes before the router freezes
        runner = make_runner(app, settings)
        await runner.setup()
        try:
            port = await start_tls_site(runner, server_ssl_context(settings), HOST, 0)
        except BaseException:
            await runner.cleanup()
            raise
        return cls(app, runner, settings, port)

    async def stop(self) -> None:
        await self.runner.cleanup()


@dataclass
class ServeProcess:
    """``semafore serve`` in a subprocess, on a free port; stderr goes to ``log_path``."""

    appliance: Appliance
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    _log: Any = field(repr=False, default=None)

    @property
    def url(self) -> str:
        return f"https://{HOST}:{self.port}"

    @classmethod
    def start(
        cls, appliance: Appliance, *, command: Sequence[str] | None = None, timeout: float = 15
    ) -> ServeProcess:
        """Start and wait until /healthz answers. ``command`` replaces ``semafore serve``."""
        port = free_port()
        appliance.configure(server={"port": port, "host": HOST})
        log_path = appliance.data_dir.parent / f"serve-{port}.log"
        log = log_path.open("wb")
        argv = [*(command or semafore_command("serve")), "--config", str(appliance.config_path)]
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        served = cls(appliance, port, process, log_path, log)
        try:
            served._wait_until_up(timeout)
        except BaseException:
            served.kill()
            raise
        return served

    def _wait_until_up(self, timeout: float) -> None:
        context = client_ssl_context(self.appliance.ca_path)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"semafore serve exited early:\n{self.log_text()}")
            try:
                with (
                    socket.create_connection((HOST, self.port), timeout=1) as raw,
                    context.wrap_socket(raw, server_hostname=HOST),
                ):
                    return
            except OSError:
                time.sleep(0.05)
        raise TimeoutError(f"semafore serve did not come up:\n{self.log_text()}")

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def terminate(self, timeout: float = 20) -> int:
        """SIGTERM and wait; return the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        finally:
            self._close_log()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self._close_log()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None


def semafore_command(*args: str) -> list[str]:
    """The installed ``semafore`` entry point (next to this interpreter) with ``args``."""
    script = Path(sys.executable).parent / "semafore"
    if script.exists():
        return [str(script), *args]
    return [sys.executable, "-m", "semafore.cli.main", *args]


def run_semafore(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run the ``semafore`` command as a subprocess and capture its output."""
    return subprocess.run(
        semafore_command(*args), capture_output=True, text=True, timeout=timeout,
        env={**os.environ, "SEMAFORE_CONFIG": ""},
    )


async def wait_for(predicate: Callable[[], bool], timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(0.01)
