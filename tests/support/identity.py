"""Identity services on a real database under tmp_path, with the file OTP provider and a
manual clock; plus a device that makes real keys for enrolment."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from semafore.config import Settings, settings_from_dict
from semafore.protocol import DeviceAddress, DHKeyPair, IdentityKeyPair
from semafore.protocol.binding import sign_identity_binding, sign_signed_pre_key
from semafore.protocol.encoding import b64u_encode
from semafore.services import ManualClock
from semafore.services.identity import IdentityServices, build_identity_services
from semafore.storage import Database
from semafore.storage.otp_spool import read_spool


@dataclass
class IdentityEnv:
    settings: Settings
    clock: ManualClock
    database: Database
    services: IdentityServices

    @property
    def spool_dir(self) -> Path:
        return self.settings.resolve(self.settings.otp.file_spool_dir)

    async def codes_for(self, phone: str) -> list[str]:
        """Every code delivered to ``phone`` so far (from the file provider's spool)."""
        await self.services.otp.wait_for_deliveries()
        return [
            m["message"].split("code is ")[1][:6]
            for m in read_spool(self.spool_dir) if m["to"] == phone
        ]

    async def last_code(self, phone: str) -> str:
        codes = await self.codes_for(phone)
        assert codes, "no code was delivered"
        return codes[-1]


def identity_settings(data_dir: Path, **sections: dict[str, Any]) -> Settings:
    config: dict[str, dict[str, Any]] = {
        "storage": {"data_dir": str(data_dir)},
        "otp": {"provider": "file"},
    }
    for name, values in sections.items():
        config.setdefault(name, {}).update(values)
    return settings_from_dict(config)


@contextlib.asynccontextmanager
async def identity_env(
    tmp_path: Path, *, clock: ManualClock | None = None, **sections: dict[str, Any]
) -> AsyncIterator[IdentityEnv]:
    settings = identity_settings(tmp_path / "data", **sections)
    database = Database(settings.storage.database_path)
    await database.open()
    clock = clock or ManualClock()
    try:
        services = build_identity_services(settings, clock, database)
        yield IdentityEnv(settings, clock, database, services)
        await services.otp.wait_for_deliveries()
    finally:
        await database.close()


@dataclass
class EnrollingDevice:
    """A device's real key material, enough to register (PROTOCOL.md s4)."""

    identity: IdentityKeyPair = field(default_factory=IdentityKeyPair.generate)
    spk: DHKeyPair = field(default_factory=DHKeyPair.generate)
    opks: list[DHKeyPair] = field(default_factory=lambda: [DHKeyPair.generate() for _ in range(5)])

    def registration(self, user_id: str, device_id: int, **overrides: Any) -> dict[str, Any]:
        address = DeviceAddress(user_id, device_id)
        body: dict[str, Any] = {
            "identity_key": b64u_encode(self.identity.ik.data),
            "identity_signing_key": b64u_encode(self.identity.isk.data),
            "identity_binding_signature": b64u_encode(
                sign_identity_binding(self.identity, address)
            ),
            "signed_pre_key_id": 1,
            "signed_pre_key": b64u_encode(self.spk.public.data),
            "signed_pre_key_signature": b64u_encode(
                sign_signed_pre_key(self.identity, self.spk.public)
            ),
            "one_time_pre_keys": [
                {"id": i + 1, "key": b64u_encode(k.public.data)} for i, k in enumerate(self.opks)
            ],
        }
        body.update(overrides)
        return body


async def org_with_member(
    env: IdentityEnv, *, admin_phone: str = "+447700900001", member_phone: str = "+447700900002"
) -> tuple[str, str, str]:
    """A fresh organisation with an admin and one member: (org_id, admin_id, member_id)."""
    org, admin = await env.services.orgs.create_org("Acme", admin_phone)
    member = await env.services.members.add_member(org.org_id, member_phone, actor="operator")
    return org.org_id, admin.user_id, member.user_id


async def enrol_device(
    env: IdentityEnv, phone: str, device: EnrollingDevice | None = None
) -> tuple[Any, str]:
    """Request, prove and register: returns (Registration, enrolment secret)."""
    s = env.services
    await s.enrolment.request_code(phone, client_address="192.0.2.1")
    ticket = await s.enrolment.verify_code(phone, await env.last_code(phone))
    device = device or EnrollingDevice()
    registration = await s.enrolment.register(
        ticket.ticket, device.registration(ticket.user_id, ticket.device_id)
    )
    return registration, registration.enrolment_secret


async def approved_device(env: IdentityEnv, org_id: str, phone: str) -> tuple[Any, Any]:
    """An enrolled and approved device: (Registration, TokenPair)."""
    registration, secret = await enrol_device(env, phone)
    await env.services.devices.approve(
        org_id, registration.user_id, registration.device_id, actor="operator"
    )
    status = await env.services.enrolment.status(secret)
    assert status.status == "approved" and status.tokens is not None
    return registration, status.tokens
