"""Admin sign-in on a manual clock: phone code then TOTP (enrolled at first sign-in), recovery
codes, step reuse, sessions (idle and absolute expiry, re-auth, sign-out), failure limits and
their audit entries, API tokens, and the separation from device tokens."""

from __future__ import annotations

from pathlib import Path

import pytest

from semafore.services import Forbidden, RateLimited, Unauthenticated
from semafore.services import totp as totp_codes
from semafore.services.admin_auth import SESSION_PREFIX
from semafore.services.otp import CodeRejected
from semafore.storage.audit import EntryFilter, list_entries
from support.admin import ADDRESS, ADMIN_PHONE, AdminEnv, admin_env
from support.identity import approved_device

MEMBER_PHONE = "+447700900002"
UNKNOWN_PHONE = "+447700900999"
STEP = totp_codes.STEP_SECONDS


@pytest.fixture
async def env(tmp_path: Path):
    async with admin_env(tmp_path) as env:
        org, admin = await env.identity.services.orgs.create_org("Acme", ADMIN_PHONE)
        await env.identity.services.members.add_member(org.org_id, MEMBER_PHONE, actor="operator")
        env.org_id = org.org_id  # type: ignore[attr-defined]
        env.admin_id = admin.user_id  # type: ignore[attr-defined]
        yield env


async def events(env: AdminEnv, event: str | None = None) -> list:
    async with env.database.read() as conn:
        entries = await list_entries(conn, EntryFilter(all_orgs=True, event=event), limit=1000)
    return entries


async def raw_database(env: AdminEnv) -> bytes:
    path = Path(env.identity.settings.storage.database_path)
    return b"".join(p.read_bytes() for p in path.parent.glob("semafore.db*"))


# -- sign-in --------------------------------------------------------------------------------------


async def test_first_sign_in_enrols_totp_and_returns_recovery_codes_once(env: AdminEnv) -> None:
    challenge = await env.phone_step()
    assert challenge.next == "totp_enrolment"
    assert challenge.totp_uri is not None and challenge.totp_uri.startswith("otpauth://totp/")
    assert f"secret={challenge.totp_secret}" in challenge.totp_uri
    assert challenge.totp_qr_svg is not None and challenge.totp_qr_svg.startswith("<svg")
    env.clock.advance(STEP)
    session = await env.admin.admin_auth.complete_sign_in(
        challenge.ticket, code=env.totp_code(), client_address=ADDRESS)
    assert session.token.startswith(SESSION_PREFIX)
    assert len(session.token) - len(SESSION_PREFIX) >= 43  # 256 bits, base64url
    assert len(session.recovery_codes) == 10 == len(set(session.recovery_codes))
    assert session.org_id == env.org_id and session.member_id == env.admin_id
    principal = await env.admin.admin_auth.authenticate(session.token)
    assert (principal.org_id, principal.member_id, principal.via) == (
        env.org_id, env.admin_id, "session")
    assert [e.event for e in await events(env, "admin.")][::-1] == [
        "admin.totp_enrolled", "admin.signed_in"]

    second = await env.sign_in()
    assert second.recovery_codes == []
    challenge = await env.phone_step()
    assert challenge.next == "totp" and challenge.totp_secret is None and challenge.totp_uri is None


async def test_secrets_are_not_stored_in_clear(env: AdminEnv) -> None:
    session = await env.sign_in()
    raw = await raw_database(env)
    assert env.totp_secrets[ADMIN_PHONE].encode() not in raw
    assert session.token.encode() not in raw
    for code in session.recovery_codes:
        assert code.encode() not in raw and code.replace("-", "").encode() not in raw
    assert ADMIN_PHONE.encode() not in raw


async def test_unknown_and_non_admin_numbers_get_the_same_answer_and_no_code(
    env: AdminEnv,
) -> None:
    auth = env.admin.admin_auth
    for phone in (UNKNOWN_PHONE, MEMBER_PHONE):
        assert await auth.start_sign_in(phone, client_address=ADDRESS) is None
        assert await env.identity.codes_for(phone) == []
        with pytest.raises(CodeRejected):
            await auth.verify_phone_code(phone, "123456", client_address=ADDRESS)
    assert await events(env, "admin.sign_in_failed") == []


