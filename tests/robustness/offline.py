"""Set up an organisation on an appliance's database before its server starts (real services,
real clock), so a ``semafore serve`` subprocess can then be driven over TLS with real tokens.

- :func:`offline_world`: approved devices with access tokens (``support.relay_client.World``).
- :func:`offline_admin`: an admin signed in (phone code, then TOTP) with a second session (by
  recovery code), an API token with every scope, an enrolment ticket and an enrolment secret.
"""

from __future__ import annotations

import contextlib
import types
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from semafore.services import SystemClock, build_admin_services, build_identity_services
from semafore.services import totp as totp_codes
from semafore.services.admin_principal import SCOPES
from semafore.storage import Database
from semafore.storage.otp_spool import read_spool
from support.appliance import Appliance
from support.identity import EnrollingDevice
from support.relay_client import World, setup_world

ADDRESS = "192.0.2.20"
ADMIN_PHONE = "+447700900100"


@contextlib.asynccontextmanager
async def offline_services(appliance: Appliance) -> AsyncIterator[types.SimpleNamespace]:
    settings = appliance.settings()
    database = Database(settings.storage.database_path)
    await database.open()
    try:
        identity = build_identity_services(settings, SystemClock(), database)
        admin = build_admin_services(settings, SystemClock(), database, identity)
        yield types.SimpleNamespace(
            settings=settings, identity=identity, admin=admin,
            **{name: getattr(identity, name)
               for name in ("orgs", "members", "otp", "enrolment", "devices")},
        )
        await identity.otp.wait_for_deliveries()
    finally:
        await database.close()


async def offline_world(appliance: Appliance, devices_per_member: Sequence[int]) -> World:
    async with offline_services(appliance) as services:
        return await setup_world(services, devices_per_member)  # type: ignore[arg-type]


@dataclass
class AdminCreds:
    world: World
    session: str  # for every route that takes a session
    spare_session: str  # for sign-out, which ends the session it is called with
    api_token: str  # every scope
    enrolment_ticket: str
    enrolment_secret: str


async def _last_code(services: Any, phone: str) -> str:
    await services.otp.wait_for_deliveries()
    spool = services.settings.resolve(services.settings.otp.file_spool_dir)
    return [m["message"] for m in read_spool(spool) if m["to"] == phone][-1].split(
        "code is ")[1][:6]


async def offline_admin(appliance: Appliance) -> AdminCreds:
    """World: admin (member 0, one device), member 1 (one device) and member 2 (none yet)."""
    async with offline_services(appliance) as services:
        world = await setup_world(services, [1, 1, 0])  # type: ignore[arg-type]
        phone = ADMIN_PHONE  # setup_world's first number
        auth = services.admin.admin_auth

        async def sign_in() -> Any:
            await auth.start_sign_in(phone, client_address=ADDRESS)
            return await auth.verify_phone_code(
                phone, await _last_code(services, phone), client_address=ADDRESS)

        challenge = await sign_in()
        secret = challenge.totp_secret
        code = totp_codes.code_at_step(secret, totp_codes.step_at(SystemClock().now()))
        first = await auth.complete_sign_in(challenge.ticket, code=code, client_address=ADDRESS)
        challenge = await sign_in()
        spare = await auth.complete_sign_in(
            challenge.ticket, recovery_code=first.recovery_codes[0], client_address=ADDRESS)
        principal = await auth.authenticate(first.token)
        created = await services.admin.api_tokens.create(
            principal, name="fuzz", scopes=sorted(SCOPES))

        new_phone = "+447700900102"  # member 2: a ticket and a pending device's secret
        await services.enrolment.request_code(new_phone, client_address=ADDRESS)
        ticket = await services.enrolment.verify_code(
            new_phone, await _last_code(services, new_phone))
        pending = await services.enrolment.register(
            ticket.ticket, EnrollingDevice().registration(ticket.user_id, ticket.device_id))
        await services.enrolment.request_code(new_phone, client_address=ADDRESS)
        ticket = await services.enrolment.verify_code(
            new_phone, await _last_code(services, new_phone))
        return AdminCreds(world, first.token, spare.token, created.secret, ticket.ticket,
                          pending.enrolment_secret)
