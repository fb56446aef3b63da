"""FileService on a real database and blob directory with a manual clock: quota reservations
under concurrency, offsets, crash reconciliation, expiry, abandoned uploads and stray files."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from semafore.config import FilesSettings
from semafore.services import Conflict, LimitReached, ManualClock, NotFound, TooLarge
from semafore.services.files import FileService
from semafore.services.sessions import DevicePrincipal
from semafore.storage import BlobStore, Database
from semafore.storage.blob_uploads import FileRecords

DAY = 86_400
ALICE = DevicePrincipal("user-alice", 1, "org-a", "s1")
ALICE2 = DevicePrincipal("user-alice", 2, "org-a", "s2")
BOB = DevicePrincipal("user-bob", 1, "org-a", "s3")
CAROL = DevicePrincipal("user-carol", 1, "org-b", "s4")


@dataclass
class Env:
    service: FileService
    clock: ManualClock
    blobs: BlobStore
    records: FileRecords


@contextlib.asynccontextmanager
async def file_env(tmp_path: Path, **settings: int) -> AsyncIterator[Env]:
    database = Database(tmp_path / "semafore.db")
    await database.open()
    blobs = BlobStore(tmp_path / "blobs")
    blobs.prepare()
    clock = ManualClock()
    records = FileRecords(database)
    config = FilesSettings(**{"max_upload_bytes": 1000, "org_quota_bytes": 5000, **settings})
    try:
        yield Env(FileService(config, clock, records, blobs), clock, blobs, records)
    finally:
        await database.close()


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    async with file_env(tmp_path) as e:
        yield e


async def body(*pieces: bytes) -> AsyncIterable[bytes]:
    for piece in pieces:
        yield piece


async def upload(env: Env, who: DevicePrincipal, data: bytes) -> str:
    state = await env.service.create_upload(who, {"length": len(data)})
    done = await env.service.write(who, state.file_id, "0", body(data), content_length=None)
    assert done.complete
    return state.file_id


async def read_all(env: Env, who: DevicePrincipal, file_id: str) -> bytes:
    found = await env.service.download(who, file_id)
    return b"".join([c async for c in await env.service.read(found, 0, found.size)])


async def test_quota_holds_under_concurrent_creations(env: Env) -> None:
    results = await asyncio.gather(
        *(env.service.create_upload(ALICE if i % 2 else BOB, {"length": 1000})
          for i in range(8)),
        return_exceptions=True,
    )
    created = [r for r in results if not isinstance(r, Exception)]
    refused = [r for r in results if isinstance(r, LimitReached)]
    assert len(created) == 5 and len(refused) == 3
    assert {r.code for r in refused} == {"org_quota_exceeded"}
    assert refused[0].details == {
        "quota_bytes": 5000, "used_bytes": 5000, "requested_bytes": 1000,
    }
    assert (await env.service.create_upload(CAROL, {"length": 1000})).length == 1000


async def test_uploads_are_private_to_their_member_files_to_their_organisation(env: Env) -> None:
    state = await env.service.create_upload(ALICE, {"length": 4})
    assert (await env.service.upload_state(ALICE2, state.file_id)).offset == 0
    for other in (BOB, CAROL):
        with pytest.raises(NotFound) as refused:
            await env.service.upload_state(other, state.file_id)
        assert refused.value.code == "upload_not_found"
    await env.service.write(ALICE2, state.file_id, "0", body(b"abcd"), content_length=4)
    assert await read_all(env, BOB, state.file_id) == b"abcd"
    with pytest.raises(NotFound) as refused:
        await env.service.download(CAROL, state.file_id)
    assert refused.value.code == "file_not_found"


async def test_a_stream_that_ends_early_keeps_what_arrived(env: Env) -> None:
    state = await env.service.create_upload(ALICE, {"length": 900})
    after = await env.service.write(
        ALICE, state.file_id, "0", body(b"a" * 300, b"b" * 200), content_length=900
    )
    assert (after.offset, after.complete) == (500, False)
    assert env.blobs.partial_size(state.file_id) == 500
    with pytest.raises(Conflict) as refused:
        await env.service.write(ALICE, state.file_id, "0", body(b"x"), content_length=1)
    assert (refused.value.code, refused.value.details) == ("upload_offset_mismatch",
                                                           {"offset": 500})
    done = await env.service.write(
        ALICE, state.file_id, "500", body(b"c" * 400), content_length=None
    )
    assert done.complete and await read_all(env, BOB, state.file_id) == (
        b"a" * 300 + b"b" * 200 + b"c" * 400
    )


async def test_too_long_is_refused_and_the_partial_cut_back(env: Env) -> None:
    state = await env.service.create_upload(ALICE, {"length": 100})
    await env.service.write(ALICE, state.file_id, "0", body(b"a" * 60), content_length=None)
    with pytest.raises(TooLarge) as refused:
        await env.service.write(
            ALICE, state.file_id, "60", body(b"b" * 30, b"b" * 30), content_length=None
        )
    assert refused.value.code == "upload_too_long"
    assert env.blobs.partial_size(state.file_id) == 60
    assert (await env.service.upload_state(ALICE, state.file_id)).offset == 60


async def test_bytes_past_the_recorded_offset_are_dropped_on_resume(env: Env) -> None:
    # A crash after the fsync but before the offset was recorded leaves extra bytes.
    state = await env.service.create_upload(ALICE, {"length": 10})
    await env.service.write(ALICE, state.file_id, "0", body(b"01234"), content_length=None)
    with env.blobs.partial_path(state.file_id).open("ab") as f:
        f.write(b"XYZ")
    assert (await env.service.upload_state(ALICE, state.file_id)).offset == 5
    await env.service.write(ALICE, state.file_id, "5", body(b"56789"), content_length=None)
    assert await read_all(env, ALICE, state.file_id) == b"0123456789"


async def test_a_publish_that_was_not_recorded_completes_on_the_next_look(env: Env) -> None:
    state = await env.service.create_upload(ALICE, {"length": 3})
    await env.service.write(ALICE, state.file_id, "0", body(b"ab"), content_length=None)
    # Crash between the rename and the row update: the whole file is published already.
    with env.blobs.partial_path(state.file_id).open("ab") as f:
        f.write(b"c")
    await env.blobs.publish_partial(state.file_id)
    assert (await env.service.upload_state(ALICE, state.file_id)).complete
    assert await read_all(env, BOB, state.file_id) == b"abc"


async def test_a_partial_file_lost_from_disk_restarts_the_upload(env: Env) -> None:
    state = await env.service.create_upload(ALICE, {"length": 10})
    await env.service.write(ALICE, state.file_id, "0", body(b"01234"), content_length=None)
    env.blobs.delete_partial(state.file_id)
    assert (await env.service.upload_state(ALICE, state.file_id)).offset == 0


async def test_expiry_deletion_and_stored_bytes(env: Env) -> None:
    first = await upload(env, ALICE, b"x" * 700)
    second = await upload(env, ALICE2, b"y" * 300)
    assert env.service.stats.bytes_stored == 1000
    with pytest.raises(Exception, match="only the member who uploaded") as refused:
        await env.service.delete_file(BOB, first)
    assert refused.value.code == "not_file_owner"  # type: ignore[attr-defined]
    await env.service.delete_file(ALICE2, first)  # the same member, another device
    assert env.service.stats.bytes_stored == 300
    env.clock.advance(30 * DAY)
    with pytest.raises(NotFound):
        await env.service.download(BOB, second)
    assert await env.service.sweep() == 1
    assert env.service.stats.bytes_stored == 0 and list(env.blobs.ids()) == []
    assert await env.records.org_usage("org-a", int(env.clock.now())) == 0


async def test_abandoned_uploads_go_after_the_timeout_unless_written_to(env: Env) -> None:
    idle = await env.service.create_upload(ALICE, {"length": 100})
    active = await env.service.create_upload(BOB, {"length": 100})
    await env.service.write(ALICE, idle.file_id, "0", body(b"a" * 10), content_length=None)
    env.clock.advance(DAY - 10)
    await env.service.write(BOB, active.file_id, "0", body(b"b" * 10), content_length=None)
    env.clock.advance(10)
    assert await env.service.sweep() == 1
    assert env.blobs.partial_size(idle.file_id) is None
    assert (await env.service.upload_state(BOB, active.file_id)).offset == 10
    assert env.service.stats.uploads_abandoned == 1


async def test_stray_files_without_a_record_are_removed(tmp_path: Path) -> None:
    async with file_env(tmp_path) as env:
        kept = await upload(env, ALICE, b"k" * 10)
        stray = "a" * 32
        env.blobs.path_for(stray).write_bytes(b"left by a crash")
        env.blobs.partial_path("b" * 32).write_bytes(b"partial left by a crash")
        assert await env.service.sweep() == 2
        assert list(env.blobs.ids()) == [kept] and list(env.blobs.partial_ids()) == []
        env.blobs.path_for(stray).write_bytes(b"again")
        assert await env.service.sweep() == 0  # the stray scan runs once a day
        env.clock.advance(DAY)
        assert await env.service.sweep() == 1


async def test_the_stored_total_is_loaded_at_start(tmp_path: Path) -> None:
    async with file_env(tmp_path) as env:
        await upload(env, ALICE, os.urandom(600))
    async with file_env(tmp_path) as env:
        await env.service.load()
        assert env.service.stats.bytes_stored == 600
