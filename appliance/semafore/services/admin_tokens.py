"""Admin API tokens for automation: scoped, expiring, revocable; stored as keyed hashes and
shown once. Created and revoked by a signed-in admin (never by another token); both audited.

A token stops working when it expires, is revoked, or its creator is no longer an admin of
the organisation (it is deleted with the creator's account).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Any

from semafore.config import AdminSettings
from semafore.services.admin_principal import SCOPES, AdminPrincipal
from semafore.services.clock import Clock
from semafore.services.errors import Forbidden, InvalidInput, NotFound, Unauthenticated
from semafore.services.keyed_hash import KeyedHash, new_id, new_secret
from semafore.storage import Database
from semafore.storage import admin_tokens as store
from semafore.storage.audit import append_event

API_TOKEN_PREFIX = "sfk_"  # noqa: S105 - a prefix, not a secret
NAME_MAX = 100
DAY = 86_400


@dataclass(frozen=True, slots=True)
class ApiToken:
    token_id: str
    name: str
    scopes: tuple[str, ...]
    created_by: str
    created_at: int
    expires_at: int
    revoked_at: int | None
    last_used_day: int | None

    @classmethod
    def from_row(cls, row: store.ApiTokenRow) -> ApiToken:
        return cls(row.token_id, row.name, row.scopes, row.created_by, row.created_at,
                   row.expires_at, row.revoked_at, row.last_used_day)


@dataclass(frozen=True, slots=True)
class CreatedApiToken:
    token: ApiToken
    secret: str  # shown once, never stored


def parse_scopes(value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(s, str) for s in value):
        raise InvalidInput("scopes must be a non-empty list of scope names",
                           code="scopes_invalid", details={"known_scopes": sorted(SCOPES)})
    unknown = sorted(set(value) - SCOPES)
    if unknown:
        raise InvalidInput(f"unknown scope {unknown[0]!r}", code="scopes_invalid",
                           details={"known_scopes": sorted(SCOPES)})
    return tuple(sorted(set(value)))


def parse_token_name(value: object) -> str:
    if not isinstance(value, str):
        raise InvalidInput("name must be a string", code="token_name_invalid")
    name = unicodedata.normalize("NFC", value.strip())
    if not 1 <= len(name) <= NAME_MAX or any(unicodedata.category(c)[0] == "C" for c in name):
        raise InvalidInput(f"name must be 1 to {NAME_MAX} printable characters",
                           code="token_name_invalid")
    return name


class ApiTokenService:
    def __init__(
        self, database: Database, clock: Clock, settings: AdminSettings, token_key: bytes
    ) -> None:
        self._db = database
        self._clock = clock
        self._settings = settings
        self._hash = KeyedHash(token_key, "semafore/admin-api-token/v1")

    async def create(
        self, principal: AdminPrincipal, *, name: object, scopes: object,
        expires_in_days: object = None,
    ) -> CreatedApiToken:
        _require_session(principal)
        token_name = parse_token_name(name)
        token_scopes = parse_scopes(scopes)
        days = self._settings.api_token_default_days if expires_in_days is None else (
            expires_in_days)
        if type(days) is not int or not 1 <= days <= self._settings.api_token_max_days:
            raise InvalidInput(
                f"expires_in_days must be an integer from 1 to "
                f"{self._settings.api_token_max_days}", code="token_expiry_invalid",
            )
        now = int(self._clock.now())
        secret = new_secret(API_TOKEN_PREFIX)
        token_id = new_id("tk_")

        async def unit(conn: Any) -> ApiToken:
            await store.insert_token(
                conn, token_id=token_id, token_hash=self._hash(secret), org_id=principal.org_id,
                created_by=principal.member_id, name=token_name, scopes=token_scopes, now=now,
                expires_at=now + days * DAY,
            )
            await append_event(
                conn, at=now, org_id=principal.org_id, actor=principal.actor,
                event="api_token.created", target=f"token:{token_id}",
                data={"name": token_name, "scopes": list(token_scopes),
                      "expires_at": now + days * DAY},
            )
            row = await store.get_token(conn, principal.org_id, token_id)
            assert row is not None
            return ApiToken.from_row(row)

        token = await self._db.write("admin.api_tokens.create", unit)
        return CreatedApiToken(token, secret)

    async def list(self, principal: AdminPrincipal) -> list[ApiToken]:
        _require_session(principal)
        async with self._db.read() as conn:
            return [ApiToken.from_row(r) for r in await store.list_tokens(conn, principal.org_id)]

    async def revoke(self, principal: AdminPrincipal, token_id: object) -> ApiToken:
        _require_session(principal)
        now = int(self._clock.now())
        wanted = token_id if isinstance(token_id, str) else ""

        async def unit(conn: Any) -> ApiToken:
            row = await store.get_token(conn, principal.org_id, wanted)
            if row is None:
                raise NotFound("no such API token", code="api_token_not_found")
            if await store.revoke_token(conn, principal.org_id, wanted, now):
                await append_event(conn, at=now, org_id=principal.org_id, actor=principal.actor,
                                   event="api_token.revoked", target=f"token:{wanted}")
            revoked = await store.get_token(conn, principal.org_id, wanted)
            assert revoked is not None
            return ApiToken.from_row(revoked)

        return await self._db.write("admin.api_tokens.revoke", unit)

    async def authenticate(self, secret: str) -> AdminPrincipal:
        now = int(self._clock.now())
        async with self._db.read() as conn:
            row = await store.token_by_hash(conn, self._hash(secret))
        if (row is None or row.revoked_at is not None or row.expires_at <= now
                or row.creator_role != "admin"):
            raise Unauthenticated("the API token is not valid (expired, revoked or unknown)",
                                  code="api_token_invalid")
        day = now // DAY
        if row.last_used_day is None or row.last_used_day < day:
            async def unit(conn: Any) -> None:
                await store.note_used(conn, row.token_id, day)

            await self._db.write("admin.api_tokens.note_used", unit)
        return AdminPrincipal(row.org_id, row.created_by, "api_token", frozenset(row.scopes),
                              row.token_id)


def _require_session(principal: AdminPrincipal) -> None:
    if principal.via != "session":
        raise Forbidden("API tokens are managed by a signed-in admin, not by another token",
                        code="session_required")
