"""One-time codes: format, storage, expiry, tries, single use, send caps, enumeration,
concurrent verification; the console and file providers. (HTTP and SMTP providers:
test_otp_providers.py.)"""

from __future__ import annotations

import asyncio
import io
import logging
from pathlib import Path

import pytest

from semafore.services import InvalidInput, RateLimited
from semafore.services.otp import CodeRejected
from semafore.services.otp_providers import ConsoleProvider
from support.identity import IdentityEnv, identity_env

KNOWN = "+447700900002"
UNKNOWN = "+447700900999"


@pytest.fixture
async def env(tmp_path: Path):
    async with identity_env(tmp_path) as env:
        org, _ = await env.services.orgs.create_org("Acme", "+447700900001")
        await env.services.members.add_member(org.org_id, KNOWN, actor="operator")
        yield env


async def request(env: IdentityEnv, phone: str = KNOWN, address: str = "192.0.2.1") -> None:
    await env.services.enrolment.request_code(phone, client_address=address)


async def verify(env: IdentityEnv, code: str, phone: str = KNOWN):
    return await env.services.enrolment.verify_code(phone, code)


async def test_code_is_six_digits_and_only_its_keyed_hash_is_stored(env: IdentityEnv) -> None:
    await request(env)
    code = await env.last_code(KNOWN)
    assert len(code) == 6 and code.isdigit()
    raw = Path(env.settings.storage.database_path).read_bytes()
    await env.database.close()
    for path in Path(env.settings.storage.database_path).parent.glob("semafore.db*"):
        raw += path.read_bytes()
    assert code.encode() not in raw
    await env.database.open()


async def test_code_works_once(env: IdentityEnv) -> None:
    await request(env)
    code = await env.last_code(KNOWN)
    ticket = await verify(env, code)
    assert ticket.device_id == 1
    with pytest.raises(CodeRejected):
        await verify(env, code)


async def test_code_expires_after_ten_minutes(env: IdentityEnv) -> None:
    await request(env)
    code = await env.last_code(KNOWN)
    env.clock.advance(600)
    with pytest.raises(CodeRejected):
        await verify(env, code)


async def test_code_still_works_just_before_expiry(env: IdentityEnv) -> None:
    await request(env)
    code = await env.last_code(KNOWN)
    env.clock.advance(599)
    await verify(env, code)


async def test_five_wrong_tries_kill_the_code(env: IdentityEnv) -> None:
    await request(env)
    code = await env.last_code(KNOWN)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    for _ in range(5):
        with pytest.raises(CodeRejected):
            await verify(env, wrong)
    with pytest.raises(CodeRejected):
        await verify(env, code)


async def test_four_wrong_tries_leave_the_code_alive(env: IdentityEnv) -> None:
    await request(env)
    code = await env.last_code(KNOWN)
    for _ in range(4):
        with pytest.raises(CodeRejected):
            await verify(env, "not-a-code")
    await verify(env, code)


async def test_a_new_code_replaces_the_old_one(env: IdentityEnv) -> None:
    await request(env)
    first = await env.last_code(KNOWN)
    await request(env)
    second = await env.last_code(KNOWN)
    if first != second:
        with pytest.raises(CodeRejected):
            await verify(env, first)
    await verify(env, second)


async def test_three_sends_per_fifteen_minutes_per_number(env: IdentityEnv) -> None:
    for i in range(3):
        await request(env, address=f"192.0.2.{i}")
    with pytest.raises(RateLimited) as caught:
        await request(env, address="192.0.2.50")
    assert caught.value.code == "otp_rate_limited"
    assert 0 < caught.value.retry_after <= 900
    env.clock.advance(caught.value.retry_after)
    await request(env, address="192.0.2.51")


async def test_ten_sends_per_day_per_number(env: IdentityEnv) -> None:
    for i in range(10):
        await request(env, address=f"192.0.2.{i}")
        env.clock.advance(15 * 60)
    with pytest.raises(RateLimited) as caught:
        await request(env, address="192.0.2.99")
    assert caught.value.retry_after > 15 * 60
    env.clock.advance(caught.value.retry_after)
    await request(env, address="192.0.2.98")


