"""Drive the admin portal in real headless Chromium (Debian's package) with Playwright.

How the browser trusts the appliance: each run gets a fresh user-data-dir and a fresh HOME,
with an NSS database (``$HOME/.pki/nssdb``, made with ``certutil``) that trusts exactly the
appliance's CA. Chromium then verifies the server certificate normally, host name included; no
certificate error is ignored anywhere.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pyotp
from playwright.async_api import BrowserContext, Page, Playwright

from semafore.services import ManualClock, Services
from semafore.services import totp as totp_codes
from semafore.storage.otp_spool import read_spool
from semafore.web.appkeys import SERVICES
from support.appliance import RunningServer
from support.identity import EnrollingDevice

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
VIEWPORT = {"width": 1280, "height": 820}


def trust_ca(home: Path, ca_path: Path) -> None:
    """A new NSS database under ``home`` that trusts the appliance CA for TLS servers."""
    nssdb = home / ".pki" / "nssdb"
    nssdb.mkdir(parents=True)
    db = f"sql:{nssdb}"
    subprocess.run(["certutil", "-d", db, "-N", "--empty-password"], check=True)
    subprocess.run(["certutil", "-d", db, "-A", "-t", "C,,", "-n", "SemaFore appliance CA",
                    "-i", str(ca_path)], check=True)


async def launch(playwright: Playwright, workdir: Path, ca_path: Path, *,
                 javascript: bool = True) -> BrowserContext:
    home = workdir / "home"
    trust_ca(home, ca_path)
    return await playwright.chromium.launch_persistent_context(
        str(workdir / "user-data"),
        executable_path=str(CHROMIUM),
        args=CHROMIUM_ARGS,
        headless=True,
        env={**os.environ, "HOME": str(home)},
        viewport=VIEWPORT,  # type: ignore[arg-type]
        java_script_enabled=javascript,
        accept_downloads=True,
        locale="en-GB",
        timezone_id="UTC",
    )


@dataclass
class Portal:
    """One browser page on a running appliance, plus the test's back doors (spool, clock)."""

    running: RunningServer
    clock: ManualClock
    page: Page
    http: aiohttp.ClientSession  # CA-pinned, for the device side (the real enrolment API)
    dialogs: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    totp_secret: str | None = None

    def __post_init__(self) -> None:
        async def on_dialog(dialog: Any) -> None:
            self.dialogs.append(dialog.message)
            await dialog.dismiss()

        self.page.on("dialog", on_dialog)
        self.page.on("console", lambda m: self.console_errors.append(m.text)
                     if m.type == "error" else None)

    @property
    def services(self) -> Services:
        return self.running.app[SERVICES]

    def url(self, path: str) -> str:
        return self.running.url + path

    async def goto(self, path: str) -> None:
        response = await self.page.goto(self.url(path))
        assert response is not None

    async def shot(self, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        await self.page.screenshot(path=str(path), full_page=True)
        return path

    async def nav(self, label: str) -> None:
        """Follow a link in the sidebar."""
        sections = self.page.get_by_role("navigation", name="Sections")
        await sections.get_by_role("link", name=label, exact=True).click()

    async def heading(self) -> str:
        return (await self.page.locator("h1").first.inner_text()).strip()

    async def notice(self) -> str:
        return (await self.page.locator(".notice").inner_text()).strip()

    # -- codes ----------------------------------------------------------------------------------

    async def last_message(self, phone: str) -> str:
        await self.services.otp.wait_for_deliveries()
        spool = self.running.settings.resolve(self.running.settings.otp.file_spool_dir)
        messages = [m["message"] for m in read_spool(spool) if m["to"] == phone]
        assert messages, f"nothing was sent to {phone}"
        return str(messages[-1])

    async def last_code(self, phone: str) -> str:
        return (await self.last_message(phone)).split("code is ")[1][:6]

    def totp(self) -> str:
        """The authenticator's current code (pyotp, like a phone app), one step on from the
        last one so that no code is ever reused."""
        assert self.totp_secret is not None
        self.clock.advance(totp_codes.STEP_SECONDS)
        return pyotp.TOTP(self.totp_secret).at(int(self.clock.now()))

    # -- flows ----------------------------------------------------------------------------------

    async def sign_in(self, phone: str, *, shots: bool = False) -> list[str]:
        """Sign in through the pages; enrols the authenticator the first time. Returns the
        recovery codes shown (empty on later sign-ins)."""
        page = self.page
        await self.goto("/portal/")
        assert await self.heading() == "Sign in to your organisation"
        if shots:
            await self.shot("01-sign-in")
        await page.get_by_label("Phone number").fill(phone)
        await page.get_by_role("button", name="Send code").click()
        assert await self.heading() == "Check your phone"
        if shots:
            await self.shot("02-sign-in-code")
        await page.get_by_label("Code from the text message").fill(await self.last_code(phone))
        await page.get_by_role("button", name="Continue").click()
        if await self.heading() == "Set up your authenticator app":
            if shots:
                await self.shot("03-enrol-authenticator")
            secret = await page.locator("#totp-secret").get_attribute("data-secret")
            assert secret
            self.totp_secret = secret
            await page.get_by_label("Code from your authenticator app").fill(self.totp())
            await page.get_by_role("button", name="Finish set-up").click()
            assert await self.heading() == "Save your recovery codes"
            if shots:
                await self.shot("04-recovery-codes")
            shown = await page.locator(".recovery-codes code").all_inner_texts()
            codes = [c.strip() for c in shown]
            await page.get_by_role("link", name="I've saved them — continue").click()
            return codes
        await page.get_by_label("Authenticator code").fill(self.totp())
        await page.get_by_role("button", name="Sign in").click()
        return []

    async def enrol_device(self, phone: str, device_name: str | None = None) -> dict[str, Any]:
        """A member's device enrols through the real API over HTTPS: code, proof, keys (and
        the name it gives itself, if any)."""
        async with self.http.post("/v1/enrolment/code", json={"phone": phone}) as response:
            assert response.status == 202
        code = await self.last_code(phone)
        async with self.http.post("/v1/enrolment/verify",
                                  json={"phone": phone, "code": code}) as response:
            assert response.status == 200
            ticket = await response.json()
        keys = EnrollingDevice()
        body = keys.registration(ticket["user_id"], ticket["device_id"])
        if device_name is not None:
            body["device_name"] = device_name
        async with self.http.post("/v1/enrolment/register", json=body,
                                  headers={"Authorization": f"Bearer {ticket['ticket']}"}) as r:
            assert r.status == 201
            registered = await r.json()
        return {"user_id": ticket["user_id"], "device_id": ticket["device_id"],
                "secret": registered["enrolment_secret"], "keys": keys}

    async def device_call(self, bearer: str, path: str = "/v1/me") -> int:
        async with self.http.get(path, headers={"Authorization": f"Bearer {bearer}"}) as r:
            return r.status

    async def device_tokens(self, secret: str) -> dict[str, Any]:
        async with self.http.post("/v1/enrolment/status", json={},
                                  headers={"Authorization": f"Bearer {secret}"}) as response:
            assert response.status == 200
            body: dict[str, Any] = await response.json()
        return body

    def keep_alive(self, seconds: float, step: float = 240) -> Any:
        """Move the clock by ``seconds`` while the session stays in use (it ends after 15
        idle minutes): reload the page every ``step`` seconds."""

        async def run() -> None:
            left = seconds
            while left > 0:
                self.clock.advance(min(step, left))
                left -= step
                await self.page.reload()

        return run()


def copy_to_docs(names: list[str]) -> None:
    """With SEMAFORE_DOC_SCREENSHOTS=1, refresh the guide's pictures from this run."""
    if os.environ.get("SEMAFORE_DOC_SCREENSHOTS") != "1":
        return
    target = ROOT / "docs" / "images" / "portal"
    target.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copyfile(SCREENSHOTS / f"{name}.png", target / f"{name}.png")


def wall_clock() -> ManualClock:
    """A hand-moved clock that starts now, so pages show believable dates."""
    return ManualClock(float(int(time.time())))
