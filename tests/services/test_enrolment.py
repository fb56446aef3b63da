"""Enrolment: code → ticket (user_id, device_id) → register keys → pending → approved tokens.
Every key encoding and both signatures are checked; bad ones get their own code."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from semafore.protocol import DHKeyPair
from semafore.protocol.encoding import b64u_encode
from semafore.services import InvalidInput, LimitReached
from semafore.services.enrolment import EnrolmentSecretRejected, TicketRejected
from support.identity import EnrollingDevice, IdentityEnv, enrol_device, identity_env

MEMBER = "+447700900002"


@pytest.fixture
async def env(tmp_path: Path):
    async with identity_env(tmp_path) as env:
        org, _ = await env.services.orgs.create_org("Acme", "+447700900001")
        await env.services.members.add_member(org.org_id, MEMBER, actor="operator")
        env.org_id = org.org_id  # type: ignore[attr-defined]
        yield env


@pytest.fixture
async def roomy(tmp_path: Path):
    """Send caps out of the way, for tests that enrol many devices."""
    async with identity_env(
        tmp_path, otp={"sends_per_number_15min": 100, "sends_per_number_day": 1000}
    ) as env:
        org, _ = await env.services.orgs.create_org("Acme", "+447700900001")
        await env.services.members.add_member(org.org_id, MEMBER, actor="operator")
        yield env


async def ticket_for(env: IdentityEnv, phone: str = MEMBER):
    await env.services.enrolment.request_code(phone, client_address="192.0.2.1")
    return await env.services.enrolment.verify_code(phone, await env.last_code(phone))


async def test_ticket_names_the_user_and_a_fresh_device_id(env: IdentityEnv) -> None:
    member = await env.services.members.find_by_phone(MEMBER)
    first = await ticket_for(env)
    second = await ticket_for(env)
    assert first.user_id == second.user_id == member.user_id
    assert (first.device_id, second.device_id) == (1, 2)
    assert first.expires_at == int(env.clock.now()) + 900


async def test_register_stores_a_pending_device_with_its_keys(env: IdentityEnv) -> None:
    ticket = await ticket_for(env)
    device = EnrollingDevice()
    registration = await env.services.enrolment.register(
        ticket.ticket, device.registration(ticket.user_id, ticket.device_id)
    )
    assert registration.status == "pending"
    stored = await env.services.devices.get_device(ticket.user_id, ticket.device_id)
    assert stored.status == "pending" and stored.identity_key == device.identity.ik.data
    status = await env.services.enrolment.status(registration.enrolment_secret)
    assert (status.status, status.tokens) == ("pending", None)
    # Pending devices are not in anyone's device list.
    assert await env.services.devices.approved_devices(ticket.user_id) == []


async def test_approval_hands_out_tokens_once(env: IdentityEnv) -> None:
    registration, secret = await enrol_device(env, MEMBER)
    await env.services.devices.approve(
        env.org_id, registration.user_id, registration.device_id, actor="operator"
    )
    status = await env.services.enrolment.status(secret)
    assert status.status == "approved" and status.tokens.refresh_token.startswith("sfr_")
    principal = await env.services.sessions.authenticate(status.tokens.access_token)
    assert (principal.user_id, principal.device_id) == (
        registration.user_id, registration.device_id
    )
    with pytest.raises(EnrolmentSecretRejected):
        await env.services.enrolment.status(secret)


async def test_rejected_device_learns_it(env: IdentityEnv) -> None:
    registration, secret = await enrol_device(env, MEMBER)
    await env.services.devices.reject(
        env.org_id, registration.user_id, registration.device_id, actor="operator"
    )
    assert (await env.services.enrolment.status(secret)).status == "rejected"
    assert await env.services.devices.get_device(
        registration.user_id, registration.device_id
    ) is None


async def test_ticket_is_single_use_and_expires(env: IdentityEnv) -> None:
    ticket = await ticket_for(env)
    body = EnrollingDevice().registration(ticket.user_id, ticket.device_id)
    await env.services.enrolment.register(ticket.ticket, body)
    with pytest.raises(TicketRejected):
        await env.services.enrolment.register(ticket.ticket, body)
    late = await ticket_for(env)
    env.clock.advance(900)
    with pytest.raises(TicketRejected):
        await env.services.enrolment.register(
            late.ticket, EnrollingDevice().registration(late.user_id, late.device_id)
        )
    for junk in ("", "sft_nope", None, 7, "x" * 500):
        with pytest.raises(TicketRejected):
            await env.services.enrolment.register(junk, body)


async def test_at_most_six_devices_per_member(roomy: IdentityEnv) -> None:
    for _ in range(6):
        await enrol_device(roomy, MEMBER)
    await roomy.services.enrolment.request_code(MEMBER, client_address="192.0.2.9")
    with pytest.raises(LimitReached) as caught:
        await roomy.services.enrolment.verify_code(MEMBER, await roomy.last_code(MEMBER))
    assert caught.value.code == "device_limit_reached"


async def test_device_cap_is_checked_again_at_registration(roomy: IdentityEnv) -> None:
    tickets = [await ticket_for(roomy) for _ in range(7)]  # tickets alone do not count
    for ticket in tickets[:6]:
        await roomy.services.enrolment.register(
            ticket.ticket, EnrollingDevice().registration(ticket.user_id, ticket.device_id)
        )
    last = tickets[6]
    with pytest.raises(LimitReached):
        await roomy.services.enrolment.register(
            last.ticket, EnrollingDevice().registration(last.user_id, last.device_id)
        )


async def test_device_ids_are_never_reused(env: IdentityEnv) -> None:
    registration, _ = await enrol_device(env, MEMBER)
    await env.services.devices.reject(
        env.org_id, registration.user_id, registration.device_id, actor="operator"
    )
    again, _ = await enrol_device(env, MEMBER)
    assert again.device_id == registration.device_id + 1


def _noncanonical_x25519() -> str:
    return b64u_encode((2**255 - 19 + 1).to_bytes(32, "little"))


def _b64_with_trailing_bits(data: bytes) -> str:
    text = b64u_encode(data)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    return text[:-1] + alphabet[alphabet.index(text[-1]) + 1]


BAD_UPLOADS: list[tuple[str, Any, str, str]] = [
    ("identity_key", "padded=", "key_encoding_invalid", "identity_key"),
    ("identity_key", b64u_encode(bytes(31)), "key_encoding_invalid", "identity_key"),
    ("identity_key", _noncanonical_x25519(), "x25519_key_invalid", "identity_key"),
    ("identity_signing_key", None, "key_encoding_invalid", "identity_signing_key"),
    ("identity_binding_signature", b64u_encode(bytes(64)),
     "identity_binding_signature_invalid", "identity_binding_signature"),
    ("signed_pre_key", _noncanonical_x25519(), "x25519_key_invalid", "signed_pre_key"),
    ("signed_pre_key_signature", b64u_encode(bytes(64)),
     "signed_pre_key_signature_invalid", "signed_pre_key_signature"),
    ("signed_pre_key_id", -1, "key_id_invalid", "signed_pre_key_id"),
    ("signed_pre_key_id", 2**32, "key_id_invalid", "signed_pre_key_id"),
    ("one_time_pre_keys", [{"id": 1, "key": "AAAA"}], "key_encoding_invalid",
     "one_time_pre_keys[0].key"),
    ("one_time_pre_keys", "nope", "field_invalid", "one_time_pre_keys"),
]


@pytest.mark.parametrize(("field", "value", "code", "where"), BAD_UPLOADS)
async def test_bad_keys_are_refused_with_a_clear_code(
    env: IdentityEnv, field: str, value: Any, code: str, where: str
) -> None:
    ticket = await ticket_for(env)
    body = EnrollingDevice().registration(ticket.user_id, ticket.device_id, **{field: value})
    with pytest.raises(InvalidInput) as caught:
        await env.services.enrolment.register(ticket.ticket, body)
    assert (caught.value.code, caught.value.details.get("field")) == (code, where)
    # The ticket survives a refused upload: the device can fix its keys and retry.
    await env.services.enrolment.register(
        ticket.ticket, EnrollingDevice().registration(ticket.user_id, ticket.device_id)
    )


async def test_non_canonical_base64_is_refused(env: IdentityEnv) -> None:
    ticket = await ticket_for(env)
    device = EnrollingDevice()
    body = device.registration(ticket.user_id, ticket.device_id)
    body["signed_pre_key_signature"] = _b64_with_trailing_bits(
        bytes.fromhex("00" * 63 + "00")
    )
    with pytest.raises(InvalidInput) as caught:
        await env.services.enrolment.register(ticket.ticket, body)
    assert caught.value.code == "key_encoding_invalid"


async def test_binding_must_name_the_reserved_device(env: IdentityEnv) -> None:
    ticket = await ticket_for(env)
    body = EnrollingDevice().registration(ticket.user_id, ticket.device_id + 1)
    with pytest.raises(InvalidInput) as caught:
        await env.services.enrolment.register(ticket.ticket, body)
    assert caught.value.code == "identity_binding_signature_invalid"


async def test_at_most_100_one_time_pre_keys(env: IdentityEnv) -> None:
    ticket = await ticket_for(env)
    keys = [{"id": i, "key": b64u_encode(DHKeyPair.generate().public.data)} for i in range(101)]
    body = EnrollingDevice().registration(ticket.user_id, ticket.device_id, one_time_pre_keys=keys)
    with pytest.raises(InvalidInput) as caught:
        await env.services.enrolment.register(ticket.ticket, body)
    assert caught.value.code == "too_many_pre_keys"
    body["one_time_pre_keys"] = keys[:100]
    await env.services.enrolment.register(ticket.ticket, body)


async def test_repeated_one_time_pre_key_ids_are_refused(env: IdentityEnv) -> None:
    ticket = await ticket_for(env)
    key = b64u_encode(DHKeyPair.generate().public.data)
    body = EnrollingDevice().registration(
        ticket.user_id, ticket.device_id,
        one_time_pre_keys=[{"id": 5, "key": key}, {"id": 5, "key": key}],
    )
    with pytest.raises(InvalidInput) as caught:
        await env.services.enrolment.register(ticket.ticket, body)
    assert caught.value.code == "pre_key_id_duplicate"


async def test_unapproved_devices_lapse_after_the_pending_window(env: IdentityEnv) -> None:
    registration, secret = await enrol_device(env, MEMBER)
    env.clock.advance(14 * 86_400 - 1)
    await env.services.enrolment.purge_expired()
    assert (await env.services.enrolment.status(secret)).status == "pending"
    env.clock.advance(1)
    await env.services.enrolment.purge_expired()
    assert await env.services.devices.get_device(
        registration.user_id, registration.device_id
    ) is None
    with pytest.raises(EnrolmentSecretRejected):
        await env.services.enrolment.status(secret)
