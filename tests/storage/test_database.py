"""The single writer with group commit, the read-only readers and the pragmas."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import stat
from pathlib import Path

import aiosqlite
import pytest

from semafore.storage import Database, StorageError

from .notes import Unit, create_notes, insert_note, note_ids, refused_open


def record_commits(db: Database) -> list[int]:
    batches: list[int] = []
    db.add_commit_observer(lambda units, _seconds: batches.append(units))
    return batches


async def pragmas(conn: aiosqlite.Connection) -> dict[str, object]:
    values: dict[str, object] = {}
    for name in ("journal_mode", "synchronous", "foreign_keys", "secure_delete",
                 "busy_timeout", "query_only"):
        async with conn.execute(f"PRAGMA {name}") as cursor:
            values[name] = (await cursor.fetchone())[0]
    return values


# -- pragmas and connections ----------------------------------------------------------------


async def test_pragmas_are_in_effect_on_the_writer_and_every_reader(db_path: Path) -> None:
    db = Database(db_path, busy_timeout_ms=1234, reader_connections=3)
    await db.open()
    try:
        writer = await db.write("read pragmas", pragmas)
        expected = {"journal_mode": "wal", "synchronous": 2, "foreign_keys": 1,
                    "secure_delete": 1, "busy_timeout": 1234}
        assert writer == {**expected, "query_only": 0}
        async with db.read() as r1, db.read() as r2, db.read() as r3:
            assert len({id(r1), id(r2), id(r3)}) == 3
            for reader in (r1, r2, r3):
                assert await pragmas(reader) == {**expected, "query_only": 1}
    finally:
        await db.close()


async def test_readers_refuse_writes_even_with_query_only_switched_off(db: Database) -> None:
    async with db.read() as conn:
        with pytest.raises(sqlite3.OperationalError, match="readonly database"):
            await conn.execute("INSERT INTO notes (id, body) VALUES (1, 'sneaky')")
        await conn.execute("PRAGMA query_only = OFF")
        with pytest.raises(sqlite3.OperationalError, match="readonly database"):
            await conn.execute("INSERT INTO notes (id, body) VALUES (1, 'sneaky')")
        await conn.execute("PRAGMA query_only = ON")
    assert await note_ids(db) == set()


async def test_a_reader_returned_inside_a_transaction_does_not_serve_a_stale_snapshot(
    db_path: Path,
) -> None:
    db = Database(db_path, reader_connections=1)
    await db.open()
    try:
        await db.write("create", create_notes)
        async with db.read() as conn:
            await conn.execute("BEGIN")
            async with conn.execute("SELECT count(*) FROM notes") as cursor:
                assert await cursor.fetchone() == (0,)
        await db.write("one", insert_note(1))
        assert await note_ids(db) == {1}
    finally:
        await db.close()


async def test_database_files_are_private(db: Database, db_path: Path) -> None:
    await db.write("one", insert_note(1))
    for path in (db_path, db_path.with_name(db_path.name + "-wal")):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert stat.S_IMODE(db_path.parent.stat().st_mode) == 0o700


async def test_open_logs_the_sqlite_version(
    db_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="semafore.storage")
    db = Database(db_path)
    await db.open()
    await db.close()
    assert f"sqlite_version={sqlite3.sqlite_version}" in caplog.text


async def test_a_file_that_is_not_a_database_is_refused_and_left_alone(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    junk = b"this is not a database" * 200
    db_path.write_bytes(junk)
    assert (await refused_open(Database(db_path))).code == "storage_unavailable"
    assert db_path.read_bytes() == junk


# -- group commit ---------------------------------------------------------------------------


async def test_a_thousand_concurrent_writers_share_a_few_commits(db: Database) -> None:
    batches = record_commits(db)
    results = await asyncio.gather(*(db.write("note", insert_note(i)) for i in range(1000)))
    assert results == list(range(1000))
    assert sum(batches) == 1000
    assert len(batches) <= 10, f"group commit did not batch: {len(batches)} commits"
    assert await note_ids(db) == set(range(1000))


async def test_a_failing_unit_loses_nothing_of_the_others_and_gets_its_own_error(
    db: Database,
) -> None:
    batches = record_commits(db)

    async def insert_then_fail(conn: aiosqlite.Connection) -> None:
        await conn.execute("INSERT INTO notes (id, body) VALUES (1010, 'half done')")
        raise ValueError("unit bug")

    units: list[Unit] = [insert_note(i) for i in range(100)]
    units[10] = insert_then_fail
    units[20] = insert_note(20, body="note 3")  # UNIQUE(body) clash with unit 3
    outcomes = await asyncio.gather(
        *(db.write(f"note {i}", unit) for i, unit in enumerate(units)), return_exceptions=True
    )
    assert batches == [100], "the units were expected to share one transaction"
    assert isinstance(outcomes[10], ValueError) and str(outcomes[10]) == "unit bug"
    assert isinstance(outcomes[20], StorageError) and outcomes[20].code == "storage_error"
    assert [o for i, o in enumerate(outcomes) if i not in (10, 20)] == [
        i for i in range(100) if i not in (10, 20)
    ]
    assert await note_ids(db) == set(range(100)) - {10, 20}  # 1010 was rolled back too


async def test_a_unit_whose_error_rolls_back_the_transaction_costs_the_others_nothing(
    db: Database,
) -> None:
    async def poison_trigger(conn: aiosqlite.Connection) -> None:
        await conn.execute(
            "CREATE TRIGGER poison BEFORE INSERT ON notes WHEN NEW.body = 'poison' "
            "BEGIN SELECT RAISE(ROLLBACK, 'poisoned'); END"
        )

    await db.write("trigger", poison_trigger)
    units = [insert_note(i) for i in range(50)]
    units[25] = insert_note(25, body="poison")
    outcomes = await asyncio.gather(
        *(db.write("note", unit) for unit in units), return_exceptions=True
    )
    assert isinstance(outcomes[25], StorageError)
    assert "poisoned" in str(outcomes[25])
    assert [o for i, o in enumerate(outcomes) if i != 25] == [i for i in range(50) if i != 25]
    assert await note_ids(db) == set(range(50)) - {25}


async def test_disk_full_fails_the_whole_batch_and_acknowledges_nobody(db: Database) -> None:
    async def cap_file(conn: aiosqlite.Connection) -> None:
        async with conn.execute("PRAGMA page_count") as cursor:
            pages = (await cursor.fetchone())[0]
        await conn.execute(f"PRAGMA max_page_count = {pages + 3}")

    async def insert_big(conn: aiosqlite.Connection, note_id: int) -> int:
        await conn.execute(
            "INSERT INTO notes (id, body) VALUES (?, hex(randomblob(3000)))", (note_id,)
        )
        return note_id

    await db.write("cap", cap_file)
    outcomes = await asyncio.gather(
        *(db.write("big", lambda c, i=i: insert_big(c, i)) for i in range(40)),
        return_exceptions=True,
    )
    assert all(isinstance(o, StorageError) and o.code == "storage_unavailable"
               for o in outcomes), outcomes
    assert await note_ids(db) == set()

    async def uncap(conn: aiosqlite.Connection) -> None:
        await conn.execute("PRAGMA max_page_count = 1073741823")

    await db.write("uncap", uncap)
    assert await db.write("after", insert_note(7)) == 7  # the writer carries on
    assert await note_ids(db) == {7}


async def test_an_io_error_in_a_unit_fails_the_whole_batch(db: Database) -> None:
    async def io_error(conn: aiosqlite.Connection) -> None:
        await conn.execute("INSERT INTO notes (id, body) VALUES (999, 'x')")
        error = sqlite3.OperationalError("disk I/O error")
        error.sqlite_errorcode = sqlite3.SQLITE_IOERR_WRITE  # as sqlite3 sets it
        raise error

    units = [insert_note(i) for i in range(20)]
    units[5] = io_error
    outcomes = await asyncio.gather(
        *(db.write("note", unit) for unit in units), return_exceptions=True
    )
    assert all(isinstance(o, StorageError) and o.code == "storage_unavailable"
               for o in outcomes), outcomes
    assert await note_ids(db) == set()


async def test_a_write_lock_held_elsewhere_is_storage_unavailable_then_recovers(
    db_path: Path,
) -> None:
    db = Database(db_path, busy_timeout_ms=100)
    await db.open()
    other = sqlite3.connect(db_path, isolation_level=None)
    try:
        await db.write("create", create_notes)
        other.execute("BEGIN IMMEDIATE")  # e.g. an operator's sqlite3 shell
        with pytest.raises(StorageError) as caught:
            await db.write("blocked", insert_note(1))
        assert caught.value.code == "storage_unavailable"
        other.execute("ROLLBACK")
        assert await db.write("free", insert_note(2)) == 2
        assert await note_ids(db) == {2}
    finally:
        other.close()
        await db.close()


async def test_a_failed_commit_acknowledges_nobody(db: Database) -> None:
    async def deferred_fk(conn: aiosqlite.Connection) -> None:
        await conn.execute("CREATE TABLE parent (id INTEGER PRIMARY KEY)")
        await conn.execute(
            "CREATE TABLE child (parent_id INTEGER REFERENCES parent (id) "
            "DEFERRABLE INITIALLY DEFERRED)"
        )

    async def orphan(conn: aiosqlite.Connection) -> None:
        await conn.execute("INSERT INTO child VALUES (42)")  # only checked at COMMIT

    await db.write("schema", deferred_fk)
    units = [insert_note(i) for i in range(20)]
    units[7] = orphan
    outcomes = await asyncio.gather(
        *(db.write("note", unit) for unit in units), return_exceptions=True
    )
    assert all(isinstance(o, StorageError) for o in outcomes), outcomes
    assert await note_ids(db) == set()
    assert await db.write("after", insert_note(1)) == 1


async def test_a_unit_that_ends_the_transaction_itself_fails_its_batch(db: Database) -> None:
    async def rogue(conn: aiosqlite.Connection) -> None:
        await conn.execute("ROLLBACK")

    outcomes = await asyncio.gather(
        db.write("a", insert_note(1)), db.write("rogue", rogue), return_exceptions=True
    )
    assert all(isinstance(o, StorageError) for o in outcomes), outcomes
    assert await note_ids(db) == set()
    assert await db.write("after", insert_note(2)) == 2


# -- cancellation, observers, shutdown ------------------------------------------------------


async def test_a_caller_cancelled_before_its_unit_starts_is_skipped(db: Database) -> None:
    release = asyncio.Event()

    async def slow(conn: aiosqlite.Connection) -> int:
        await release.wait()
        return await insert_note(1)(conn)

    first = asyncio.create_task(db.write("slow", slow))
    await asyncio.sleep(0.05)  # the writer is now inside `slow`
    second = asyncio.create_task(db.write("queued", insert_note(2)))
    await asyncio.sleep(0)
    second.cancel()
    release.set()
    assert await first == 1
    with pytest.raises(asyncio.CancelledError):
        await second
    assert await db.write("later", insert_note(3)) == 3
    assert await note_ids(db) == {1, 3}


async def test_a_caller_cancelled_while_its_unit_runs_does_not_break_the_writer(
    db: Database,
) -> None:
    started, release = asyncio.Event(), asyncio.Event()

    async def slow(conn: aiosqlite.Connection) -> int:
        started.set()
        await release.wait()
        return await insert_note(1)(conn)

    caller = asyncio.create_task(db.write("slow", slow))
    await started.wait()
    caller.cancel()
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await caller
    assert await db.write("later", insert_note(2)) == 2
    assert await note_ids(db) == {1, 2}  # the unit had started, so it committed


async def test_a_failing_commit_observer_does_not_stop_the_writer(db: Database) -> None:
    def broken(units: int, seconds: float) -> None:
        raise RuntimeError("metrics bug")

    db.add_commit_observer(broken)
    assert await db.write("one", insert_note(1)) == 1
    assert await db.write("two", insert_note(2)) == 2


async def test_close_finishes_queued_writes_and_then_refuses_new_ones(db_path: Path) -> None:
    db = Database(db_path)
    await db.open()
    await db.write("create", create_notes)
    writes = [asyncio.create_task(db.write("note", insert_note(i))) for i in range(300)]
    await asyncio.sleep(0)  # every task has queued its unit
    assert db.queue_depth > 0
    await db.close()
    assert [w.result() for w in writes] == list(range(300))
    with pytest.raises(StorageError) as caught:
        await db.write("late", insert_note(301))
    assert caught.value.code == "storage_unavailable"
    assert not await db.ping()

    reopened = Database(db_path)
    await reopened.open()
    try:
        assert await note_ids(reopened) == set(range(300))
    finally:
        await reopened.close()


async def test_writes_issued_while_closing_are_refused_not_left_hanging(db: Database) -> None:
    writes = [asyncio.create_task(db.write("note", insert_note(i))) for i in range(50)]
    await asyncio.sleep(0)
    closing = asyncio.create_task(db.close())
    await asyncio.sleep(0)
    with pytest.raises(StorageError) as caught:
        await asyncio.wait_for(db.write("late", insert_note(99)), timeout=5)
    assert caught.value.code == "storage_unavailable"
    await closing
    assert [w.result() for w in writes] == list(range(50))


class WriterKiller(BaseException):
    """Escapes `except Exception`: stands in for a bug that would kill the writer task."""


async def test_a_dead_writer_fails_every_write_loudly_instead_of_hanging(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    release = asyncio.Event()

    async def killer(conn: aiosqlite.Connection) -> None:
        await release.wait()
        raise WriterKiller

    in_batch = asyncio.create_task(db.write("killer", killer))
    await asyncio.sleep(0.05)  # the writer is now inside `killer`
    queued = [asyncio.create_task(db.write("note", insert_note(i))) for i in range(10)]
    await asyncio.sleep(0)
    release.set()
    outcomes = await asyncio.wait_for(
        asyncio.gather(in_batch, *queued, return_exceptions=True), timeout=5
    )
    assert all(isinstance(o, StorageError) and o.code == "storage_unavailable"
               for o in outcomes), outcomes
    with pytest.raises(StorageError) as caught:
        await asyncio.wait_for(db.write("after", insert_note(1)), timeout=5)
    assert caught.value.code == "storage_unavailable"
    assert not await db.ping()
    assert "database writer stopped" in caplog.text
    assert await note_ids(db) == set()


async def test_write_and_read_before_open_are_refused(db_path: Path) -> None:
    db = Database(db_path)
    with pytest.raises(StorageError) as caught:
        await db.write("early", insert_note(1))
    assert caught.value.code == "storage_unavailable"
    with pytest.raises(StorageError):
        async with db.read():
            pass
    assert not await db.ping()


async def test_ping_is_true_while_open(db: Database) -> None:
    assert await db.ping()



async def test_an_unusable_location_is_reported_as_storage_unavailable(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    error = await refused_open(Database(tmp_path / "a-file" / "semafore.db"))
    assert error.code == "storage_unavailable"
