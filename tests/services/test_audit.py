"""The audit log: append-only hash chain (triggers), what may be recorded, atomicity with the
change it records, filters and pages, signed checkpoints, and the verifier catching every kind
of tampering in a copied database, naming the first bad entry."""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from semafore.services.audit import parse_filter, verify_connection
from semafore.storage import StorageError
from semafore.storage import audit as store
from semafore.storage.audit_chain import GENESIS_HASH, hash_of
from support import audit_tamper as tamper
from support.admin import ADMIN_PHONE, AdminEnv, admin_env

OTHER_ADMIN = "+447700900101"


@pytest.fixture
async def env(tmp_path: Path):
    async with admin_env(tmp_path) as env:
        services = env.identity.services
        org, _ = await services.orgs.create_org("Acme", ADMIN_PHONE)
        other, _ = await services.orgs.create_org("Globex", OTHER_ADMIN)
        for i in range(3):
            await services.members.add_member(org.org_id, f"+44770090020{i}", actor="operator")
        env.org_id = org.org_id  # type: ignore[attr-defined]
        env.other_org_id = other.org_id  # type: ignore[attr-defined]
        yield env


async def append(env: AdminEnv, **fields: Any) -> int:
    values = {"at": env.clock.now(), "org_id": None, "actor": "operator", "event": "test.event",
              **fields}

    async def unit(conn: Any) -> int:
        return await store.append_event(conn, **values)

    return await env.database.write("test.append", unit)


async def all_entries(env: AdminEnv) -> list:
    async with env.database.read() as conn:
        return [e async for e in store.iter_entries(conn)]


# -- the chain ------------------------------------------------------------------------------------


async def test_entries_form_a_hash_chain(env: AdminEnv) -> None:
    entries = await all_entries(env)
    assert [e.seq for e in entries] == list(range(1, len(entries) + 1))
    assert entries[0].prev_hash == GENESIS_HASH
    for before, after in itertools.pairwise(entries):
        assert after.prev_hash == before.hash
    assert all(hash_of(e) == e.hash for e in entries)
    assert [e.event for e in entries[:3]] == ["org.created", "member.added", "org.created"]


async def test_concurrent_appends_in_one_batch_keep_the_chain(env: AdminEnv) -> None:
    seqs = await asyncio.gather(*(append(env, target=f"member:u_{i}") for i in range(50)))
    assert sorted(seqs) == list(range(min(seqs), min(seqs) + 50))
    async with env.database.read() as conn:
        assert (await verify_connection(conn)).ok


async def test_an_event_rolls_back_with_its_unit_of_work(env: AdminEnv) -> None:
    before = len(await all_entries(env))

    async def failing(conn: Any) -> None:
        await store.append_event(conn, at=0, org_id=None, actor="operator", event="test.event")
        raise RuntimeError("the change failed")

    with pytest.raises(RuntimeError):
        await env.database.write("test.failing", failing)
    assert len(await all_entries(env)) == before
    assert await append(env) == before + 1


@pytest.mark.parametrize("statement", [
    "UPDATE audit_entries SET actor = 'x' WHERE seq = 1",
    "DELETE FROM audit_entries WHERE seq = 1",
    "DELETE FROM audit_entries",
    "INSERT INTO audit_entries VALUES (2, 0, NULL, 'a', 'b.c', NULL, NULL, zeroblob(32),"
    " zeroblob(32))",
    "INSERT OR REPLACE INTO audit_entries VALUES (1, 0, NULL, 'a', 'b.c', NULL, NULL,"
    " zeroblob(32), zeroblob(32))",
    "INSERT INTO audit_entries VALUES (1000, 0, NULL, 'a', 'b.c', NULL, NULL, zeroblob(32),"
    " zeroblob(32))",
    "UPDATE audit_checkpoint_keys SET public_key = zeroblob(32)",
])
async def test_triggers_refuse_everything_but_appending_at_the_head(
    env: AdminEnv, statement: str
) -> None:
    await env.admin.audit.checkpoint()
    before = await all_entries(env)

    async def unit(conn: Any) -> None:
        await conn.execute(statement)

    with pytest.raises(StorageError):
        await env.database.write("test.tamper", unit)
    assert await all_entries(env) == before


@pytest.mark.parametrize("data", [
    {"phone": "x"}, {"code": "123456"}, {"token": "sfs_x"}, {"nested": {"otp": 1}},
    {"who": "+447700900123"}, {"list": ["+447700900123"]}, {"bytes": b"x"},
])
async def test_secrets_and_numbers_are_refused(env: AdminEnv, data: dict[str, Any]) -> None:
    with pytest.raises(StorageError) as err:
        await append(env, data=data)
    assert err.value.code == "audit_event_invalid"
    assert "+447700900123" not in str(err.value)


