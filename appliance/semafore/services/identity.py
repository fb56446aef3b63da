"""Builds the identity services (organisations, members, OTP, enrolment, devices, sessions)
from settings, and runs their housekeeping. Used by the app's start-up and by the CLI."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

from semafore.config import Settings
from semafore.services.clock import Clock
from semafore.services.devices import DeviceService
from semafore.services.enrolment import EnrolmentService
from semafore.services.jwt_keys import JwtKeyring
from semafore.services.members import MemberService
from semafore.services.orgs import OrgService
from semafore.services.otp import OtpService
from semafore.services.otp_providers import OtpProvider, build_provider
from semafore.services.otp_providers.console import WARNING as CONSOLE_WARNING
from semafore.services.phone import PhoneVault
from semafore.services.sessions import SessionService
from semafore.storage import Database
from semafore.storage.server_keys import ServerKeyStore

log = logging.getLogger("semafore.identity")

HOUSEKEEPING_SECONDS = 300.0


@dataclass(slots=True)
class IdentityServices:
    keys: ServerKeyStore
    phones: PhoneVault
    otp: OtpService
    devices: DeviceService
    members: MemberService
    orgs: OrgService
    sessions: SessionService
    enrolment: EnrolmentService

    async def purge_expired(self) -> None:
        await self.otp.purge_expired()
        await self.enrolment.purge_expired()
        await self.sessions.purge_expired()
        # Revocation records matter while an access token they concern could still be used.
        await self.devices.purge_expired(2 * 86_400)

    @contextlib.asynccontextmanager
    async def background(self) -> AsyncIterator[None]:
        """Revocation sync (other processes' revocations, every second) and housekeeping."""
        if self.otp.provider.name == "console":
            log.warning("%s", CONSOLE_WARNING)
        await self.devices.start_revocation_sync()
        tasks = [
            asyncio.create_task(self.devices.run_revocation_sync(), name="revocation-sync"),
            asyncio.create_task(self._housekeeping(), name="identity-housekeeping"),
        ]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await self.otp.wait_for_deliveries()

    async def _housekeeping(self) -> None:
        while True:
            await asyncio.sleep(HOUSEKEEPING_SECONDS)
            try:
                await self.purge_expired()
            except Exception:
                log.exception("identity housekeeping failed")


def keys_dir(settings: Settings) -> ServerKeyStore:
    return ServerKeyStore(settings.storage.data_dir / "keys")


def build_identity_services(
    settings: Settings,
    clock: Clock,
    database: Database,
    *,
    provider: OtpProvider | None = None,
) -> IdentityServices:
    """Wire the identity services; creates missing appliance keys (first start)."""
    keys = keys_dir(settings)
    keys.prepare(int(clock.now()))
    phones = PhoneVault(keys.secret("phone-seal"), keys.secret("phone-lookup"))
    token_key = keys.secret("token")
    otp = OtpService(
        database, clock, settings.otp, phones, keys.secret("otp"),
        provider or build_provider(settings.otp, settings.resolve),
    )
    devices = DeviceService(database, clock)
    members = MemberService(database, clock, phones, devices)
    orgs = OrgService(database, clock, settings.orgs, phones, members, otp)
    keyring = JwtKeyring(keys, clock, overlap_seconds=settings.auth.jwt_key_overlap_seconds)
    sessions = SessionService(database, clock, settings.auth, keyring, token_key, devices)
    enrolment = EnrolmentService(
        database, clock, settings.auth, phones, token_key, otp, sessions
    )
    return IdentityServices(keys, phones, otp, devices, members, orgs, sessions, enrolment)
