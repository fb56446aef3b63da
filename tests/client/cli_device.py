"""`semafore-client` processes for end-to-end tests: one state directory per device, driven
through the real CLI against a running appliance over TLS."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from semafore.storage.otp_spool import read_spool

PASSPHRASE = "correct horse battery staple"


@dataclass
class CliResult:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.out.splitlines() if line.strip()]


class CliDevice:
    def __init__(self, home: Path, server: str, ca: Path) -> None:
        self.home = home
        self.server = server
        self.ca = ca
        self.user_id: str | None = None
        self.device_id: int | None = None

    def argv(self, *args: str) -> list[str]:
        return [
            sys.executable,
            "-m",
            "semafore.client.cli",
            "--home",
            str(self.home),
            "--server",
            self.server,
            "--ca",
            str(self.ca),
            *args,
        ]

    def env(self) -> dict[str, str]:
        return {**os.environ, "SEMAFORE_CLIENT_PASSPHRASE": PASSPHRASE}

    async def run(
        self,
        *args: str,
        stdin: str | None = None,
        timeout: float = 60,
        env: dict[str, str] | None = None,
    ) -> CliResult:
        proc = await asyncio.create_subprocess_exec(
            *self.argv(*args),
            env={**self.env(), **(env or {})},
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(
            proc.communicate(stdin.encode() if stdin is not None else None), timeout
        )
        assert proc.returncode is not None
        return CliResult(proc.returncode, out.decode(), err.decode())

    async def ok(self, *args: str, **kwargs: Any) -> CliResult:
        result = await self.run(*args, **kwargs)
        assert result.code == 0, f"{args}: exit {result.code}\n{result.err}"
        return result

    async def start(self, *args: str) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            *self.argv(*args),
            env=self.env(),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )


async def last_code(services: Any, spool_dir: Path, phone: str) -> str:
    await services.otp.wait_for_deliveries()
    messages = [m for m in read_spool(spool_dir) if m["to"] == phone]
    assert messages, f"no code was sent to {phone}"
    return messages[-1]["message"].split("code is ")[1][:6]


async def enrol(
    device: CliDevice, services: Any, spool_dir: Path, org_id: str, phone: str
) -> CliDevice:
    """Enrol through the CLI (request code, verify, register), then approve as an admin."""
    await device.ok("enrol", phone, "--request-code-only")
    code = await last_code(services, spool_dir, phone)
    pending = (await device.ok("--json", "enrol", phone, "--code", code, "--no-wait")).json()
    assert pending["status"] == "pending"
    device.user_id, device.device_id = pending["user_id"], pending["device_id"]
    await services.devices.approve(org_id, device.user_id, device.device_id, actor="operator")
    status = (await device.ok("--json", "status")).json()
    assert status["status"] == "approved"
    return device