@pytest.mark.parametrize("event", ["Device.Approved", "approved", "device.", "device approved"])
async def test_event_names_are_dotted_lowercase(env: AdminEnv, event: str) -> None:
    with pytest.raises(StorageError):
        await append(env, event=event)


async def test_data_is_stored_as_canonical_json(env: AdminEnv) -> None:
    seq = await append(env, data={"b": 1, "a": [True, None, "é"]})
    entry = (await all_entries(env))[seq - 1]
    assert entry.data == '{"a":[true,null,"\\u00e9"],"b":1}'


# -- reading --------------------------------------------------------------------------------------


async def test_filters_and_pages_stay_inside_one_organisation(env: AdminEnv) -> None:
    audit = env.admin.audit
    page = await audit.list_entries(parse_filter(env.org_id), limit="2")
    assert [e.event for e in page.entries] == ["member.added", "member.added"]
    seen = [e.seq for e in page.entries]
    while page.next_before is not None:
        page = await audit.list_entries(parse_filter(env.org_id), before=page.next_before,
                                        limit=2)
        seen += [e.seq for e in page.entries]
    assert seen == sorted(seen, reverse=True) and len(seen) == 5  # created + admin + 3 members
    everything = await audit.list_entries(parse_filter(env.org_id), limit=500)
    assert all(e.org_id == env.org_id for e in everything.entries)
    other = await audit.list_entries(parse_filter(env.other_org_id))
    assert {e.org_id for e in other.entries} == {env.other_org_id}
    org_only = await audit.list_entries(parse_filter(env.org_id, event="org."))
    assert [e.event for e in org_only.entries] == ["org.created"]
    by_actor = await audit.list_entries(parse_filter(env.org_id, actor="member:u_nobody"))
    assert by_actor.entries == []


async def test_time_filters(env: AdminEnv) -> None:
    env.clock.advance(86_400)
    await append(env, org_id=env.org_id, event="test.later")
    audit = env.admin.audit
    now = env.clock.now()
    later = await audit.list_entries(parse_filter(env.org_id, since=now - 1))
    assert [e.event for e in later.entries] == ["test.later"]
    earlier = await audit.list_entries(parse_filter(env.org_id, until=now - 1))
    assert "test.later" not in [e.event for e in earlier.entries]


async def test_export_streams_every_matching_entry_oldest_first(env: AdminEnv) -> None:
    for _ in range(1200):  # more than one export batch
        await append(env, org_id=env.other_org_id)
    exported = [e async for e in env.admin.audit.export(parse_filter(env.other_org_id))]
    assert len(exported) == 1202
    assert [e.seq for e in exported] == sorted(e.seq for e in exported)


# -- checkpoints and verification -----------------------------------------------------------------


async def test_checkpoints_are_signed_and_only_made_when_the_log_grew(env: AdminEnv) -> None:
    audit = env.admin.audit
    first = await audit.checkpoint()
    assert first is not None and first.key_id == audit.key_id
    assert await audit.checkpoint(only_if_grown=True) is None
    await append(env)
    second = await audit.checkpoint(only_if_grown=True)
    assert second is not None and second.tree_size == first.tree_size + 1
    report = await audit.verify()
    assert report.ok and report.checkpoints == 2 and report.latest_checkpoint == second


async def test_the_periodic_task_signs_only_when_the_log_grew(env: AdminEnv) -> None:
    intervals: list[float] = []

    async def tick(seconds: float) -> None:
        intervals.append(seconds)
        if len(intervals) == 3:
            await append(env)
        if len(intervals) == 5:
            raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        await env.admin.audit.run_checkpoints(sleep=tick)
    assert intervals == [3600.0] * 5
    async with env.database.read() as conn:
        signed = await store.checkpoints(conn)
    entries = await all_entries(env)
    # After tick 1: signed; tick 2: no growth; tick 3 appends, then signed; tick 4: no growth.
    assert [c.tree_size for c in signed] == [len(entries) - 1, len(entries)]


async def test_background_signs_a_checkpoint_at_shutdown(env: AdminEnv) -> None:
    async with env.admin.background():
        await append(env)
    latest = await env.admin.audit.latest_checkpoint()
    assert latest is not None and latest.tree_size == len(await all_entries(env))


async def test_a_verification_run_is_recorded(env: AdminEnv) -> None:
    report = await env.admin.audit.verify(actor="member:u_x", org_id=env.org_id)
    entry = (await all_entries(env))[-1]
    assert (entry.event, entry.actor, entry.org_id) == ("audit.verified", "member:u_x",
                                                         env.org_id)
    assert entry.data_dict == {"ok": True, "entries": report.entries, "first_bad_seq": None}


