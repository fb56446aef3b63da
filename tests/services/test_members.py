"""Members: add, CSV import (all or nothing), list, roles, removal, org isolation, and phone
numbers never at rest in clear."""

from __future__ import annotations

from pathlib import Path

import pytest

from semafore.services import Conflict, InvalidInput, LimitReached, NotFound
from support.identity import IdentityEnv, approved_device, identity_env

ADMIN = "+447700900001"


@pytest.fixture
async def env(tmp_path: Path):
    async with identity_env(tmp_path) as env:
        yield env


async def new_org(env: IdentityEnv, admin: str = ADMIN, name: str = "Acme") -> str:
    org, _ = await env.services.orgs.create_org(name, admin)
    return org.org_id


async def test_add_and_list(env: IdentityEnv) -> None:
    org_id = await new_org(env)
    member = await env.services.members.add_member(org_id, "+447700900002", actor="operator")
    assert member.role == "member" and member.phone == "+447700900002"
    assert member.user_id.startswith("u_") and len(member.user_id) == 34  # 128 random bits
    listed = await env.services.members.list_members(org_id)
    assert [(m.phone, m.role, m.device_count, m.last_active) for m in listed] == [
        (ADMIN, "admin", 0, None),
        ("+447700900002", "member", 0, None),
    ]
    assert listed[1].joined_at == int(env.clock.now())


async def test_list_shows_device_count_and_last_active_day(env: IdentityEnv) -> None:
    org_id = await new_org(env)
    await env.services.members.add_member(org_id, "+447700900002", actor="operator")
    _, tokens = await approved_device(env, org_id, "+447700900002")
    await env.services.sessions.authenticate(tokens.access_token)
    listed = await env.services.members.list_members(org_id)
    member = next(m for m in listed if m.role == "member")
    assert member.device_count == 1
    assert member.last_active == "2027-01-15"  # ManualClock starts at 1.8e9 (day precision)


async def test_same_number_cannot_be_added_twice(env: IdentityEnv) -> None:
    org_id = await new_org(env)
    other = await new_org(env, "+447700900050", "Other")
    await env.services.members.add_member(org_id, "+447700900002", actor="operator")
    for target in (org_id, other):
        with pytest.raises(Conflict) as caught:
            await env.services.members.add_member(target, "+447700900002", actor="operator")
        assert caught.value.code == "member_exists"


async def test_member_limit_of_the_free_plan(env: IdentityEnv) -> None:
    org_id = await new_org(env)
    for i in range(4):
        await env.services.members.add_member(org_id, f"+44770090010{i}", actor="operator")
    with pytest.raises(LimitReached) as caught:
        await env.services.members.add_member(org_id, "+447700900200", actor="operator")
    assert caught.value.code == "member_limit_reached"
    await env.services.orgs.set_member_limit(org_id, 6, actor="operator")
    await env.services.members.add_member(org_id, "+447700900200", actor="operator")


async def test_csv_import_adds_every_row(env: IdentityEnv) -> None:
    org_id = await new_org(env)
    await env.services.orgs.set_member_limit(org_id, 10, actor="operator")
    text = "phone,role\n+447700900002\n\n+447700900003,admin\n +447700900004 , member \n"
    report = await env.services.members.import_csv(org_id, text, actor="operator")
    assert report.imported and report.added == 3
    assert [r.row for r in report.rows] == [2, 4, 5] and all(r.user_id for r in report.rows)
    roles = {m.phone: m.role for m in await env.services.members.list_members(org_id)}
    assert roles["+447700900003"] == "admin" and roles["+447700900004"] == "member"


async def test_csv_import_is_all_or_nothing_with_a_report_per_row(env: IdentityEnv) -> None:
    org_id = await new_org(env)
    await env.services.members.add_member(org_id, "+447700900009", actor="operator")
    text = "\n".join([
        "+447700900002",      # 1 fine
        "07700900003",        # 2 not E.164
        "+447700900002",      # 3 repeated in the file
        "+447700900009",      # 4 already a member
        "+447700900005,boss",  # 5 unknown role
        "+447700900006",      # 6 fine
    ])
    with pytest.raises(InvalidInput) as caught:
        await env.services.members.import_csv(org_id, text, actor="operator")
    assert caught.value.code == "import_rejected"
    assert caught.value.details["rows"] == [
        {"row": 2, "status": "invalid", "code": "phone_invalid"},
        {"row": 3, "status": "duplicate", "code": "duplicate_in_file"},
        {"row": 4, "status": "exists", "code": "member_exists"},
        {"row": 5, "status": "invalid", "code": "role_invalid"},
    ]
    assert len(await env.services.members.list_members(org_id)) == 2  # nothing imported


