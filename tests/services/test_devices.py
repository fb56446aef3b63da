"""Devices: approve, reject, revoke (one unit of work: keys, tokens, device list, audit),
revocation hooks, cross-process revocation sync, org isolation."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from semafore.services import Conflict, NotFound, RevokedSession, Unauthenticated
from semafore.services.devices import DeviceService
from semafore.services.sessions import RefreshRejected
from semafore.storage import prekeys
from semafore.storage.revocation_signal import RevocationSignal
from support.identity import IdentityEnv, approved_device, enrol_device, identity_env

MEMBER = "+447700900002"


@pytest.fixture
async def env(tmp_path: Path):
    async with identity_env(tmp_path) as env:
        org, _ = await env.services.orgs.create_org("Acme", "+447700900001")
        await env.services.members.add_member(org.org_id, MEMBER, actor="operator")
        env.org_id = org.org_id  # type: ignore[attr-defined]
        yield env


async def count_prekeys(env: IdentityEnv, user_id: str, device_id: int) -> tuple[int, bool]:
    async with env.database.read() as conn:
        opks = await prekeys.count_one_time_pre_keys(conn, user_id, device_id)
        spk = await prekeys.get_signed_pre_key(conn, user_id, device_id)
    return opks, spk is not None


async def audit_events(env: IdentityEnv) -> list[str]:
    async with (
        env.database.read() as conn,
        conn.execute("SELECT event FROM audit_entries ORDER BY seq") as cursor,
    ):
        return [r[0] for r in await cursor.fetchall()]


async def test_list_includes_pending_and_filters(env: IdentityEnv) -> None:
    pending, _ = await enrol_device(env, MEMBER)
    approved, _ = await approved_device(env, env.org_id, MEMBER)
    devices = env.services.devices
    assert [(d.device_id, d.status) for d in await devices.list_devices(env.org_id)] == [
        (pending.device_id, "pending"), (approved.device_id, "approved")
    ]
    assert [d.device_id for d in await devices.list_devices(env.org_id, status="pending")] == [
        pending.device_id
    ]
    assert [d.device_id for d in await devices.approved_devices(pending.user_id)] == [
        approved.device_id
    ]


async def test_approve_twice_is_a_conflict(env: IdentityEnv) -> None:
    registration, _ = await approved_device(env, env.org_id, MEMBER)
    with pytest.raises(Conflict) as caught:
        await env.services.devices.approve(
            env.org_id, registration.user_id, registration.device_id, actor="operator"
        )
    assert caught.value.code == "device_not_pending"
    with pytest.raises(Conflict):
        await env.services.devices.reject(
            env.org_id, registration.user_id, registration.device_id, actor="operator"
        )


async def test_revoke_is_immediate_and_complete(env: IdentityEnv) -> None:
    registration, tokens = await approved_device(env, env.org_id, MEMBER)
    user_id, device_id = registration.user_id, registration.device_id
    seen: list[RevokedSession] = []

    async def hook(session: RevokedSession) -> None:
        seen.append(session)

    env.services.devices.on_revoked.append(hook)
    await env.services.sessions.authenticate(tokens.access_token)  # now cached as approved
    assert await count_prekeys(env, user_id, device_id) == (5, True)

    await env.services.devices.revoke(env.org_id, user_id, device_id, actor="member:u_admin")

    with pytest.raises(Unauthenticated) as caught:
        await env.services.sessions.authenticate(tokens.access_token)
    assert caught.value.code == "session_revoked"
    with pytest.raises(RefreshRejected):
        await env.services.sessions.refresh(tokens.refresh_token)
    assert await count_prekeys(env, user_id, device_id) == (0, False)
    assert await env.services.devices.approved_devices(user_id) == []
    assert seen == [RevokedSession(user_id, device_id)]
    assert (await audit_events(env))[-1] == "device.revoked"


async def test_a_failing_hook_does_not_undo_the_revocation(env: IdentityEnv) -> None:
    registration, tokens = await approved_device(env, env.org_id, MEMBER)

    async def broken(session: RevokedSession) -> None:
        raise RuntimeError("socket already gone")

    env.services.devices.on_revoked.append(broken)
    await env.services.devices.revoke(
        env.org_id, registration.user_id, registration.device_id, actor="operator"
    )
    with pytest.raises(Unauthenticated):
        await env.services.sessions.authenticate(tokens.access_token)


@pytest.mark.parametrize("signal_writable", [True, False])
async def test_another_process_s_revocation_refuses_the_very_next_request(
    env: IdentityEnv, signal_writable: bool
) -> None:
    """The CLI's revocation is applied before the server's next check: the signal file makes
    that check read the table. Without the signal, the background sync's read applies it."""
    registration, tokens = await approved_device(env, env.org_id, MEMBER)
    server_devices = env.services.devices
    if not signal_writable:
        (RevocationSignal(env.database.path).path / "blocker").mkdir(parents=True)
    await server_devices.start_revocation_sync()
    seen: list[RevokedSession] = []

    async def hook(session: RevokedSession) -> None:
        seen.append(session)

    server_devices.on_revoked.append(hook)
    await env.services.sessions.authenticate(tokens.access_token)  # cached in the "server"

    cli_devices = DeviceService(env.database, env.clock)  # e.g. `semafore device revoke`
    await cli_devices.revoke(
        env.org_id, registration.user_id, registration.device_id, actor="operator"
    )
    if not signal_writable:
        await env.services.sessions.authenticate(tokens.access_token)  # still cached
        assert await server_devices.sync_revocations() == 1
    with pytest.raises(Unauthenticated):
        await env.services.sessions.authenticate(tokens.access_token)
    assert seen == [RevokedSession(registration.user_id, registration.device_id)]
    assert await server_devices.sync_revocations() == 0


