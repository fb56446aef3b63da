"""Enrolment of a new device, in three steps a client can follow without guessing:

1. ``request_code(phone)``: a code goes to the number if it belongs to a member; the answer is
   the same either way.
2. ``verify_code(phone, code)``: proves the number and returns a short-lived *ticket* naming the
   member's ``user_id`` and a freshly reserved ``device_id``, which the device needs to sign
   its identity binding (PROTOCOL.md s4.2).
3. ``register(ticket, keys)``: the keys and both signatures are checked, the device is stored
   as *pending* with its signed and one-time pre keys and the optional ``device_name`` it
   gives itself (shown to admins), and the device gets an *enrolment secret*.

Then the pending device polls ``status(secret)``: ``pending`` until an admin decides; on
approval the first access and refresh tokens are handed out once (the secret dies with that),
on rejection ``rejected``. A pending device can do nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from semafore.config import AuthSettings
from semafore.protocol import DeviceAddress
from semafore.services import identity_events as events
from semafore.services.clock import Clock
from semafore.services.device_keys import DeviceKeysUpload, parse_device_keys
from semafore.services.errors import LimitReached, Unauthenticated
from semafore.services.keyed_hash import KeyedHash, new_secret
from semafore.services.names import parse_device_name
from semafore.services.otp import PURPOSE_ENROL, CodeRejected, OtpService
from semafore.services.phone import PhoneVault, parse_phone
from semafore.services.sessions import SessionService, TokenPair
from semafore.storage import Database
from semafore.storage import devices as device_store
from semafore.storage import enrolment_store as store
from semafore.storage import members as member_store
from semafore.storage import prekeys as prekey_store

TICKET_PREFIX = "sft_"
SECRET_PREFIX = "sfe_"  # noqa: S105 - a prefix, not a secret
DAY = 86_400


@dataclass(frozen=True, slots=True)
class EnrolmentTicket:
    ticket: str
    user_id: str
    device_id: int
    expires_at: int


@dataclass(frozen=True, slots=True)
class Registration:
    user_id: str
    device_id: int
    enrolment_secret: str
    status: str = "pending"


@dataclass(frozen=True, slots=True)
class EnrolmentStatus:
    status: Literal["pending", "approved", "rejected"]
    user_id: str
    device_id: int
    tokens: TokenPair | None = None


class TicketRejected(Unauthenticated):
    code = "enrolment_ticket_invalid"

    def __init__(self) -> None:
        super().__init__("the enrolment ticket is not valid or has expired; verify a new code")


class EnrolmentSecretRejected(Unauthenticated):
    code = "enrolment_secret_invalid"

    def __init__(self) -> None:
        super().__init__("the enrolment secret is not valid; enrol the device again")


def _device_cap(cap: int) -> LimitReached:
    return LimitReached(
        f"this member already has {cap} devices; an admin must revoke one first",
        code="device_limit_reached",
        details={"devices_per_member": cap},
    )


class EnrolmentService:
    def __init__(
        self,
        database: Database,
        clock: Clock,
        settings: AuthSettings,
        vault: PhoneVault,
        token_key: bytes,
        otp: OtpService,
        sessions: SessionService,
    ) -> None:
        self._db = database
        self._clock = clock
        self._settings = settings
        self._vault = vault
        self._ticket_hash = KeyedHash(token_key, "semafore/enrolment-ticket/v1")
        self._secret_hash = KeyedHash(token_key, "semafore/enrolment-secret/v1")
        self._otp = otp
        self._sessions = sessions

    async def request_code(self, phone: object, *, client_address: str | None) -> None:
        number = parse_phone(phone)
        lookup = self._vault.lookup_hash(number)

        async def eligible(conn: Any) -> bool:
            return await member_store.member_by_phone(conn, lookup) is not None

        await self._otp.request_code(
            number, purpose=PURPOSE_ENROL, client_address=client_address, eligible=eligible
        )

    async def verify_code(self, phone: object, code: object) -> EnrolmentTicket:
        number = parse_phone(phone)
        lookup = self._vault.lookup_hash(number)
        now = int(self._clock.now())
        cap = self._settings.devices_per_member
        ticket = new_secret(TICKET_PREFIX)
        expires_at = now + self._settings.enrolment_ticket_ttl_seconds

        async def on_success(conn: Any) -> EnrolmentTicket:
            member = await member_store.member_by_phone(conn, lookup)
            if member is None:
                raise CodeRejected()  # codes are never sent to such numbers: look the same
            if await device_store.count_devices(conn, member.user_id) >= cap:
                raise _device_cap(cap)
            device_id = await member_store.reserve_device_id(conn, member.user_id)
            await store.insert_ticket(
                conn, ticket_hash=self._ticket_hash(ticket), user_id=member.user_id,
                device_id=device_id, expires_at=expires_at,
            )
            return EnrolmentTicket(ticket, member.user_id, device_id, expires_at)

        return await self._otp.verify_code(
            number, code if isinstance(code, str) else "", purpose=PURPOSE_ENROL,
            on_success=on_success, unit_name="enrolment.verify_code",
        )

    async def register(self, ticket: object, keys: object) -> Registration:
        """Check every key against the ticket's user and device, then store the device."""
        if not isinstance(ticket, str) or not ticket.startswith(TICKET_PREFIX) \
                or len(ticket) > 128:
            raise TicketRejected()
        ticket_hash = self._ticket_hash(ticket)
        async with self._db.read() as conn:
            named = await store.get_ticket(conn, ticket_hash)
        now = self._clock.now()
        if named is None or named.expires_at <= now:
            raise TicketRejected()
        upload = parse_device_keys(keys, DeviceAddress(named.user_id, named.device_id))
        device_name = parse_device_name(keys.get("device_name") if isinstance(keys, dict) else None)
        secret = new_secret(SECRET_PREFIX)
        cap = self._settings.devices_per_member
        credential_expiry = int(now) + self._settings.pending_enrolment_ttl_days * DAY

        async def unit(conn: Any) -> Registration:
            taken = await store.take_ticket(conn, ticket_hash)
            if taken is None or taken.expires_at <= now or taken != named:
                raise TicketRejected()
            member = await member_store.get_member(conn, taken.user_id)
            if member is None:
                raise TicketRejected()
            if await device_store.count_devices(conn, taken.user_id) >= cap:
                raise _device_cap(cap)
            await _store_device(
                conn, taken.user_id, taken.device_id, upload, int(now), device_name
            )
            await store.insert_credential(
                conn, secret_hash=self._secret_hash(secret), user_id=taken.user_id,
                device_id=taken.device_id, now=int(now), expires_at=credential_expiry,
            )
            await events.record(
                conn, at=now, org_id=member.org_id,
                actor=events.member_ref(taken.user_id), event="device.registered",
                target=events.device_ref(taken.user_id, taken.device_id),
                data={"one_time_pre_keys": len(upload.one_time_pre_keys)},
            )
            return Registration(taken.user_id, taken.device_id, secret)

        return await self._db.write("enrolment.register", unit)

    async def status(self, secret: object) -> EnrolmentStatus:
        """Pending, rejected, or approved with the device's first tokens (handed out once)."""
        if not isinstance(secret, str) or not secret.startswith(SECRET_PREFIX) \
                or len(secret) > 128:
            raise EnrolmentSecretRejected()
        secret_hash = self._secret_hash(secret)
        now = self._clock.now()
        async with self._db.read() as conn:
            credential = await store.get_credential(conn, secret_hash)
            device = None if credential is None else await device_store.get_device(
                conn, credential.user_id, credential.device_id
            )
        if credential is None or credential.expires_at <= now:
            raise EnrolmentSecretRejected()
        if credential.outcome == "rejected":
            return EnrolmentStatus("rejected", credential.user_id, credential.device_id)
        if device is None:
            raise EnrolmentSecretRejected()
        if device.status == "pending":
            return EnrolmentStatus("pending", device.user_id, device.device_id)

        async def unit(conn: Any) -> Any:
            current = await store.get_credential(conn, secret_hash)
            row = await device_store.get_device(conn, device.user_id, device.device_id)
            if current is None or row is None or row.status != "approved":
                raise EnrolmentSecretRejected()
            await store.delete_credential(conn, secret_hash)
            return await self._sessions.start_chain_in(
                conn, user_id=row.user_id, device_id=row.device_id, org_id=row.org_id, now=now
            )

        issued = await self._db.write("enrolment.collect_tokens", unit)
        return EnrolmentStatus(
            "approved", device.user_id, device.device_id, self._sessions.complete(issued)
        )

    async def purge_expired(self) -> None:
        """Drop lapsed tickets and credentials, and devices never approved in time (they
        would otherwise count towards the member's device cap forever)."""
        now = int(self._clock.now())
        before = now - self._settings.pending_enrolment_ttl_days * DAY

        async def unit(conn: Any) -> None:
            await store.delete_expired(conn, now)
            for row in await device_store.pending_registered_before(conn, before):
                await device_store.delete_device(conn, row.user_id, row.device_id, now)
                await events.record(
                    conn, at=now, org_id=row.org_id, actor=events.SYSTEM,
                    event="device.enrolment_expired",
                    target=events.device_ref(row.user_id, row.device_id),
                )

        await self._db.write("enrolment.purge_expired", unit)


async def _store_device(
    conn: Any, user_id: str, device_id: int, upload: DeviceKeysUpload, now: int,
    device_name: str | None,
) -> None:
    await device_store.insert_device(
        conn, user_id=user_id, device_id=device_id, identity_key=upload.identity_key,
        identity_signing_key=upload.identity_signing_key,
        identity_binding_signature=upload.identity_binding_signature, now=now,
        device_name=device_name,
    )
    spk = upload.signed_pre_key
    await prekey_store.put_signed_pre_key(
        conn, user_id, device_id, key_id=spk.key_id, public_key=spk.public_key,
        signature=spk.signature, now=now,
    )
    await prekey_store.add_one_time_pre_keys(conn, user_id, device_id, upload.one_time_pre_keys)
