"""Admin sign-in: phone OTP, then a TOTP second factor (enrolled at first sign-in, with
single-use recovery codes), yielding an admin session; re-authentication; sign-out.

* Step 1 ``start_sign_in``: a code goes to the number if it belongs to an admin; the answer is
  the same for every number (the OTP service stores a code either way).
* Step 2 ``verify_phone_code``: proves the code and returns a short-lived sign-in ticket; at
  first sign-in also a new TOTP secret (``otpauth://`` URI and QR code) to enrol.
* Step 3 ``complete_sign_in``: the ticket plus a TOTP code (or a recovery code) gives a session
  token (256 random bits, stored as a keyed hash). Completing enrolment returns 10 recovery codes,
  shown once. A TOTP step is accepted once only.
* Sessions end after ``admin.session_idle_seconds`` without use or ``admin.session_absolute_
  seconds`` after sign-in, at sign-out, or when the member stops being an admin.
* Failed attempts (either factor) are counted per account and per client address; past the caps
  every attempt is refused for a while. Failures of an admin's account are audited.

Codes, tokens, tickets, secrets and numbers are never logged or audited.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field
from typing import Any

from semafore.config import AdminSettings
from semafore.services import totp
from semafore.services.admin_principal import SCOPES, AdminPrincipal
from semafore.services.admin_tokens import API_TOKEN_PREFIX, ApiTokenService
from semafore.services.clock import Clock
from semafore.services.errors import Forbidden, NotFound, RateLimited, Unauthenticated
from semafore.services.keyed_hash import KeyedHash, new_id, new_secret
from semafore.services.otp import PURPOSE_ADMIN_SIGN_IN, CodeRejected, OtpService
from semafore.services.phone import PhoneVault, parse_phone
from semafore.storage import Database
from semafore.storage import admin_auth as store
from semafore.storage import members as member_store
from semafore.storage import orgs as org_store
from semafore.storage.audit import append_event

log = logging.getLogger("semafore.admin_auth")

SESSION_PREFIX = "sfs_"
TICKET_PREFIX = "sfa_"
RECOVERY_CODES = 10
FAILURE_WINDOW = 15 * 60
_MAX_PRESENTED = 128


@dataclass(frozen=True, slots=True)
class SignInChallenge:
    """The phone code was right: the second factor comes next (``totp`` or ``totp_enrolment``)."""

    ticket: str
    expires_at: int
    next: str
    totp_uri: str | None = None
    totp_secret: str | None = None
    totp_qr_svg: str | None = None


@dataclass(frozen=True, slots=True)
class AdminSession:
    """A new session; ``recovery_codes`` only when this sign-in completed TOTP enrolment."""

    token: str
    session_id: str
    org_id: str
    member_id: str
    expires_at: int
    idle_timeout_seconds: int
    recovery_codes: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class SessionInfo:
    session_id: str
    org_id: str
    member_id: str
    created_at: int
    expires_at: int
    idle_expires_at: int
    reauthenticated_at: int
    recovery_codes_left: int


@dataclass(frozen=True, slots=True)
class _Passed:
    method: str  # "totp" or "recovery_code"
    enrolled: bool = False


class _Failed:
    pass


_FAILED = _Failed()


def _expired_ticket() -> Unauthenticated:
    return Unauthenticated("this sign-in has expired or is unknown; start again",
                           code="sign_in_expired")


def _second_factor_rejected() -> Unauthenticated:
    return Unauthenticated("the authenticator or recovery code is wrong",
                           code="second_factor_invalid")


def _bounded(value: object) -> str | None:
    return value if isinstance(value, str) and 0 < len(value) <= _MAX_PRESENTED else None


def normalise_recovery_code(value: str) -> str:
    return "".join(ch for ch in value.lower() if ch.isalnum())


def new_recovery_code() -> str:
    raw = secrets.token_hex(5)  # 40 bits: plenty for a single-use, rate-limited code
    return f"{raw[:5]}-{raw[5:]}"


class AdminAuthService:
    def __init__(
        self,
        database: Database,
        clock: Clock,
        settings: AdminSettings,
        vault: PhoneVault,
        otp: OtpService,
        *,
        token_key: bytes,
        totp_key: bytes,
        api_tokens: ApiTokenService,
    ) -> None:
        self._db = database
        self._clock = clock
        self._settings = settings
        self._vault = vault
        self._otp = otp
        self._sealer = totp.TotpSealer(totp_key)
        self._session_hash = KeyedHash(token_key, "semafore/admin-session/v1")
        self._ticket_hash = KeyedHash(token_key, "semafore/admin-sign-in/v1")
        self._recovery_hash = KeyedHash(token_key, "semafore/admin-recovery-code/v1")
        self._subject_hash = KeyedHash(token_key, "semafore/admin-sign-in-subject/v1")
        self._api_tokens = api_tokens

    # -- step 1: the phone code -----------------------------------------------------------------

    async def start_sign_in(self, phone: object, *, client_address: str | None) -> None:
        """Send a sign-in code if the number is an admin's; the same answer for every number."""
        number = parse_phone(phone)
        lookup = self._vault.lookup_hash(number)

        async def eligible(conn: Any) -> bool:
            row = await member_store.member_by_phone(conn, lookup)
            return row is not None and row.role == "admin"

        await self._otp.request_code(
            number, purpose=PURPOSE_ADMIN_SIGN_IN, client_address=client_address,
            eligible=eligible,
        )

    async def verify_phone_code(
        self, phone: object, code: object, *, client_address: str | None
    ) -> SignInChallenge:
        number = parse_phone(phone)
        lookup = self._vault.lookup_hash(number)
        subjects = self._subjects(lookup, client_address)
        now = int(self._clock.now())
        async with self._db.read() as conn:
            await self._check_limits(conn, subjects, now)
        s = self._settings
        ticket = new_secret(TICKET_PREFIX)

        async def on_success(conn: Any) -> SignInChallenge:
            row = await member_store.member_by_phone(conn, lookup)
            if row is None or row.role != "admin":
                raise CodeRejected()  # no code was ever delivered to such numbers
            expires_at = now + s.sign_in_ticket_ttl_seconds
            await store.insert_ticket(conn, self._ticket_hash(ticket), row.user_id, now,
                                      expires_at)
            current = await store.get_totp(conn, row.user_id)
            if current is not None and current.confirmed_at is not None:
                return SignInChallenge(ticket, expires_at, "totp")
            secret = totp.new_secret()
            await store.put_pending_totp(conn, row.user_id, self._sealer.seal(row.user_id, secret),
                                         now)
            uri = totp.provisioning_uri(secret, account=await self._account_label(conn, row),
                                        issuer=s.totp_issuer)
            return SignInChallenge(ticket, expires_at, "totp_enrolment", uri, secret,
                                   totp.qr_svg(uri))

        try:
            return await self._otp.verify_code(
                number, code if isinstance(code, str) else "", purpose=PURPOSE_ADMIN_SIGN_IN,
                on_success=on_success, unit_name="admin.sign_in.verify_code",
            )
        except CodeRejected:
            await self._db.write("admin.sign_in.failed", self._failure_unit(
                subjects, now, lookup=lookup, stage="phone_code"))
            raise

    async def _account_label(self, conn: Any, row: member_store.MemberRow) -> str:
        org = await org_store.get_org(conn, row.org_id)
        return f"{org.name if org else 'SemaFore'} admin"

    # -- step 2: the second factor --------------------------------------------------------------

    async def complete_sign_in(
        self, ticket: object, *, code: object = None, recovery_code: object = None,
        client_address: str | None,
    ) -> AdminSession:
        presented = _bounded(ticket)
        if presented is None or not presented.startswith(TICKET_PREFIX):
            raise _expired_ticket()
        ticket_hash = self._ticket_hash(presented)
        now = int(self._clock.now())
        s = self._settings
        token = new_secret(SESSION_PREFIX)
        session_id = new_id("as_")

        async def unit(conn: Any) -> AdminSession | _Failed | None:
            row = await store.get_ticket(conn, ticket_hash)
            if row is None:
                return None
            member = await member_store.get_member(conn, row.user_id)
            if row.expires_at <= now or member is None or member.role != "admin":
                await store.delete_ticket(conn, ticket_hash)
                return None
            subjects = self._subjects(member.phone_hmac, client_address)
            await self._check_limits(conn, subjects, now)
            passed = await self._second_factor(conn, member.user_id, code, recovery_code, now)
            if passed is None:
                tries = await store.record_ticket_failure(conn, ticket_hash)
                if tries >= s.second_factor_max_tries:
                    await store.delete_ticket(conn, ticket_hash)
                await self._failure_unit(subjects, now, member=member, stage="second_factor")(conn)
                return _FAILED
            await store.delete_ticket(conn, ticket_hash)
            codes: list[str] = []
            if passed.enrolled:
                codes = await self._new_recovery_codes(conn, member.user_id, now)
                await self._audit(conn, now, member, "admin.totp_enrolled")
            expires_at = now + s.session_absolute_seconds
            await store.insert_session(
                conn, token_hash=self._session_hash(token), session_id=session_id,
                user_id=member.user_id, org_id=member.org_id, now=now, expires_at=expires_at,
            )
            await self._audit(conn, now, member, "admin.signed_in",
                              {"method": passed.method, "session": session_id})
            return AdminSession(token, session_id, member.org_id, member.user_id, expires_at,
                                s.session_idle_seconds, codes)

        outcome = await self._db.write("admin.sign_in.complete", unit)
        if outcome is None:
            raise _expired_ticket()
        if isinstance(outcome, _Failed):
            raise _second_factor_rejected()
        return outcome

    async def _second_factor(
        self, conn: Any, user_id: str, code: object, recovery_code: object, now: int
    ) -> _Passed | None:
        row = await store.get_totp(conn, user_id)
        if row is None:
            return None
        if code is not None:
            if not isinstance(code, str):
                return None
            secret = self._sealer.open(user_id, row.secret_sealed)
            if secret is None:
                log.error("an admin's TOTP secret cannot be opened (damaged row or replaced key)")
                return None
            step = totp.matching_step(secret, code, now, after_step=row.last_step)
            if step is None:
                return None
            first = row.confirmed_at is None
            if not await store.accept_step(conn, user_id, step, confirm_at=now if first else None):
                return None
            return _Passed("totp", enrolled=first)
        presented = _bounded(recovery_code)
        if presented is None or row.confirmed_at is None:
            return None
        digest = self._recovery_hash(user_id, normalise_recovery_code(presented))
        if await store.use_recovery_code(conn, user_id, digest, now):
            return _Passed("recovery_code")
        return None

    async def _new_recovery_codes(self, conn: Any, user_id: str, now: int) -> list[str]:
        codes = [new_recovery_code() for _ in range(RECOVERY_CODES)]
        hashes = [self._recovery_hash(user_id, normalise_recovery_code(c)) for c in codes]
        await store.replace_recovery_codes(conn, user_id, hashes, now)
        return codes

    # -- sessions -------------------------------------------------------------------------------

    async def authenticate(
        self, token: object, *, scope: str | None = None, session_only: bool = False,
        recent_sign_in: bool = False,
    ) -> AdminPrincipal:
        """The admin behind a bearer credential (session or API token), or an error.

        Unauthenticated for anything that is not a live admin credential (a device token
        included); Forbidden when an API token lacks ``scope`` or the route needs a session.
        With ``recent_sign_in`` (approve, revoke, remove a member, create an API token) a
        session must also have proven its second factor recently; an API token is authorised
        by its scope alone, since only a recently signed-in admin can create one.
        """
        if scope is not None and scope not in SCOPES:
            raise ValueError(f"unknown admin scope {scope!r}")  # a programming error
        presented = _bounded(token)
        if presented is not None and presented.startswith(SESSION_PREFIX):
            principal = await self._session_principal(presented)
        elif presented is not None and presented.startswith(API_TOKEN_PREFIX):
            principal = await self._api_tokens.authenticate(presented)
            if session_only:
                raise Forbidden("this needs a signed-in admin, not an API token",
                                code="session_required")
        else:
            raise Unauthenticated("an admin session or admin API token is required",
                                  code="admin_credentials_required")
        if scope is not None and not principal.has_scope(scope):
            raise Forbidden(f"this API token does not have the {scope} scope",
                            code="scope_missing", details={"scope": scope})
        if recent_sign_in and principal.via == "session":
            self.require_recent_sign_in(principal)
        return principal

    async def _session_principal(self, token: str) -> AdminPrincipal:
        token_hash = self._session_hash(token)
        now = int(self._clock.now())
        idle = self._settings.session_idle_seconds

        async def unit(conn: Any) -> AdminPrincipal | None:
            row = await store.get_session(conn, token_hash)
            if row is None:
                return None
            member = await member_store.get_member(conn, row.user_id)
            if (row.expires_at <= now or row.last_seen_at + idle <= now or member is None
                    or member.role != "admin" or member.org_id != row.org_id):
                await store.delete_session(conn, token_hash)
                return None
            await store.touch_session(conn, token_hash, now)
            return AdminPrincipal(row.org_id, row.user_id, "session", SCOPES, row.session_id,
                                  row.reauth_at)

        principal = await self._db.write("admin.session.authenticate", unit)
        if principal is None:
            raise Unauthenticated("the admin session has ended; sign in again",
                                  code="admin_session_expired")
        return principal

    def require_recent_sign_in(self, principal: AdminPrincipal) -> None:
        """For actions that want a fresh second factor (approve, revoke, member removal, API
        token creation): the session's last TOTP proof must be within
        ``admin.recent_sign_in_seconds``. API tokens never count as recent."""
        if not principal.signed_in_recently(self._clock.now(),
                                            self._settings.recent_sign_in_seconds):
            raise Forbidden(
                "confirm it is you: enter a code from your authenticator app again",
                code="recent_sign_in_required",
                details={"reauth": "/v1/admin/session/reauth"},
            )

    async def session_info(self, principal: AdminPrincipal, token: str) -> SessionInfo:
        async with self._db.read() as conn:
            row = await store.get_session(conn, self._session_hash(token))
            if row is None or row.session_id != principal.credential_id:
                raise Unauthenticated("the admin session has ended; sign in again",
                                      code="admin_session_expired")
            left = await store.unused_recovery_codes(conn, row.user_id)
        idle_end = min(row.expires_at, row.last_seen_at + self._settings.session_idle_seconds)
        return SessionInfo(row.session_id, row.org_id, row.user_id, row.created_at,
                           row.expires_at, idle_end, row.reauth_at, left)

    async def reauthenticate(
        self, principal: AdminPrincipal, token: str, *, code: object = None,
        recovery_code: object = None, client_address: str | None = None,
    ) -> int:
        """Prove the second factor again on a live session ("recent sign-in"); returns when."""
        if principal.via != "session":
            raise Forbidden("this needs a signed-in admin, not an API token",
                            code="session_required")
        token_hash = self._session_hash(token)
        now = int(self._clock.now())

        async def unit(conn: Any) -> bool | None:
            member = await member_store.get_member(conn, principal.member_id)
            if member is None or await store.get_session(conn, token_hash) is None:
                return None
            subjects = self._subjects(member.phone_hmac, client_address)
            await self._check_limits(conn, subjects, now)
            passed = await self._second_factor(conn, member.user_id, code, recovery_code, now)
            if passed is None:
                await self._failure_unit(subjects, now, member=member, stage="reauth")(conn)
                return False
            await store.mark_reauthenticated(conn, token_hash, now)
            await self._audit(conn, now, member, "admin.reauthenticated",
                              {"method": passed.method, "session": principal.credential_id})
            return True

        outcome = await self._db.write("admin.session.reauthenticate", unit)
        if outcome is None:
            raise Unauthenticated("the admin session has ended; sign in again",
                                  code="admin_session_expired")
        if not outcome:
            raise _second_factor_rejected()
        return now

    async def sign_out(self, principal: AdminPrincipal, token: str) -> None:
        if principal.via != "session":
            raise Forbidden("API tokens are revoked, not signed out", code="session_required")
        token_hash = self._session_hash(token)
        now = int(self._clock.now())

        async def unit(conn: Any) -> None:
            if await store.delete_session(conn, token_hash):
                await append_event(conn, at=now, org_id=principal.org_id, actor=principal.actor,
                                   event="admin.signed_out", target=principal.actor,
                                   data={"session": principal.credential_id})

        await self._db.write("admin.session.sign_out", unit)

    # -- operator -------------------------------------------------------------------------------

    async def reset_second_factor(self, user_id: str, *, actor: str = "operator") -> None:
        """Forget an admin's TOTP secret and recovery codes and end their sessions; the next
        sign-in enrols a new authenticator (the operator's way back in for a lost phone)."""
        now = int(self._clock.now())

        async def unit(conn: Any) -> None:
            member = await member_store.get_member(conn, user_id)
            if member is None or member.role != "admin":
                raise NotFound("no admin with that id", code="admin_not_found")
            await store.delete_totp(conn, user_id)
            ended = await store.delete_sessions_of(conn, user_id)
            await append_event(conn, at=now, org_id=member.org_id, actor=actor,
                               event="admin.second_factor_reset", target=f"member:{user_id}",
                               data={"sessions_ended": ended})

        await self._db.write("admin.reset_second_factor", unit)

    async def purge_expired(self) -> None:
        now = int(self._clock.now())

        async def unit(conn: Any) -> None:
            await store.purge_expired(
                conn, now=now, idle_before=now - self._settings.session_idle_seconds,
                failures_before=now - FAILURE_WINDOW,
            )

        await self._db.write("admin.purge_expired", unit)

    # -- failures, limits and audit -------------------------------------------------------------

    def _subjects(self, phone_lookup: bytes, client_address: str | None
                  ) -> list[tuple[str, bytes, int]]:
        s = self._settings
        subjects = [("account", self._subject_hash("account", phone_lookup),
                     s.failed_sign_ins_per_account_15min)]
        if client_address:
            subjects.append(("address", self._subject_hash("address", client_address),
                             s.failed_sign_ins_per_address_15min))
        return subjects

    async def _check_limits(self, conn: Any, subjects: list[tuple[str, bytes, int]], now: int
                            ) -> None:
        for kind, subject, cap in subjects:
            failed = await store.failures_since(conn, kind, subject, now - FAILURE_WINDOW + 1)
            if len(failed) >= cap:
                raise RateLimited(
                    "too many failed sign-in attempts; try again later",
                    retry_after=max(1, failed[len(failed) - cap] + FAILURE_WINDOW - now),
                    code="sign_in_rate_limited",
                )

    def _failure_unit(
        self, subjects: list[tuple[str, bytes, int]], now: int, *, stage: str,
        lookup: bytes | None = None, member: member_store.MemberRow | None = None,
    ) -> Any:
        async def unit(conn: Any) -> None:
            for kind, subject, _cap in subjects:
                await store.record_failure(conn, kind, subject, now)
            account = member
            if account is None and lookup is not None:
                account = await member_store.member_by_phone(conn, lookup)
            if account is not None and account.role == "admin":
                # Only admins' accounts are audited; an unknown number has no org to tell.
                await append_event(conn, at=now, org_id=account.org_id, actor="anonymous",
                                   event="admin.sign_in_failed",
                                   target=f"member:{account.user_id}", data={"stage": stage})

        return unit

    async def _audit(self, conn: Any, now: int, member: member_store.MemberRow, event: str,
                     data: dict[str, Any] | None = None) -> None:
        ref = f"member:{member.user_id}"
        await append_event(conn, at=now, org_id=member.org_id, actor=ref, event=event,
                           target=ref, data=data)
