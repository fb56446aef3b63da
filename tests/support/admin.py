"""Admin services (audit log, admin sign-in, API tokens) on top of the identity test env, and
a helper that signs an admin in end to end (phone code from the file spool, then TOTP)."""

from __future__ import annotations

import contextlib
import json
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


# -- over HTTPS -----------------------------------------------------------------------------------


async def http_json(
    http: Any, method: str, path: str, body: Any = None, bearer: str | None = None,
    **kwargs: Any,
) -> tuple[int, Any]:
    """(status, body) of one request: parsed JSON, or the text of anything else (None if empty)."""
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    async with http.request(method, path, json=body, headers=headers, **kwargs) as response:
        text = await response.text()
        if response.content_type in {"application/json", "application/problem+json"}:
            return response.status, json.loads(text)
        return response.status, (text or None)


async def delivered_code(running: Any, phone: str) -> str:
    """The last code the file OTP provider delivered to ``phone`` (server in this process)."""
    from semafore.storage.otp_spool import read_spool
    from semafore.web.appkeys import SERVICES

    await running.app[SERVICES].otp.wait_for_deliveries()
    spool = running.settings.resolve(running.settings.otp.file_spool_dir)
    messages = [m["message"] for m in read_spool(spool) if m["to"] == phone]
    assert messages, "no code was delivered"
    return messages[-1].split("code is ")[1][:6]


async def enrolled_device(
    running: Any, org_id: str, phone: str, *, approve: bool
) -> tuple[str, int, str | None]:
    """A device of ``phone`` enrolled with real keys through the server's services (and
    approved if asked): (user_id, device_id, access token or None while pending)."""
    from semafore.web.appkeys import SERVICES
    from support.identity import EnrollingDevice

    services = running.app[SERVICES]
    await services.enrolment.request_code(phone, client_address=None)
    ticket = await services.enrolment.verify_code(phone, await delivered_code(running, phone))
    registration = await services.enrolment.register(
        ticket.ticket, EnrollingDevice().registration(ticket.user_id, ticket.device_id))
    if not approve:
        return registration.user_id, registration.device_id, None
    await services.devices.approve(org_id, registration.user_id, registration.device_id,
                                   actor="operator")
    state = await services.enrolment.status(registration.enrolment_secret)
    assert state.tokens is not None
    return registration.user_id, registration.device_id, state.tokens.access_token


@dataclass
class HttpAdmin:
    """An admin signed in over HTTPS: the session token and the authenticator's secret."""

    token: str
    totp_secret: str
    recovery_codes: list[str]
    org_id: str
    member_id: str


async def sign_in_over_http(
    http: Any, running: Any, clock: ManualClock, phone: str = ADMIN_PHONE,
    totp_secret: str | None = None,
) -> HttpAdmin:
    """Phone code from the spool, then TOTP (enrolling when the server asks)."""
    status, body = await http_json(http, "POST", "/v1/admin/sign-in", {"phone": phone})
    assert status == 202, body
    code = await delivered_code(running, phone)
    status, challenge = await http_json(http, "POST", "/v1/admin/sign-in/verify",
                                        {"phone": phone, "code": code})
    assert status == 200, challenge
    if challenge["next"] == "totp_enrolment":
        totp_secret = challenge["totp"]["secret"]
    assert totp_secret is not None
    clock.advance(totp_codes.STEP_SECONDS)  # never a step already used
    totp = totp_codes.code_at_step(totp_secret, totp_codes.step_at(clock.now()))
    status, session = await http_json(http, "POST", "/v1/admin/sign-in/complete",
                                      {"sign_in_ticket": challenge["sign_in_ticket"],
                                       "code": totp})
    assert status == 201, session
    return HttpAdmin(session["session_token"], totp_secret, session.get("recovery_codes", []),
                     session["org_id"], session["member_id"])