async def test_a_member_with_the_right_code_is_still_not_an_admin(env: AdminEnv) -> None:
    # The enrolment code of a plain member is for another purpose and cannot sign in.
    await env.identity.services.enrolment.request_code(MEMBER_PHONE, client_address=ADDRESS)
    code = await env.identity.last_code(MEMBER_PHONE)
    with pytest.raises(CodeRejected):
        await env.admin.admin_auth.verify_phone_code(MEMBER_PHONE, code, client_address=ADDRESS)


async def test_phone_code_is_single_use(env: AdminEnv) -> None:
    auth = env.admin.admin_auth
    await auth.start_sign_in(ADMIN_PHONE, client_address=ADDRESS)
    code = await env.identity.last_code(ADMIN_PHONE)
    await auth.verify_phone_code(ADMIN_PHONE, code, client_address=ADDRESS)
    with pytest.raises(CodeRejected):
        await auth.verify_phone_code(ADMIN_PHONE, code, client_address=ADDRESS)


async def test_sign_in_ticket_expires(env: AdminEnv) -> None:
    await env.sign_in()
    challenge = await env.phone_step()
    env.clock.advance(600)
    with pytest.raises(Unauthenticated) as err:
        await env.admin.admin_auth.complete_sign_in(
            challenge.ticket, code=env.totp_code(), client_address=ADDRESS)
    assert err.value.code == "sign_in_expired"


# -- TOTP -----------------------------------------------------------------------------------------


async def complete(env: AdminEnv, code: str | None = None, recovery: str | None = None):
    challenge = await env.phone_step()
    return await env.admin.admin_auth.complete_sign_in(
        challenge.ticket, code=code, recovery_code=recovery, client_address=ADDRESS)


async def test_totp_accepts_one_step_of_drift_either_way_and_no_more(env: AdminEnv) -> None:
    await env.sign_in()
    for offset in (-2, 2):
        env.clock.advance(10 * STEP)
        with pytest.raises(Unauthenticated):
            await complete(env, env.totp_code(offset_steps=offset))
    for offset in (-1, 0, 1):
        env.clock.advance(10 * STEP)
        await complete(env, env.totp_code(offset_steps=offset))


async def test_a_totp_code_is_accepted_once(env: AdminEnv) -> None:
    await env.sign_in()
    env.clock.advance(STEP)
    code = env.totp_code()
    await complete(env, code)
    with pytest.raises(Unauthenticated) as err:
        await complete(env, code)
    assert err.value.code == "second_factor_invalid"
    # An older step than the last one used is refused too, even inside the drift window.
    with pytest.raises(Unauthenticated):
        await complete(env, env.totp_code(offset_steps=-1))
    env.clock.advance(STEP)
    await complete(env, env.totp_code())


async def test_recovery_codes_work_once_each(env: AdminEnv) -> None:
    first = await env.sign_in()
    code = first.recovery_codes[3]
    session = await complete(env, recovery=code.upper().replace("-", " "))
    assert session.token.startswith(SESSION_PREFIX)
    signed_in = await events(env, "admin.signed_in")
    assert signed_in[0].data_dict["method"] == "recovery_code"
    with pytest.raises(Unauthenticated):
        await complete(env, recovery=code)
    info = await env.admin.admin_auth.session_info(
        await env.admin.admin_auth.authenticate(session.token), session.token)
    assert info.recovery_codes_left == 9


async def test_recovery_codes_do_not_replace_enrolment(env: AdminEnv) -> None:
    with pytest.raises(Unauthenticated):
        await complete(env, recovery="aaaaa-bbbbb")