async def tampered_copy(env: AdminEnv, tmp_path: Path,
                        change: Callable[[sqlite3.Connection], None]) -> Any:
    copy = tamper.copy_database(env.identity.settings.storage.database_path,
                                tmp_path / "copy.db")
    with tamper.tampering(copy) as conn:
        change(conn)
    conn = await store.open_copy(copy)
    try:
        return await verify_connection(conn)
    finally:
        await conn.close()


@pytest.mark.parametrize(("change", "first_bad", "words"), [
    (tamper.edit(3), 3, "altered"),
    (tamper.edit(1), 1, "altered"),
    (tamper.delete(4), 4, "missing"),
    (tamper.insert(3), 3, "inserted"),
    (tamper.reorder(2, 5), 2, "altered"),
    (tamper.reorder(5, 6), 5, "altered"),
])
async def test_the_verifier_names_the_first_bad_entry(
    env: AdminEnv, tmp_path: Path, change: Any, first_bad: int, words: str
) -> None:
    report = await tampered_copy(env, tmp_path, change)
    assert not report.ok
    assert report.first_bad_seq == first_bad, report.problem
    assert words in (report.problem or "")


async def test_an_untouched_copy_verifies(env: AdminEnv, tmp_path: Path) -> None:
    await env.admin.audit.checkpoint()
    report = await tampered_copy(env, tmp_path, lambda conn: None)
    assert report.ok and report.checkpoints == 1 and report.problem is None


async def test_a_rehashed_entry_is_named_by_the_link_after_it(
    env: AdminEnv, tmp_path: Path
) -> None:
    def rehash_one(conn: sqlite3.Connection) -> None:
        tamper.rewrite_from(3)(conn)
        # Put entries 4.. back as they were: only entry 3 stays rewritten and rehashed.
        for seq, prev, digest in originals:
            conn.execute("UPDATE audit_entries SET prev_hash = ?, hash = ? WHERE seq = ?",
                         (prev, digest, seq))

    originals = [(e.seq, e.prev_hash, e.hash) for e in (await all_entries(env))[3:]]
    report = await tampered_copy(env, tmp_path, rehash_one)
    assert report.first_bad_seq == 3 and "recomputed" in (report.problem or "")


async def test_a_rewritten_chain_is_caught_by_the_checkpoint(
    env: AdminEnv, tmp_path: Path
) -> None:
    await env.admin.audit.checkpoint()
    report = await tampered_copy(env, tmp_path, tamper.rewrite_from(2))
    assert not report.ok and "checkpoint" in (report.problem or "")
    assert report.first_bad_seq == len(await all_entries(env))


async def test_removing_the_newest_entries_is_caught_by_the_checkpoint(
    env: AdminEnv, tmp_path: Path
) -> None:
    await env.admin.audit.checkpoint()
    report = await tampered_copy(env, tmp_path, tamper.truncate_after(4))
    assert not report.ok and report.first_bad_seq == 5 and "missing" in (report.problem or "")


@pytest.mark.parametrize("change", [tamper.forge_checkpoint_signature, tamper.flip_signature_bit])
async def test_a_tampered_checkpoint_fails_its_signature(
    env: AdminEnv, tmp_path: Path, change: Any
) -> None:
    await env.admin.audit.checkpoint()
    await append(env)
    await env.admin.audit.checkpoint()
    report = await tampered_copy(env, tmp_path, change)
    assert not report.ok and "signature is not valid" in (report.problem or "")


async def test_a_checkpoint_by_a_foreign_key_is_refused_when_keys_are_pinned(
    env: AdminEnv, tmp_path: Path
) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    from semafore.storage.audit_chain import checkpoint_message, key_id_for

    await env.admin.audit.checkpoint()
    entries = await all_entries(env)
    rogue = Ed25519PrivateKey.generate()
    public = rogue.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    kid = key_id_for(public)

    def forge(conn: sqlite3.Connection) -> None:
        message = checkpoint_message(tree_size=len(entries), head_hash=entries[-1].hash,
                                     at_ms=0, key_id=kid)
        conn.execute("INSERT INTO audit_checkpoint_keys VALUES (?, ?, 0)", (kid, public))
        conn.execute("INSERT INTO audit_checkpoints (tree_size, head_hash, at_ms, key_id,"
                     " signature) VALUES (?, ?, 0, ?, ?)",
                     (len(entries), entries[-1].hash, kid, rogue.sign(message)))

    copy = tamper.copy_database(env.identity.settings.storage.database_path, tmp_path / "c.db")
    with tamper.tampering(copy) as conn:
        forge(conn)
    conn = await store.open_copy(copy)
    try:
        assert (await verify_connection(conn)).ok  # self-consistent without a pinned key
        pinned = await verify_connection(conn, trusted_key_ids={env.admin.audit.key_id})
    finally:
        await conn.close()
    assert not pinned.ok and "not a trusted key" in (pinned.problem or "")
