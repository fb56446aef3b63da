"""Admin services (audit log, admin sign-in, API tokens) on top of the identity test env, and
a helper that signs an admin in end to end (phone code from the file spool, then TOTP)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from semafore.services import ManualClock
from semafore.services import totp as totp_codes
from semafore.services.admin import AdminServices, build_admin_services
from semafore.services.admin_auth import AdminSession, SignInChallenge
from support.identity import IdentityEnv, identity_env

ADMIN_PHONE = "+447700900001"
ADDRESS = "192.0.2.10"


@dataclass
class AdminEnv:
    identity: IdentityEnv
    admin: AdminServices
    totp_secrets: dict[str, str]  # admin phone -> TOTP secret (what the authenticator app holds)

    @property
    def clock(self) -> ManualClock:
        return self.identity.clock

    @property
    def database(self) -> Any:
        return self.identity.database

    def totp_code(self, phone: str = ADMIN_PHONE, *, offset_steps: int = 0) -> str:
        secret = self.totp_secrets[phone]
        step = totp_codes.step_at(self.clock.now()) + offset_steps
        return totp_codes.code_at_step(secret, step)

    async def phone_step(self, phone: str = ADMIN_PHONE, address: str = ADDRESS
                         ) -> SignInChallenge:
        auth = self.admin.admin_auth
        await auth.start_sign_in(phone, client_address=address)
        code = await self.identity.last_code(phone)
        challenge = await auth.verify_phone_code(phone, code, client_address=address)
        if challenge.totp_secret is not None:
            self.totp_secrets[phone] = challenge.totp_secret
        return challenge

    async def sign_in(self, phone: str = ADMIN_PHONE, address: str = ADDRESS) -> AdminSession:
        """A complete sign-in (enrolling TOTP the first time); moves the clock one TOTP step
        first so that the code is never one already used."""
        challenge = await self.phone_step(phone, address)
        self.clock.advance(totp_codes.STEP_SECONDS)
        return await self.admin.admin_auth.complete_sign_in(
            challenge.ticket, code=self.totp_code(phone), client_address=address
        )


@contextlib.asynccontextmanager
async def admin_env(
    tmp_path: Path, *, clock: ManualClock | None = None, **sections: dict[str, Any]
) -> AsyncIterator[AdminEnv]:
    # Many sign-ins per test: lift the OTP send caps (they have their own tests).
    sections.setdefault("otp", {}).update(
        {"sends_per_number_15min": 1000, "sends_per_number_day": 10_000,
         **sections.get("otp", {})})
    async with identity_env(tmp_path, clock=clock, **sections) as identity:
        admin = build_admin_services(identity.settings, identity.clock, identity.database,
                                     identity.services)
        yield AdminEnv(identity, admin, {})