async def test_wrong_second_factors_end_the_sign_in_after_five(env: AdminEnv) -> None:
    await env.sign_in()
    env.clock.advance(STEP)
    challenge = await env.phone_step()
    auth = env.admin.admin_auth
    for _ in range(5):
        with pytest.raises(Unauthenticated) as err:
            await auth.complete_sign_in(challenge.ticket, code="000000", client_address=ADDRESS)
        assert err.value.code == "second_factor_invalid"
    with pytest.raises(Unauthenticated) as err:
        await auth.complete_sign_in(challenge.ticket, code=env.totp_code(),
                                    client_address=ADDRESS)
    assert err.value.code == "sign_in_expired"
    failures = await events(env, "admin.sign_in_failed")
    assert len(failures) == 5
    assert all(e.target == f"member:{env.admin_id}" and e.actor == "anonymous" for e in failures)
    assert all(e.data_dict == {"stage": "second_factor"} for e in failures)


async def test_failed_sign_ins_are_rate_limited_per_account(env: AdminEnv) -> None:
    await env.sign_in()
    auth = env.admin.admin_auth
    for i in range(10):
        if i % 5 == 0:  # five wrong tries end a sign-in: start another
            challenge = await env.phone_step(address=f"192.0.2.{100 + i}")
        with pytest.raises(Unauthenticated):
            await auth.complete_sign_in(challenge.ticket, code="000000",
                                        client_address=f"192.0.2.{100 + i}")
    env.clock.advance(STEP)
    with pytest.raises(RateLimited) as err:
        await complete(env, env.totp_code())
    assert err.value.code == "sign_in_rate_limited" and err.value.retry_after > 0
    # The phone step is refused as well, right code or not.
    await auth.start_sign_in(ADMIN_PHONE, client_address=ADDRESS)
    with pytest.raises(RateLimited):
        await auth.verify_phone_code(ADMIN_PHONE, await env.identity.last_code(ADMIN_PHONE),
                                     client_address=ADDRESS)
    assert len(await events(env, "admin.sign_in_failed")) == 10
    env.clock.advance(15 * 60)
    await complete(env, env.totp_code())


async def test_wrong_phone_codes_count_and_are_audited(env: AdminEnv) -> None:
    auth = env.admin.admin_auth
    await auth.start_sign_in(ADMIN_PHONE, client_address=ADDRESS)
    with pytest.raises(CodeRejected):
        await auth.verify_phone_code(ADMIN_PHONE, "999999x", client_address=ADDRESS)
    failed = await events(env, "admin.sign_in_failed")
    assert [e.data_dict for e in failed] == [{"stage": "phone_code"}]
    assert failed[0].org_id == env.org_id


async def test_failed_sign_ins_are_rate_limited_per_address(tmp_path: Path) -> None:
    async with admin_env(tmp_path, admin={"failed_sign_ins_per_address_15min": 3}) as env:
        auth = env.admin.admin_auth
        for i in range(3):
            with pytest.raises(CodeRejected):
                await auth.verify_phone_code(f"+4477009005{i:02d}", "111111",
                                             client_address=ADDRESS)
        with pytest.raises(RateLimited):
            await auth.verify_phone_code("+447700900600", "111111", client_address=ADDRESS)
        with pytest.raises(CodeRejected):  # another address is not affected
            await auth.verify_phone_code("+447700900600", "111111", client_address="192.0.2.99")


# -- sessions -------------------------------------------------------------------------------------


async def test_session_ends_after_fifteen_idle_minutes(env: AdminEnv) -> None:
    session = await env.sign_in()
    auth = env.admin.admin_auth
    env.clock.advance(899)
    await auth.authenticate(session.token)  # activity moves the idle deadline
    env.clock.advance(899)
    await auth.authenticate(session.token)
    env.clock.advance(900)
    with pytest.raises(Unauthenticated) as err:
        await auth.authenticate(session.token)
    assert err.value.code == "admin_session_expired"
    env.clock.advance(-900)  # a dead session stays dead
    with pytest.raises(Unauthenticated):
        await auth.authenticate(session.token)


