"""Organisations: operator creation, limits, listing, and self-service sign-up by OTP."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from semafore.services import Forbidden, InvalidInput, NotFound
from semafore.services.otp import CodeRejected
from support.identity import IdentityEnv, identity_env

ADMIN = "+447700900001"


@pytest.fixture
async def env(tmp_path: Path):
    async with identity_env(tmp_path) as env:
        yield env


async def test_create_org_with_its_first_admin(env: IdentityEnv) -> None:
    org, admin = await env.services.orgs.create_org("  Acme Ltd ", ADMIN)
    assert org.name == "Acme Ltd" and org.member_limit == 5 and org.member_count == 1
    assert org.org_id.startswith("o_") and len(org.org_id) == 34
    assert admin.role == "admin" and admin.org_id == org.org_id and admin.phone == ADMIN


async def test_create_org_with_a_member_limit(env: IdentityEnv) -> None:
    org, _ = await env.services.orgs.create_org("Acme", ADMIN, member_limit=250)
    assert org.member_limit == 250


async def test_create_if_absent_at_once_creates_one_org(env: IdentityEnv) -> None:
    outcomes = await asyncio.gather(*(
        env.services.orgs.create_org_if_absent("Acme", ADMIN) for _ in range(8)
    ))
    created = [org for org, admin in outcomes if admin is not None]
    assert len(created) == 1
    assert {org.org_id for org, _ in outcomes} == {created[0].org_id}
    (org,) = await env.services.orgs.list_orgs()
    assert (org.name, org.member_count) == ("Acme", 1)


@pytest.mark.parametrize("name", ["", "   ", "x" * 101, "bad\x00name", "tab\tname", 5])
async def test_bad_names_are_refused(env: IdentityEnv, name: object) -> None:
    with pytest.raises(InvalidInput) as caught:
        await env.services.orgs.create_org(name, ADMIN)
    assert caught.value.code == "org_name_invalid"


async def test_set_limit_and_list(env: IdentityEnv) -> None:
    a, _ = await env.services.orgs.create_org("A", ADMIN)
    b, _ = await env.services.orgs.create_org("B", "+447700900002")
    updated = await env.services.orgs.set_member_limit(b.org_id, 50, actor="operator")
    assert updated.member_limit == 50
    assert [(o.name, o.member_limit) for o in await env.services.orgs.list_orgs()] == [
        ("A", 5), ("B", 50)
    ]
    assert a.org_id != b.org_id


@pytest.mark.parametrize("limit", [0, -1, "10", 1.5, True, 10_000_001])
async def test_bad_limits_are_refused(env: IdentityEnv, limit: object) -> None:
    org, _ = await env.services.orgs.create_org("A", ADMIN)
    with pytest.raises(InvalidInput) as caught:
        await env.services.orgs.set_member_limit(org.org_id, limit, actor="operator")
    assert caught.value.code == "member_limit_invalid"


async def test_unknown_org(env: IdentityEnv) -> None:
    with pytest.raises(NotFound):
        await env.services.orgs.set_member_limit("o_nope", 10, actor="operator")
    with pytest.raises(NotFound):
        await env.services.orgs.get_org("o_nope")


async def test_self_service_signup_is_off_by_default(env: IdentityEnv) -> None:
    with pytest.raises(Forbidden) as caught:
        await env.services.orgs.request_signup_code(ADMIN, client_address="192.0.2.1")
    assert caught.value.code == "signup_disabled"
    with pytest.raises(Forbidden):
        await env.services.orgs.sign_up("Acme", ADMIN, "123456")


async def test_self_service_signup_proves_the_admins_number(tmp_path: Path) -> None:
    async with identity_env(tmp_path, orgs={"self_service_signup": True}) as env:
        await env.services.orgs.request_signup_code(ADMIN, client_address="192.0.2.1")
        code = await env.last_code(ADMIN)
        with pytest.raises(CodeRejected):
            await env.services.orgs.sign_up("Acme", ADMIN, "000000" if code != "000000" else "1")
        org, admin = await env.services.orgs.sign_up("Acme", ADMIN, code)
        assert org.member_limit == 5 and admin.role == "admin" and admin.phone == ADMIN
        # An enrolment code is not a sign-up code and the reverse.
        await env.services.enrolment.request_code(ADMIN, client_address="192.0.2.1")
        enrol_code = await env.last_code(ADMIN)
        with pytest.raises(CodeRejected):
            await env.services.orgs.sign_up("Again", ADMIN, enrol_code)


async def test_signup_for_a_number_with_an_account_sends_nothing(tmp_path: Path) -> None:
    async with identity_env(tmp_path, orgs={"self_service_signup": True}) as env:
        await env.services.orgs.create_org("Acme", ADMIN)
        await env.services.orgs.request_signup_code(ADMIN, client_address="192.0.2.1")
        assert await env.codes_for(ADMIN) == []
        with pytest.raises(CodeRejected):
            await env.services.orgs.sign_up("Acme 2", ADMIN, "123456")
