"""Organisations: created by the operator (CLI) or, when enabled, by self-service sign-up
(the first admin's phone number proven by OTP); a member limit per organisation."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Any

from semafore.config import OrgsSettings
from semafore.services import identity_events as events
from semafore.services.clock import Clock
from semafore.services.errors import Forbidden, InvalidInput, NotFound
from semafore.services.keyed_hash import new_id
from semafore.services.members import Member, MemberService
from semafore.services.otp import PURPOSE_ORG_SIGNUP, CodeRejected, OtpService
from semafore.services.phone import PhoneVault, parse_phone
from semafore.storage import Database
from semafore.storage import members as member_store
from semafore.storage import orgs as store

NAME_MAX = 100
MEMBER_LIMIT_MAX = 10_000_000


@dataclass(frozen=True, slots=True)
class Org:
    org_id: str
    name: str
    member_limit: int
    created_at: int
    member_count: int

    @classmethod
    def from_row(cls, row: store.OrgRow) -> Org:
        return cls(row.org_id, row.name, row.member_limit, row.created_at, row.member_count)


def parse_org_name(value: object) -> str:
    if not isinstance(value, str):
        raise InvalidInput("organisation name must be a string", code="org_name_invalid")
    name = unicodedata.normalize("NFC", value.strip())
    if not 1 <= len(name) <= NAME_MAX or any(unicodedata.category(c)[0] == "C" for c in name):
        raise InvalidInput(
            f"organisation name must be 1 to {NAME_MAX} printable characters",
            code="org_name_invalid",
        )
    return name


def parse_member_limit(value: object) -> int:
    if type(value) is not int or not 1 <= value <= MEMBER_LIMIT_MAX:
        raise InvalidInput(
            f"member limit must be an integer from 1 to {MEMBER_LIMIT_MAX}",
            code="member_limit_invalid",
        )
    return value


class OrgService:
    def __init__(
        self,
        database: Database,
        clock: Clock,
        settings: OrgsSettings,
        vault: PhoneVault,
        members: MemberService,
        otp: OtpService,
    ) -> None:
        self._db = database
        self._clock = clock
        self._settings = settings
        self._vault = vault
        self._members = members
        self._otp = otp

    async def _create_in(
        self, conn: Any, *, name: str, admin_phone: str, member_limit: int, actor: str,
        now: float,
    ) -> tuple[str, str]:
        org_id = new_id("o_")
        await store.insert_org(
            conn, org_id=org_id, name=name, member_limit=member_limit, now=int(now)
        )
        await events.record(
            conn, at=now, org_id=org_id, actor=actor, event="org.created",
            target=events.org_ref(org_id), data={"member_limit": member_limit},
        )
        user_id = await self._members.insert_in(
            conn, org_id=org_id, phone=admin_phone, role="admin", actor=actor, now=now
        )
        return org_id, user_id

    async def create_org(
        self, name: object, admin_phone: object, *, actor: str = events.OPERATOR,
        member_limit: object = None,
    ) -> tuple[Org, Member]:
        """Create an organisation with its first admin (operator path: no OTP)."""
        org, admin = await self._create_org(name, admin_phone, actor=actor,
                                            member_limit=member_limit, if_absent=False)
        assert admin is not None  # without if_absent it always creates
        return org, admin

    async def create_org_if_absent(
        self, name: object, admin_phone: object, *, actor: str = events.OPERATOR,
        member_limit: object = None,
    ) -> tuple[Org, Member | None]:
        """As :meth:`create_org`, unless an organisation of that name exists: then that one,
        untouched, and no new admin. For provisioning that runs again and again: the check and
        the creation are one transaction, so two runs at once still create one."""
        return await self._create_org(name, admin_phone, actor=actor,
                                      member_limit=member_limit, if_absent=True)

    async def _create_org(
        self, name: object, admin_phone: object, *, actor: str, member_limit: object,
        if_absent: bool,
    ) -> tuple[Org, Member | None]:
        org_name = parse_org_name(name)
        phone = parse_phone(admin_phone)
        limit = (
            self._settings.free_plan_member_limit
            if member_limit is None else parse_member_limit(member_limit)
        )
        now = self._clock.now()

        async def unit(conn: Any) -> tuple[str, str | None]:
            if if_absent and (existing := await store.org_by_name(conn, org_name)) is not None:
                return existing.org_id, None
            return await self._create_in(
                conn, name=org_name, admin_phone=phone, member_limit=limit, actor=actor, now=now
            )

        org_id, user_id = await self._db.write("orgs.create", unit)
        admin = None if user_id is None else await self._members.get_member(org_id, user_id)
        return await self.get_org(org_id), admin

    async def list_orgs(self) -> list[Org]:
        async with self._db.read() as conn:
            return [Org.from_row(r) for r in await store.list_orgs(conn)]

    async def get_org(self, org_id: str) -> Org:
        async with self._db.read() as conn:
            row = await store.get_org(conn, org_id)
        if row is None:
            raise NotFound("no such organisation", code="org_not_found")
        return Org.from_row(row)

    async def set_member_limit(self, org_id: str, limit: object, *, actor: str) -> Org:
        new_limit = parse_member_limit(limit)
        now = self._clock.now()

        async def unit(conn: Any) -> None:
            row = await store.get_org(conn, org_id)
            if row is None:
                raise NotFound("no such organisation", code="org_not_found")
            await store.set_member_limit(conn, org_id, new_limit)
            await events.record(
                conn, at=now, org_id=org_id, actor=actor, event="org.member_limit_changed",
                target=events.org_ref(org_id),
                data={"from": row.member_limit, "to": new_limit},
            )

        await self._db.write("orgs.set_member_limit", unit)
        return await self.get_org(org_id)

    # -- self-service sign-up --------------------------------------------------------------------

    def _require_signup_enabled(self) -> None:
        if not self._settings.self_service_signup:
            raise Forbidden(
                "self-service organisation sign-up is turned off on this appliance",
                code="signup_disabled",
            )

    async def request_signup_code(self, phone: object, *, client_address: str | None) -> None:
        """Send a sign-up code, unless the number already has an account (same answer)."""
        self._require_signup_enabled()
        number = parse_phone(phone)
        lookup = self._vault.lookup_hash(number)

        async def eligible(conn: Any) -> bool:
            return await member_store.member_by_phone(conn, lookup) is None

        await self._otp.request_code(
            number, purpose=PURPOSE_ORG_SIGNUP, client_address=client_address, eligible=eligible
        )

    async def sign_up(self, name: object, phone: object, code: object) -> tuple[Org, Member]:
        """Prove the code and create the organisation with this number as its first admin."""
        self._require_signup_enabled()
        org_name = parse_org_name(name)
        number = parse_phone(phone)
        limit = self._settings.free_plan_member_limit
        now = self._clock.now()
        lookup = self._vault.lookup_hash(number)

        async def on_success(conn: Any) -> tuple[str, str]:
            if await member_store.member_by_phone(conn, lookup) is not None:
                raise CodeRejected()  # never sent to such numbers: look the same
            return await self._create_in(
                conn, name=org_name, admin_phone=number, member_limit=limit,
                actor="self_service", now=now,
            )

        org_id, user_id = await self._otp.verify_code(
            number, code if isinstance(code, str) else "", purpose=PURPOSE_ORG_SIGNUP,
            on_success=on_success, unit_name="orgs.sign_up",
        )
        return await self.get_org(org_id), await self._members.get_member(org_id, user_id)
