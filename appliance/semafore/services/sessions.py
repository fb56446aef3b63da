"""Device sessions: a short-lived access JWT plus a rotating, single-use refresh token.

* Access token: EdDSA JWT, ``kid`` header, ``iss``/``aud`` pinned, lifetime at most
  ``auth.access_token_ttl_seconds`` (≤ 15 minutes), ``typ`` = ``device`` (admin sessions are
  another audience and type, so neither is accepted in place of the other).
* Refresh token: 256 random bits, stored as a keyed hash; each use returns a new one and marks
  the old one used. Presenting a used one again means it was copied: the whole chain dies,
  together with every access token minted from it (``sid`` claim).
* Every request checks the token and that the device is still approved and the chain alive
  (cached in :class:`DeviceService`, dropped at once on revocation).
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from typing import Any

from semafore.config import AuthSettings
from semafore.services import identity_events as events
from semafore.services.clock import Clock
from semafore.services.devices import DeviceService, RevokedSession
from semafore.services.errors import Unauthenticated
from semafore.services.jwt_keys import JwtKeyring
from semafore.services.keyed_hash import KeyedHash, new_secret
from semafore.storage import Database
from semafore.storage import devices as device_store
from semafore.storage import members as member_store
from semafore.storage import refresh_tokens as store

AUDIENCE_DEVICE = "semafore-device"
TOKEN_TYPE_DEVICE = "device"  # noqa: S105 - a claim value
REFRESH_PREFIX = "sfr_"
DEVICE_CLAIMS = ("sub", "did", "org", "sid", "typ", "jti")
DAY = 86_400


@dataclass(frozen=True, slots=True)
class DevicePrincipal:
    """An approved device, authenticated by a valid access token."""

    user_id: str
    device_id: int
    org_id: str
    session_id: str  # the refresh chain the access token came from


@dataclass(frozen=True, slots=True)
class TokenPair:
    access_token: str
    access_expires_at: int
    refresh_token: str
    refresh_expires_at: int
    token_type: str = "Bearer"  # noqa: S105 - the scheme name


@dataclass(frozen=True, slots=True)
class IssuedRefresh:
    """A refresh token created inside a unit of work; the access token is minted after."""

    user_id: str
    device_id: int
    org_id: str
    chain_id: str
    refresh_token: str
    refresh_expires_at: int


class RefreshRejected(Unauthenticated):
    code = "refresh_token_invalid"

    def __init__(self) -> None:
        super().__init__("the refresh token is not valid; enrol the device again")


class SessionRevoked(Unauthenticated):
    code = "session_revoked"

    def __init__(self) -> None:
        super().__init__("this device's access was revoked or is not approved")


class _Reused:
    def __init__(self, seq: int, session: RevokedSession) -> None:
        self.seq = seq
        self.session = session


class SessionService:
    def __init__(
        self,
        database: Database,
        clock: Clock,
        settings: AuthSettings,
        keyring: JwtKeyring,
        token_key: bytes,
        devices: DeviceService,
    ) -> None:
        self._db = database
        self._clock = clock
        self._settings = settings
        self.keyring = keyring
        self._hash = KeyedHash(token_key, "semafore/refresh-token/v1")
        self._devices = devices

    # -- issuing --------------------------------------------------------------------------------

    async def start_chain_in(
        self, conn: Any, *, user_id: str, device_id: int, org_id: str, now: float
    ) -> IssuedRefresh:
        """A new refresh chain for an approved device, inside the caller's unit of work."""
        chain_id = secrets.token_hex(16)
        return await self._insert_refresh(conn, user_id, device_id, org_id, chain_id, now)

    async def _insert_refresh(
        self, conn: Any, user_id: str, device_id: int, org_id: str, chain_id: str, now: float
    ) -> IssuedRefresh:
        token = new_secret(REFRESH_PREFIX)
        expires_at = int(now) + self._settings.refresh_token_ttl_days * DAY
        await store.insert_refresh_token(
            conn, token_hash=self._hash(token), chain_id=chain_id, user_id=user_id,
            device_id=device_id, now=int(now), expires_at=expires_at,
        )
        return IssuedRefresh(user_id, device_id, org_id, chain_id, token, expires_at)

    def complete(self, issued: IssuedRefresh) -> TokenPair:
        """Mint the access token that goes with a refresh token (after COMMIT)."""
        now = int(self._clock.now())
        expires_at = now + self._settings.access_token_ttl_seconds
        access = self.keyring.sign({
            "iss": self._settings.issuer,
            "aud": AUDIENCE_DEVICE,
            "typ": TOKEN_TYPE_DEVICE,
            "sub": issued.user_id,
            "did": issued.device_id,
            "org": issued.org_id,
            "sid": issued.chain_id,
            "jti": secrets.token_hex(12),
            "iat": now,
            "exp": expires_at,
        })
        return TokenPair(access, expires_at, issued.refresh_token, issued.refresh_expires_at)

    # -- refreshing -----------------------------------------------------------------------------

    async def refresh(self, refresh_token: object) -> TokenPair:
        if not isinstance(refresh_token, str) or not refresh_token.startswith(REFRESH_PREFIX) \
                or len(refresh_token) > 128:
            raise RefreshRejected()
        presented = self._hash(refresh_token)
        now = self._clock.now()

        async def unit(conn: Any) -> IssuedRefresh | _Reused | None:
            row = await store.get_refresh_token(conn, presented)
            if row is None:
                return None
            if row.used_at is not None:
                # A used token again: someone holds a copy. Kill the chain (committed, so no
                # exception here) and tell every process.
                await store.delete_chain(conn, row.chain_id)
                seq = await device_store.log_revocation(
                    conn, row.user_id, row.device_id, int(now), chain_id=row.chain_id
                )
                device = await device_store.get_device(conn, row.user_id, row.device_id)
                await events.record(
                    conn, at=now, org_id=device.org_id if device else None,
                    actor=events.device_ref(row.user_id, row.device_id),
                    event="session.refresh_reused",
                    target=events.device_ref(row.user_id, row.device_id),
                )
                return _Reused(seq, RevokedSession(row.user_id, row.device_id, row.chain_id))
            if row.expires_at <= now:
                return None
            device = await device_store.get_device(conn, row.user_id, row.device_id)
            if device is None or device.status != "approved":
                return None
            await store.mark_used(conn, presented, int(now))
            await member_store.touch_active(conn, row.user_id, row.device_id, int(now) // DAY)
            return await self._insert_refresh(
                conn, row.user_id, row.device_id, device.org_id, row.chain_id, now
            )

        outcome = await self._db.write("sessions.refresh", unit)
        if isinstance(outcome, _Reused):
            await self._devices.notify_revoked([(outcome.seq, outcome.session)])
            raise RefreshRejected()
        if outcome is None:
            raise RefreshRejected()
        return self.complete(outcome)

    # -- authenticating -------------------------------------------------------------------------

    async def authenticate(self, access_token: object) -> DevicePrincipal:
        """The device behind a bearer token, or Unauthenticated. Checks approval every time."""
        s = self._settings
        claims = self.keyring.verify(
            access_token,
            audience=AUDIENCE_DEVICE,
            issuer=s.issuer,
            required=DEVICE_CLAIMS,
            max_lifetime_seconds=s.access_token_ttl_seconds,
        )
        user_id, device_id, chain_id = claims.get("sub"), claims.get("did"), claims.get("sid")
        if (
            not hmac.compare_digest(str(claims.get("typ")), TOKEN_TYPE_DEVICE)
            or not isinstance(user_id, str)
            or type(device_id) is not int
            or not isinstance(chain_id, str)
        ):
            raise Unauthenticated("the access token is not valid", code="token_invalid")
        access = await self._devices.access(user_id, device_id, chain_id)
        if access is None:
            raise SessionRevoked()
        await self._devices.note_active(
            user_id, device_id, chain_id, int(self._clock.now()) // DAY
        )
        return DevicePrincipal(user_id, device_id, access.org_id, chain_id)

    async def rotate_signing_key(self, *, actor: str) -> str:
        """Start signing with a new key (the old one verifies for the overlap window)."""
        kid = self.keyring.rotate()
        now = self._clock.now()

        async def unit(conn: Any) -> None:
            await events.record(
                conn, at=now, org_id=None, actor=actor, event="keys.jwt_rotated",
                target=f"jwt_key:{kid}",
            )

        await self._db.write("sessions.rotate_signing_key", unit)
        return kid

    async def purge_expired(self) -> None:
        now = int(self._clock.now())

        async def unit(conn: Any) -> None:
            await store.delete_expired(conn, now)

        await self._db.write("sessions.purge_expired", unit)