async def test_per_address_cap(tmp_path: Path) -> None:
    async with identity_env(
        tmp_path, otp={"sends_per_address_15min": 2, "sends_per_address_day": 3}
    ) as env:
        await request(env, "+447700900101", address="198.51.100.7")
        await request(env, "+447700900102", address="198.51.100.7")
        with pytest.raises(RateLimited):
            await request(env, "+447700900103", address="198.51.100.7")
        await request(env, "+447700900103", address="198.51.100.8")  # another address is fine
        env.clock.advance(15 * 60)
        await request(env, "+447700900104", address="198.51.100.7")
        env.clock.advance(15 * 60)
        with pytest.raises(RateLimited):  # the daily cap
            await request(env, "+447700900105", address="198.51.100.7")


async def test_unknown_numbers_get_the_same_answer_and_no_message(env: IdentityEnv) -> None:
    assert await env.services.enrolment.request_code(KNOWN, client_address="192.0.2.1") is None
    assert await env.services.enrolment.request_code(UNKNOWN, client_address="192.0.2.1") is None
    assert await env.codes_for(UNKNOWN) == []
    assert len(await env.codes_for(KNOWN)) == 1
    # Rate limits apply to unknown numbers exactly as to members.
    for _ in range(2):
        await request(env, UNKNOWN)
        await request(env, KNOWN)
    with pytest.raises(RateLimited) as unknown:
        await request(env, UNKNOWN)
    with pytest.raises(RateLimited) as known:
        await request(env, KNOWN)
    assert (unknown.value.code, unknown.value.message, unknown.value.retry_after) == (
        known.value.code, known.value.message, known.value.retry_after
    )


async def test_verifying_for_unknown_numbers_looks_like_a_wrong_code(env: IdentityEnv) -> None:
    await request(env, UNKNOWN)
    with pytest.raises(CodeRejected) as unknown:
        await verify(env, "123456", UNKNOWN)
    await request(env)
    code = await env.last_code(KNOWN)
    with pytest.raises(CodeRejected) as known:
        await verify(env, f"{(int(code) + 1) % 1_000_000:06d}")
    assert (unknown.value.code, unknown.value.message) == (known.value.code, known.value.message)


async def test_concurrent_verification_of_one_code_succeeds_once(env: IdentityEnv) -> None:
    await request(env)
    code = await env.last_code(KNOWN)
    results = await asyncio.gather(*(verify(env, code) for _ in range(20)), return_exceptions=True)
    successes = [r for r in results if not isinstance(r, BaseException)]
    assert len(successes) == 1
    assert all(isinstance(r, CodeRejected) for r in results if r not in successes)


@pytest.mark.parametrize("phone", ["447700900002", "+44 7700 900002", "+0447700900", "+1234",
                                   "+1234567890123456", "", None, 447700900002, "+44770090000x"])
async def test_malformed_numbers_are_refused(env: IdentityEnv, phone: object) -> None:
    with pytest.raises(InvalidInput) as caught:
        await env.services.enrolment.request_code(phone, client_address=None)
    assert caught.value.code == "phone_invalid"


async def test_delivery_failure_is_logged_without_number_or_code(
    env: IdentityEnv, caplog: pytest.LogCaptureFixture
) -> None:
    env.services.otp.provider.spool_dir = Path("/proc/no-such-dir")  # type: ignore[attr-defined]
    with caplog.at_level(logging.ERROR, logger="semafore.otp"):
        await request(env)
        await env.services.otp.wait_for_deliveries()
    assert "OTP delivery failed" in caplog.text
    assert KNOWN not in caplog.text and "7700900002" not in caplog.text


async def test_console_provider_prints_a_loud_lab_only_warning() -> None:
    out = io.StringIO()
    await ConsoleProvider(out).send("+447700900002", "Your SemaFore code is 123456.")
    text = out.getvalue()
    assert "LAB ONLY — NOT FOR PRODUCTION" in text and "123456" in text


async def test_file_provider_writes_one_private_file_per_message(env: IdentityEnv) -> None:
    await request(env)
    await request(env)
    await env.services.otp.wait_for_deliveries()
    files = sorted(env.spool_dir.glob("*.json"))
    assert len(files) == 2
    assert all(f.stat().st_mode & 0o777 == 0o600 for f in files)


async def test_expired_codes_and_old_counters_are_purged(env: IdentityEnv) -> None:
    await request(env)
    env.clock.advance(2 * 86_400)
    await env.services.otp.purge_expired()
    async with env.database.read() as conn:
        for table in ("otp_codes", "otp_sends"):
            async with conn.execute(f"SELECT count(*) FROM {table}") as cursor:
                assert (await cursor.fetchone())[0] == 0, table