async def test_session_ends_after_twelve_hours_however_active(env: AdminEnv) -> None:
    session = await env.sign_in()
    auth = env.admin.admin_auth
    for _ in range(43_200 // 800):
        await auth.authenticate(session.token)
        env.clock.advance(800)
    # 54 * 800 = 43,200 s: exactly twelve hours after sign-in.
    with pytest.raises(Unauthenticated):
        await auth.authenticate(session.token)


async def test_session_limits_come_from_settings(tmp_path: Path) -> None:
    async with admin_env(tmp_path, admin={"session_idle_seconds": 60,
                                          "session_absolute_seconds": 120}) as env:
        await env.identity.services.orgs.create_org("Acme", ADMIN_PHONE)
        session = await env.sign_in()
        env.clock.advance(59)
        await env.admin.admin_auth.authenticate(session.token)
        env.clock.advance(59)
        await env.admin.admin_auth.authenticate(session.token)
        env.clock.advance(2)
        with pytest.raises(Unauthenticated):
            await env.admin.admin_auth.authenticate(session.token)


async def test_sign_out_ends_the_session_and_is_audited(env: AdminEnv) -> None:
    session = await env.sign_in()
    auth = env.admin.admin_auth
    principal = await auth.authenticate(session.token)
    await auth.sign_out(principal, session.token)
    with pytest.raises(Unauthenticated):
        await auth.authenticate(session.token)
    (entry,) = await events(env, "admin.signed_out")
    assert entry.actor == f"member:{env.admin_id}"


async def test_reauthentication_makes_the_sign_in_recent_again(env: AdminEnv) -> None:
    session = await env.sign_in()
    auth = env.admin.admin_auth
    principal = await auth.authenticate(session.token)
    assert principal.signed_in_recently(env.clock.now(), 900)
    env.clock.advance(800)
    principal = await auth.authenticate(session.token)
    env.clock.advance(200)
    assert not principal.signed_in_recently(env.clock.now(), 900)
    with pytest.raises(Unauthenticated):
        await auth.reauthenticate(principal, session.token, code="000000")
    when = await auth.reauthenticate(principal, session.token, code=env.totp_code())
    principal = await auth.authenticate(session.token)
    assert principal.reauthenticated_at == when
    assert principal.signed_in_recently(env.clock.now(), 900)
    assert len(await events(env, "admin.reauthenticated")) == 1


async def test_recent_sign_in_is_required_where_asked_and_tokens_never_have_it(
    env: AdminEnv,
) -> None:
    session = await env.sign_in()
    auth = env.admin.admin_auth
    auth.require_recent_sign_in(await auth.authenticate(session.token))
    env.clock.advance(899)
    principal = await auth.authenticate(session.token)
    auth.require_recent_sign_in(principal)
    env.clock.advance(1)
    with pytest.raises(Forbidden) as err:
        auth.require_recent_sign_in(principal)
    assert err.value.code == "recent_sign_in_required"
    await auth.reauthenticate(principal, session.token, code=env.totp_code())
    auth.require_recent_sign_in(await auth.authenticate(session.token))
    created = await env.admin.api_tokens.create(principal, name="ci", scopes=["devices:write"])
    with pytest.raises(Forbidden):
        auth.require_recent_sign_in(await auth.authenticate(created.secret))


async def test_sessions_end_when_the_member_is_no_longer_an_admin(env: AdminEnv) -> None:
    session = await env.sign_in()
    members = env.identity.services.members
    other = await members.add_member(env.org_id, "+447700900003", role="admin", actor="operator")
    await members.set_role(env.org_id, env.admin_id, "member", actor=f"member:{other.user_id}")
    with pytest.raises(Unauthenticated):
        await env.admin.admin_auth.authenticate(session.token)


async def test_operator_reset_of_the_second_factor(env: AdminEnv) -> None:
    session = await env.sign_in()
    await env.admin.admin_auth.reset_second_factor(env.admin_id)
    with pytest.raises(Unauthenticated):
        await env.admin.admin_auth.authenticate(session.token)
    challenge = await env.phone_step()
    assert challenge.next == "totp_enrolment"
    (entry,) = await events(env, "admin.second_factor_reset")
    assert entry.actor == "operator" and entry.data_dict == {"sessions_ended": 1}


# -- device tokens and admin credentials are not interchangeable ----------------------------------


async def test_a_device_token_is_not_an_admin_credential_and_the_reverse(env: AdminEnv) -> None:
    _, tokens = await approved_device(env.identity, env.org_id, ADMIN_PHONE)
    with pytest.raises(Unauthenticated) as err:
        await env.admin.admin_auth.authenticate(tokens.access_token)
    assert err.value.code == "admin_credentials_required"
    session = await env.sign_in()
    with pytest.raises(Unauthenticated):
        await env.identity.services.sessions.authenticate(session.token)


# -- API tokens -----------------------------------------------------------------------------------


async def test_api_tokens_are_scoped_expiring_revocable_and_audited(env: AdminEnv) -> None:
    session = await env.sign_in()
    auth, tokens = env.admin.admin_auth, env.admin.api_tokens
    principal = await auth.authenticate(session.token)
    created = await tokens.create(principal, name="nightly export", scopes=["audit:read"],
                                  expires_in_days=2)
    assert created.secret.startswith("sfk_") and created.secret.encode() not in (
        await raw_database(env))
    api = await auth.authenticate(created.secret, scope="audit:read")
    assert (api.via, api.org_id, api.scopes) == ("api_token", env.org_id,
                                                 frozenset({"audit:read"}))
    assert api.actor == f"token:{created.token.token_id}"
    with pytest.raises(Forbidden) as err:
        await auth.authenticate(created.secret, scope="members:write")
    assert err.value.code == "scope_missing"
    with pytest.raises(Forbidden):  # tokens do not mint tokens
        await tokens.create(api, name="x", scopes=["audit:read"])
    with pytest.raises(Forbidden):
        await auth.authenticate(created.secret, session_only=True)

    env.clock.advance(2 * 86_400)
    with pytest.raises(Unauthenticated):
        await auth.authenticate(created.secret)

    principal = await auth.authenticate((await env.sign_in()).token)
    second = await tokens.create(principal, name="ci", scopes=["members:read", "devices:read"])
    await auth.authenticate(second.secret, scope="devices:read")
    revoked = await tokens.revoke(principal, second.token.token_id)
    assert revoked.revoked_at is not None
    with pytest.raises(Unauthenticated) as err:
        await auth.authenticate(second.secret)
    assert err.value.code == "api_token_invalid"
    assert [t.token_id for t in await tokens.list(principal)] == [
        second.token.token_id, created.token.token_id]
    assert len(await events(env, "api_token.created")) == 2
    (entry,) = await events(env, "api_token.revoked")
    assert entry.target == f"token:{second.token.token_id}"
    assert "sfk_" not in (entry.data or "")


async def test_api_tokens_die_with_their_creators_admin_role(env: AdminEnv) -> None:
    principal = await env.admin.admin_auth.authenticate((await env.sign_in()).token)
    created = await env.admin.api_tokens.create(principal, name="ci", scopes=["members:read"])
    members = env.identity.services.members
    other = await members.add_member(env.org_id, "+447700900003", role="admin", actor="operator")
    await members.set_role(env.org_id, env.admin_id, "member", actor=f"member:{other.user_id}")
    with pytest.raises(Unauthenticated):
        await env.admin.admin_auth.authenticate(created.secret)


async def test_api_token_input_is_checked(env: AdminEnv) -> None:
    principal = await env.admin.admin_auth.authenticate((await env.sign_in()).token)
    tokens = env.admin.api_tokens
    for kwargs in (
        {"name": "x", "scopes": []},
        {"name": "x", "scopes": ["everything"]},
        {"name": "", "scopes": ["audit:read"]},
        {"name": "x", "scopes": ["audit:read"], "expires_in_days": 366},
        {"name": "x", "scopes": ["audit:read"], "expires_in_days": "7"},
    ):
        with pytest.raises(Exception) as err:
            await tokens.create(principal, **kwargs)
        assert getattr(err.value, "kind", None) == "invalid", kwargs
    with pytest.raises(Exception) as err:
        await tokens.revoke(principal, "tk_unknown")
    assert getattr(err.value, "kind", None) == "not_found"