async def test_csv_import_refuses_to_exceed_the_member_limit(env: IdentityEnv) -> None:
    org_id = await new_org(env)
    text = "\n".join(f"+44770090030{i}" for i in range(5))
    with pytest.raises(InvalidInput) as caught:
        await env.services.members.import_csv(org_id, text, actor="operator")
    assert caught.value.details["rows"] == [
        {"row": 5, "status": "over_limit", "code": "member_limit_reached"}
    ]
    assert len(await env.services.members.list_members(org_id)) == 1


async def test_remove_member_ends_the_account(env: IdentityEnv) -> None:
    org_id = await new_org(env)
    member = await env.services.members.add_member(org_id, "+447700900002", actor="operator")
    registration, tokens = await approved_device(env, org_id, "+447700900002")
    await env.services.members.remove_member(org_id, member.user_id, actor="operator")
    with pytest.raises(NotFound):
        await env.services.members.get_member(org_id, member.user_id)
    assert await env.services.devices.get_device(member.user_id, registration.device_id) is None
    with pytest.raises(Exception) as caught:
        await env.services.sessions.authenticate(tokens.access_token)
    assert caught.value.code == "session_revoked"  # type: ignore[attr-defined]
    # The number can be added again later; it becomes a new account with a new user_id.
    again = await env.services.members.add_member(org_id, "+447700900002", actor="operator")
    assert again.user_id != member.user_id


async def test_last_admin_cannot_be_removed_or_demoted(env: IdentityEnv) -> None:
    org_id = await new_org(env)
    admin = (await env.services.members.list_members(org_id))[0]
    with pytest.raises(Conflict) as caught:
        await env.services.members.remove_member(org_id, admin.user_id, actor="operator")
    assert caught.value.code == "last_admin"
    with pytest.raises(Conflict):
        await env.services.members.set_role(org_id, admin.user_id, "member", actor="operator")
    second = await env.services.members.add_member(
        org_id, "+447700900002", role="admin", actor="operator"
    )
    await env.services.members.remove_member(org_id, admin.user_id, actor="operator")
    with pytest.raises(Conflict):
        await env.services.members.remove_member(org_id, second.user_id, actor="operator")


async def test_another_orgs_member_is_not_found(env: IdentityEnv) -> None:
    org_a = await new_org(env)
    org_b = await new_org(env, "+447700900050", "Other")
    member_b = await env.services.members.add_member(org_b, "+447700900051", actor="operator")
    for call in (
        env.services.members.get_member(org_a, member_b.user_id),
        env.services.members.remove_member(org_a, member_b.user_id, actor="operator"),
        env.services.members.set_role(org_a, member_b.user_id, "admin", actor="operator"),
        env.services.members.get_member(org_a, "u_does_not_exist"),
    ):
        with pytest.raises(NotFound) as caught:
            await call
        assert (caught.value.code, caught.value.message) == ("member_not_found", "no such member")
    assert [m.phone for m in await env.services.members.list_members(org_a)] == [ADMIN]


async def test_no_phone_number_is_stored_in_clear(env: IdentityEnv) -> None:
    org_id = await new_org(env)
    numbers = [f"+4477009004{i:02d}" for i in range(4)]
    for number in numbers:
        await env.services.members.add_member(org_id, number, actor="operator")
    await env.services.enrolment.request_code(numbers[0], client_address="192.0.2.1")
    await env.services.otp.wait_for_deliveries()
    await env.database.close()
    data_dir = env.settings.storage.data_dir
    blob = b"".join(p.read_bytes() for p in data_dir.glob("semafore.db*"))
    await env.database.open()
    for number in [ADMIN, *numbers]:
        digits = number[1:].encode()
        assert digits not in blob and digits.decode("ascii").encode("utf-16-le") not in blob
        assert digits[-8:] not in blob
