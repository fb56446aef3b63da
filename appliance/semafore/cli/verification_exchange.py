"""The exchange of a ``semafore verify`` run: two throwaway devices enrol and are approved over
TLS with the bundled client, send each other a text, and device 1 sends device 2 a file; then
device 1 deletes the file and the accounts are cleaned up."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from semafore.cli.verification_steps import best_effort_step, failed_step, step
from semafore.client.errors import NotFound
from semafore.client.probe import (
    Probe,
    delete_file,
    enrol_probe,
    receive_file,
    receive_text,
    send_file,
)
from semafore.errors import SemaforeError
from semafore.services.verification import Needle, Throwaway, VerificationAccounts

FILE_LINES = 4000  # about 200 KB: several encrypted chunks


@dataclass
class Exchange:
    """The two devices' exchange through the server at ``server_url``, and what it made.

    ``needles`` is what the run searches for; the phone number of each account is added to it
    before its device enrols. ``workdir`` holds the devices' keystores and the file.
    """

    report: dict[str, Any]
    accounts: VerificationAccounts
    server_url: str
    ca: Path
    workdir: Path
    wait_seconds: float
    needles: list[Needle]
    made: tuple[Throwaway, Throwaway] | None = None
    probes: list[Probe] = field(default_factory=list)
    file_id: str | None = None

    async def run(self, texts: tuple[str, str], file_line: str) -> None:
        """Accounts, devices, a text each way and the file; StepFailed at the first failure."""
        report = self.report
        self.made = await step(report, "create throwaway accounts", self.accounts.prepare())
        for i, account in enumerate(self.made, start=1):
            self.needles.append(
                Needle(f"phone number of account {i}", "phone", account.phone.encode())
            )
            probe = await step(
                report,
                f"enrol and approve device {i} over TLS",
                enrol_probe(
                    f"device {i}",
                    self.workdir / f"device{i}",
                    self.server_url,
                    self.ca,
                    account.phone,
                    _issuer(self.accounts, account),
                    _approver(self.accounts, account),
                ),
            )
            self.probes.append(probe)
        a, b = self.probes
        await step(
            report,
            "device 1 sends a text to device 2",
            a.device.send_text(self.made[1].user_id, texts[0]),
        )
        await step(report, "device 2 decrypts it", receive_text(b, texts[0], self.wait_seconds))
        await step(report, "device 2 replies", b.device.send_text(self.made[0].user_id, texts[1]))
        await step(
            report, "device 1 decrypts the reply", receive_text(a, texts[1], self.wait_seconds)
        )
        content = (file_line + "\n").encode() * FILE_LINES
        source = self.workdir / "verification-file.txt"
        source.write_bytes(content)
        sent = await _send_file(report, a, self.made[1].user_id, source, len(content))
        if sent is not None:
            mid, self.file_id = sent
            await _receive_file(
                report, b, mid, content, self.workdir / "received", self.wait_seconds
            )

    def note_tokens(self) -> None:
        for probe in self.probes:
            probe.note_tokens()

    def token_needles(self) -> list[Needle]:
        """Every token the devices have held so far, to search for."""
        return [
            Needle(f"{probe.name} {label}", "token", value.encode())
            for probe in self.probes
            for label, value in probe.tokens.items()
        ]

    async def delete_file_and_close(self) -> None:
        """The uploader removes its file instead of waiting for expiry; the devices close."""
        if self.file_id is not None:
            await best_effort_step(
                self.report, "device 1 deletes the file", delete_file(self.probes[0], self.file_id)
            )
        for probe in self.probes:
            await probe.close()

    async def clean_up(self) -> None:
        if self.made is not None:
            await best_effort_step(
                self.report,
                "clean up (member removed, devices revoked)",
                self.accounts.clean_up(*self.made),
            )


async def _send_file(
    report: dict[str, Any], a: Probe, to_user: str, source: Path, size: int
) -> tuple[str, str] | None:
    """Device 1 sends `source` to device 2: (message id, file id), or None without a file API."""
    try:
        sent = await send_file(a, to_user, source)
    except NotFound:
        report["steps"].append(
            {
                "step": "file",
                "ok": True,
                "skipped": True,
                "detail": "not exchanged: this server has no file API",
            }
        )
        return None
    except (SemaforeError, OSError) as exc:
        raise failed_step(report, "device 1 sends a file", str(exc)) from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(source)
    report["steps"].append(
        {"step": f"device 1 sends a file ({size} bytes)", "ok": True, "detail": ""}
    )
    return sent


async def _receive_file(
    report: dict[str, Any], b: Probe, mid: str, content: bytes, out: Path, wait_seconds: float
) -> None:
    os.mkdir(out, 0o700)
    try:
        got = await step(
            report, "device 2 downloads and decrypts it", receive_file(b, mid, out, wait_seconds)
        )
    finally:
        shutil.rmtree(out, ignore_errors=True)
    if got != content:
        raise failed_step(report, "the file is byte-identical", "content differs")


def _issuer(accounts: VerificationAccounts, account: Throwaway) -> Callable[[], Awaitable[str]]:
    return lambda: accounts.issue_code(account)


def _approver(
    accounts: VerificationAccounts, account: Throwaway
) -> Callable[[int], Awaitable[None]]:
    return lambda device_id: accounts.approve(account, device_id)
