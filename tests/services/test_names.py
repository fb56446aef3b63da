"""Member display names and device names: validation, storage, editing, CSV import, the
audit log naming members by id only, and the audited, capped test message."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from semafore.services import InvalidInput, NotFound, RateLimited
from semafore.services.names import parse_device_name, parse_display_name
from semafore.storage import audit as audit_store
from semafore.storage.otp_spool import read_spool
from support.identity import EnrollingDevice, IdentityEnv, identity_env, org_with_member

ADMIN = "+447700900001"
MEMBER = "+447700900002"


@pytest.fixture
async def env(tmp_path: Path):
    async with identity_env(tmp_path) as env:
        yield env


async def audit_entries(env: IdentityEnv) -> list:
    async with env.database.read() as conn:
        return [e async for e in audit_store.iter_entries(conn)]


@pytest.mark.parametrize("value,expected", [
    (None, None),
    ("Alice", "Alice"),
    ("  Alice Smith \t", "Alice Smith"),
    ("Zoë Ångström", "Zoë Ångström"),
    ("Ame\u0301lie", "Amélie"),  # NFC
    ("渡辺 さくら", "渡辺 さくら"),
    ("Alice's phone 📱", "Alice's phone 📱"),
    ("👩\u200d💻 Dev", "👩\u200d💻 Dev"),  # a zero-width joiner inside an emoji is fine
    ("x" * 64, "x" * 64),
    ("<script>alert(1)</script>", "<script>alert(1)</script>"),  # escaped when shown
])
def test_names_accepted(value: object, expected: str | None) -> None:
    assert parse_display_name(value) == expected
    assert parse_device_name(value) == expected


@pytest.mark.parametrize("value", [
    "", "   ", "x" * 65, "Al\nice", "Al\x00ice", "tab\there", "Al\x7fice", "a\u2028line",
    "evil\u202eexe.txt", "\u2066isolate\u2069", 42, ["Alice"], {"name": "Alice"}, True,
])
def test_names_refused_with_a_code(value: object) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_display_name(value)
    assert caught.value.code == "display_name_invalid"
    assert caught.value.details == {"field": "display_name"}
    with pytest.raises(InvalidInput) as caught:
        parse_device_name(value)
    assert caught.value.code == "device_name_invalid"


async def test_display_name_when_adding_listing_and_editing(env: IdentityEnv) -> None:
    s = env.services
    org, admin = await s.orgs.create_org("Acme", ADMIN)
    member = await s.members.add_member(
        org.org_id, MEMBER, display_name="  Alice Smith ", actor="operator"
    )
    assert member.display_name == "Alice Smith"
    listed = {m.user_id: m.display_name for m in await s.members.list_members(org.org_id)}
    assert listed == {admin.user_id: None, member.user_id: "Alice Smith"}

    with pytest.raises(InvalidInput) as caught:
        await s.members.add_member(org.org_id, "+447700900003", display_name="x" * 65,
                                   actor="operator")
    assert caught.value.code == "display_name_invalid"
    assert len(await s.members.list_members(org.org_id)) == 2  # nothing was added

    renamed = await s.members.set_display_name(org.org_id, member.user_id, "Alice S.",
                                               actor="operator")
    assert renamed.display_name == "Alice S."
    both = await s.members.update(org.org_id, member.user_id,
                                  {"role": "admin", "display_name": "Alice"}, actor="operator")
    assert (both.role, both.display_name) == ("admin", "Alice")
    cleared = await s.members.set_display_name(org.org_id, member.user_id, None,
                                               actor="operator")
    assert cleared.display_name is None

    with pytest.raises(InvalidInput) as caught:
        await s.members.update(org.org_id, member.user_id, {}, actor="operator")
    assert caught.value.code == "field_missing"
    with pytest.raises(InvalidInput):
        await s.members.update(org.org_id, member.user_id, {"display_name": "a\nb"},
                               actor="operator")
    other, _ = await s.orgs.create_org("Other", "+447700900050")
    with pytest.raises(NotFound):
        await s.members.set_display_name(other.org_id, member.user_id, "Mallory",
                                         actor="operator")
    assert (await s.members.get_member(org.org_id, member.user_id)).display_name is None


async def test_audit_names_members_by_id_never_by_display_name(env: IdentityEnv) -> None:
    s = env.services
    org_id, _admin_id, member_id = await org_with_member(env)
    await s.members.set_display_name(org_id, member_id, "Secret Name", actor="operator")
    await s.members.set_display_name(org_id, member_id, "Secret Name", actor="operator")  # same
    await s.members.add_member(org_id, "+447700900003", display_name="Other Secret",
                               actor="operator")
    entries = await audit_entries(env)
    renames = [e for e in entries if e.event == "member.display_name_changed"]
    assert len(renames) == 1  # an unchanged name is not an event
    assert renames[0].target == f"member:{member_id}"
    dumped = json.dumps([[e.actor, e.target, e.data] for e in entries])
    assert "Secret" not in dumped


async def test_csv_import_with_display_names(env: IdentityEnv) -> None:
    s = env.services
    org, _ = await s.orgs.create_org("Acme", ADMIN, member_limit=20)
    csv_text = ("phone,display_name,role\n"
                "+447700900002,Alice Smith,\n"
                "+447700900003,,admin\n"
                "+447700900004,\"Smith, Bob\",member\n")
    report = await s.members.import_csv(org.org_id, csv_text, actor="operator")
    assert report.added == 3
    names = {m.phone: (m.display_name, m.role) for m in await s.members.list_members(org.org_id)}
    assert names["+447700900002"] == ("Alice Smith", "member")
    assert names["+447700900003"] == (None, "admin")
    assert names["+447700900004"] == ("Smith, Bob", "member")
    # A header in the usual order names only some columns; the rest stay positional.
    await s.members.import_csv(org.org_id, "phone\n+447700900008,admin,Dave\n",
                               actor="operator")
    names = {m.phone: (m.display_name, m.role) for m in await s.members.list_members(org.org_id)}
    assert names["+447700900008"] == ("Dave", "admin")

    # Positional third column, and a bad name rejects the whole file with a row report.
    with pytest.raises(InvalidInput) as caught:
        await s.members.import_csv(
            org.org_id, "+447700900005,member,Carol\n+447700900006,member," + "x" * 65 + "\n",
            actor="operator",
        )
    assert caught.value.details["rows"] == [
        {"row": 2, "status": "invalid", "code": "display_name_invalid"}
    ]
    assert len(await s.members.list_members(org.org_id)) == 5

    with pytest.raises(InvalidInput) as caught:
        await s.members.import_csv(org.org_id, "phone,nickname\n+447700900007,x\n",
                                   actor="operator")
    assert caught.value.code == "csv_invalid"


async def test_device_name_given_at_registration(env: IdentityEnv) -> None:
    s = env.services
    org_id, _, member_id = await org_with_member(env)
    await s.enrolment.request_code(MEMBER, client_address="192.0.2.1")
    ticket = await s.enrolment.verify_code(MEMBER, await env.last_code(MEMBER))
    device = EnrollingDevice()
    body = device.registration(ticket.user_id, ticket.device_id, device_name="x" * 65)
    with pytest.raises(InvalidInput) as caught:
        await s.enrolment.register(ticket.ticket, body)
    assert caught.value.code == "device_name_invalid"
    body["device_name"] = " Alice's phone "
    registration = await s.enrolment.register(ticket.ticket, body)  # the ticket is still good
    listed = await s.devices.list_devices(org_id, user_id=member_id, status="pending")
    assert [(d.device_id, d.device_name) for d in listed] == [
        (registration.device_id, "Alice's phone")
    ]
    entries = await audit_entries(env)
    assert "Alice" not in json.dumps([[e.actor, e.target, e.data] for e in entries])


async def test_test_message_is_audited_capped_and_goes_to_the_admin_only(
    env: IdentityEnv,
) -> None:
    s = env.services
    org_id, admin_id, _ = await org_with_member(env)
    actor = f"member:{admin_id}"
    phone = await s.otp.send_test(org_id=org_id, member_id=admin_id, actor=actor)
    assert phone == ADMIN
    sent = [m for m in read_spool(env.spool_dir) if m["to"] == ADMIN]
    assert len(sent) == 1 and "test message" in sent[0]["message"]

    entries = [e for e in await audit_entries(env) if e.event == "otp.test_sent"]
    assert [(e.org_id, e.actor, e.target, e.data) for e in entries] == [
        (org_id, actor, f"member:{admin_id}", '{"provider":"file"}')
    ]
    assert ADMIN not in json.dumps([[e.actor, e.target, e.data] for e in entries])

    for _ in range(2):
        await s.otp.send_test(org_id=org_id, member_id=admin_id, actor=actor)
    with pytest.raises(RateLimited) as caught:
        await s.otp.send_test(org_id=org_id, member_id=admin_id, actor=actor)
    assert caught.value.code == "test_message_rate_limited"
    assert len([e for e in await audit_entries(env) if e.event == "otp.test_sent"]) == 3
    env.clock.advance(15 * 60)
    await s.otp.send_test(org_id=org_id, member_id=admin_id, actor=actor)

    # Test sends do not use up the number's sign-in codes.
    await s.enrolment.request_code(ADMIN, client_address=None)

    other, other_admin = await s.orgs.create_org("Other", "+447700900050")
    with pytest.raises(NotFound):
        await s.otp.send_test(org_id=other.org_id, member_id=admin_id, actor=actor)
    assert other_admin.user_id != admin_id