async def test_concurrent_checks_all_wait_for_the_signalled_revocation(env: IdentityEnv) -> None:
    registration, tokens = await approved_device(env, env.org_id, MEMBER)
    await env.services.devices.start_revocation_sync()
    await env.services.sessions.authenticate(tokens.access_token)

    await DeviceService(env.database, env.clock).revoke(
        env.org_id, registration.user_id, registration.device_id, actor="operator"
    )
    outcomes = await asyncio.gather(
        *(env.services.sessions.authenticate(tokens.access_token) for _ in range(20)),
        return_exceptions=True,
    )
    assert all(isinstance(o, Unauthenticated) for o in outcomes), outcomes


async def test_in_process_revocations_are_not_announced_twice(env: IdentityEnv) -> None:
    registration, _ = await approved_device(env, env.org_id, MEMBER)
    await env.services.devices.start_revocation_sync()
    seen: list[RevokedSession] = []

    async def hook(session: RevokedSession) -> None:
        seen.append(session)

    env.services.devices.on_revoked.append(hook)
    await env.services.devices.revoke(
        env.org_id, registration.user_id, registration.device_id, actor="operator"
    )
    assert await env.services.devices.sync_revocations() == 0
    assert len(seen) == 1


async def test_member_removal_revokes_every_device(env: IdentityEnv) -> None:
    first, tokens_1 = await approved_device(env, env.org_id, MEMBER)
    second, _ = await enrol_device(env, MEMBER)
    seen: list[RevokedSession] = []

    async def hook(session: RevokedSession) -> None:
        seen.append(session)

    env.services.devices.on_revoked.append(hook)
    await env.services.members.remove_member(env.org_id, first.user_id, actor="operator")
    assert {s.device_id for s in seen} == {first.device_id, second.device_id}
    with pytest.raises(Unauthenticated):
        await env.services.sessions.authenticate(tokens_1.access_token)
    assert await count_prekeys(env, first.user_id, first.device_id) == (0, False)
    assert await env.services.devices.list_devices(env.org_id) == []


async def test_another_orgs_device_is_not_found(env: IdentityEnv) -> None:
    registration, _ = await enrol_device(env, MEMBER)
    other, _ = await env.services.orgs.create_org("Other", "+447700900050")
    devices = env.services.devices
    for call in (
        devices.approve(other.org_id, registration.user_id, registration.device_id, actor="x"),
        devices.reject(other.org_id, registration.user_id, registration.device_id, actor="x"),
        devices.revoke(other.org_id, registration.user_id, registration.device_id, actor="x"),
        devices.get_org_device(other.org_id, registration.user_id, registration.device_id),
        devices.revoke(env.org_id, registration.user_id, 999, actor="x"),
    ):
        with pytest.raises(NotFound) as caught:
            await call
        assert (caught.value.code, caught.value.message) == ("device_not_found", "no such device")
    assert await devices.list_devices(other.org_id) == []
    assert (await devices.get_device(registration.user_id, registration.device_id)).status == (
        "pending"
    )
