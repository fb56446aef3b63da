"""One-time codes: issue, rate-limit, deliver, verify.

* 6 digits from ``secrets``; stored only as an HMAC; one live code per number and purpose.
* A code expires after ``otp.code_ttl_seconds``, works once, and dies after
  ``otp.max_failed_tries`` wrong guesses.
* Sends are capped per number (per 15 minutes and per day) and per client address.
* Callers get the same answer whether the number belongs to anyone or not: the same unit of
  work runs (a code is stored either way), and delivery happens after the answer, in the
  background, so a slow gateway does not tell anything either.
* Verification checks and consumes the code in one unit of work, with the caller's follow-up
  (``on_success``) in the same transaction: concurrent attempts with one code succeed once.
* An admin's test message (``send_test``) goes only to that admin's own number, carries no
  code, has caps of its own and is audited (``otp.test_sent``) before it is handed over.

Codes, numbers and client addresses are never logged.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from semafore.config import OtpSettings
from semafore.services import identity_events as events
from semafore.services.clock import Clock
from semafore.services.errors import NotFound, RateLimited, Unauthenticated
from semafore.services.keyed_hash import KeyedHash
from semafore.services.otp_providers import OtpDeliveryError, OtpProvider, render_template
from semafore.services.phone import PhoneVault, parse_phone
from semafore.storage import Database
from semafore.storage import members as member_store
from semafore.storage import otp_store as store

log = logging.getLogger("semafore.otp")

T = TypeVar("T")
CODE_DIGITS = 6
WINDOW_SHORT = 15 * 60
WINDOW_DAY = 24 * 3600

# Purposes keep codes for different flows apart (an enrolment code cannot sign an admin in).
PURPOSE_ENROL = "enrol"
PURPOSE_ADMIN_SIGN_IN = "admin_sign_in"
PURPOSE_ORG_SIGNUP = "org_signup"
PURPOSES = frozenset({PURPOSE_ENROL, PURPOSE_ADMIN_SIGN_IN, PURPOSE_ORG_SIGNUP})

Eligibility = Callable[[Any], Awaitable[bool]]
Limit = tuple[str, bytes, int, int]  # kind, subject, window seconds, cap

TEST_MESSAGE = (
    "SemaFore: this is a test message from your admin portal. Your code provider works; "
    "no action is needed."
)
TEST_SENDS_15MIN = 3
TEST_SENDS_DAY = 10


class CodeRejected(Unauthenticated):
    """Wrong, expired, used, killed, or never sent: deliberately one answer for all."""

    code = "otp_invalid"

    def __init__(self) -> None:
        super().__init__("the code is wrong or has expired; request a new one")


class _Failed:
    pass


_FAILED = _Failed()


def new_code() -> str:
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


class OtpService:
    def __init__(
        self,
        database: Database,
        clock: Clock,
        settings: OtpSettings,
        vault: PhoneVault,
        otp_key: bytes,
        provider: OtpProvider,
    ) -> None:
        self._db = database
        self._clock = clock
        self._settings = settings
        self._vault = vault
        self._code_hash = KeyedHash(otp_key, "semafore/otp-code/v1")
        self._subject_hash = KeyedHash(otp_key, "semafore/otp-subject/v1")
        self.provider = provider
        self._deliveries: set[asyncio.Task[None]] = set()

    # -- sending --------------------------------------------------------------------------------

    async def request_code(
        self,
        phone: str,
        *,
        purpose: str,
        client_address: str | None,
        eligible: Eligibility,
    ) -> None:
        """Issue a code for ``phone``; deliver it only if ``eligible(conn)`` says so.

        Raises RateLimited (the same way for every number) when a cap is reached.
        """
        phone = parse_phone(phone)
        _check_purpose(purpose)
        now = int(self._clock.now())
        code = new_code()
        phone_hmac = self._vault.lookup_hash(phone)
        number_subject = self._subject_hash("number", phone)
        address_subject = self._subject_hash("address", client_address or "")
        s = self._settings
        limits = [
            ("number", number_subject, WINDOW_SHORT, s.sends_per_number_15min),
            ("number", number_subject, WINDOW_DAY, s.sends_per_number_day),
        ]
        if client_address:
            limits += [
                ("address", address_subject, WINDOW_SHORT, s.sends_per_address_15min),
                ("address", address_subject, WINDOW_DAY, s.sends_per_address_day),
            ]

        async def unit(conn: Any) -> bool:
            await _enforce(conn, limits, now, "too many codes requested; try again later")
            await store.record_send(conn, "number", number_subject, now)
            if client_address:
                await store.record_send(conn, "address", address_subject, now)
            await store.put_code(
                conn,
                phone_hmac=phone_hmac,
                purpose=purpose,
                code_hmac=self._code_hash(purpose, phone_hmac, code),
                now=now,
                expires_at=now + s.code_ttl_seconds,
            )
            return await eligible(conn)

        deliver = await self._db.write(f"otp.request.{purpose}", unit)
        if deliver:
            message = render_template(
                s.message, code=code, minutes=max(1, s.code_ttl_seconds // 60)
            )
            task = asyncio.create_task(self._deliver(phone, message, purpose))
            self._deliveries.add(task)
            task.add_done_callback(self._deliveries.discard)

    async def _deliver(self, phone: str, message: str, purpose: str) -> None:
        try:
            await self.provider.send(phone, message)
        except OtpDeliveryError as exc:
            log.error("OTP delivery failed: provider=%s purpose=%s: %s",
                      self.provider.name, purpose, exc.message)
        except Exception:
            log.exception("OTP delivery failed: provider=%s purpose=%s",
                          self.provider.name, purpose)

    async def send_test(self, *, org_id: str, member_id: str, actor: str) -> str:
        """Send the fixed test message to the member's own number, now (so a failure shows).

        Capped per number (``TEST_SENDS_15MIN``, ``TEST_SENDS_DAY``), apart from code sends so
        that testing never locks an admin out of signing in. The audit entry names the member
        by id: no number, no message. Returns the number, for the admin's own screen only.
        """
        now = int(self._clock.now())

        async def unit(conn: Any) -> str:
            row = await member_store.get_member(conn, member_id)
            if row is None or row.org_id != org_id:
                raise NotFound("no such member", code="member_not_found")
            phone = self._vault.open(row.phone_sealed)
            subject = self._subject_hash("test", phone)
            limits: list[Limit] = [
                ("number", subject, WINDOW_SHORT, TEST_SENDS_15MIN),
                ("number", subject, WINDOW_DAY, TEST_SENDS_DAY),
            ]
            await _enforce(conn, limits, now, "too many test messages; try again later",
                           code="test_message_rate_limited")
            await store.record_send(conn, "number", subject, now)
            await events.record(
                conn, at=now, org_id=org_id, actor=actor, event="otp.test_sent",
                target=events.member_ref(member_id), data={"provider": self.provider.name},
            )
            return phone

        phone = await self._db.write("otp.send_test", unit)
        await self.provider.send(phone, TEST_MESSAGE)
        return phone

    async def wait_for_deliveries(self) -> None:
        """Wait until every delivery started so far has finished (tests, shutdown)."""
        while self._deliveries:
            await asyncio.gather(*list(self._deliveries), return_exceptions=True)

    # -- verifying ------------------------------------------------------------------------------

    async def verify_code(
        self,
        phone: str,
        code: str,
        *,
        purpose: str,
        on_success: Callable[[Any], Awaitable[T]],
        unit_name: str | None = None,
    ) -> T:
        """Check and consume the code, then run ``on_success(conn)`` in the same unit of work.

        ``on_success`` may return ``None``-like failure by raising CodeRejected itself (e.g. no
        account for the number) so every failure looks the same. Raises CodeRejected.
        """
        _check_purpose(purpose)
        if not isinstance(phone, str) or not isinstance(code, str):
            raise CodeRejected()
        phone = parse_phone(phone)
        now = int(self._clock.now())
        phone_hmac = self._vault.lookup_hash(phone)
        well_formed = len(code) == CODE_DIGITS and code.isascii() and code.isdigit()
        presented = self._code_hash(purpose, phone_hmac, code if well_formed else "x")
        max_tries = self._settings.max_failed_tries

        async def unit(conn: Any) -> T | _Failed:
            row = await store.get_code(conn, phone_hmac, purpose)
            if row is None:
                return _FAILED
            if row.expires_at <= now:
                await store.delete_code(conn, phone_hmac, purpose)
                return _FAILED
            if not (well_formed and hmac.compare_digest(row.code_hmac, presented)):
                tries = await store.record_failed_try(conn, phone_hmac, purpose)
                if tries >= max_tries:
                    await store.delete_code(conn, phone_hmac, purpose)
                return _FAILED
            await store.delete_code(conn, phone_hmac, purpose)
            return await on_success(conn)

        result = await self._db.write(unit_name or f"otp.verify.{purpose}", unit)
        if isinstance(result, _Failed):
            raise CodeRejected()
        return result

    # -- housekeeping ---------------------------------------------------------------------------

    async def purge_expired(self) -> None:
        now = int(self._clock.now())

        async def unit(conn: Any) -> None:
            await store.delete_expired_codes(conn, now)
            await store.prune_sends(conn, now - WINDOW_DAY)

        await self._db.write("otp.purge_expired", unit)


async def _enforce(
    conn: Any, limits: list[Limit], now: int, message: str, *, code: str = "otp_rate_limited"
) -> None:
    """RateLimited (with the seconds until a slot frees up) when any cap is reached."""
    for kind, subject, window, cap in limits:
        sent = await store.sends_since(conn, kind, subject, now - window + 1)
        if len(sent) >= cap:
            retry_after = max(1, sent[len(sent) - cap] + window - now)
            raise RateLimited(message, retry_after=retry_after, code=code)


def _check_purpose(purpose: str) -> None:
    if purpose not in PURPOSES:
        raise ValueError(f"unknown OTP purpose {purpose!r}")  # a programming error
