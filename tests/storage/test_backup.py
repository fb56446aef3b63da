"""Online backup while the server writes, and integrity checks of database files."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import stat
from pathlib import Path

import aiosqlite
import pytest

from semafore.storage import (
    Database,
    StorageError,
    backup_database,
    integrity_check,
    latest_version,
)


async def create_pairs(conn: aiosqlite.Connection) -> None:
    await conn.execute("CREATE TABLE left_half (id INTEGER PRIMARY KEY, body BLOB NOT NULL)")
    await conn.execute("CREATE TABLE right_half (id INTEGER PRIMARY KEY, body BLOB NOT NULL)")


def insert_pair(pair_id: int) -> object:
    # Two rows in two tables in one unit: a consistent copy has both or neither.
    async def unit(conn: aiosqlite.Connection) -> None:
        await conn.execute("INSERT INTO left_half VALUES (?, randomblob(300))", (pair_id,))
        await conn.execute("INSERT INTO right_half VALUES (?, randomblob(300))", (pair_id,))

    return unit


def read_pairs(path: Path) -> tuple[set[int], set[int]]:
    conn = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    try:
        left = {row[0] for row in conn.execute("SELECT id FROM left_half")}
        right = {row[0] for row in conn.execute("SELECT id FROM right_half")}
    finally:
        conn.close()
    return left, right


async def test_a_backup_taken_under_write_load_is_a_consistent_sound_copy(
    db: Database, db_path: Path, tmp_path: Path
) -> None:
    await db.write("schema", create_pairs)
    await asyncio.gather(*(db.write("pair", insert_pair(i)) for i in range(5000)))  # ~3 MB
    stop = asyncio.Event()
    next_id = 5000

    async def writer() -> None:
        nonlocal next_id
        while not stop.is_set():
            batch = range(next_id, next_id + 50)
            next_id += 50
            await asyncio.gather(*(db.write("pair", insert_pair(i)) for i in batch))

    inside, release = asyncio.Event(), asyncio.Event()
    uncommitted = 10**9

    async def held_open(conn: aiosqlite.Connection) -> None:
        await insert_pair(uncommitted)(conn)
        inside.set()
        await release.wait()

    writers = [asyncio.create_task(writer()) for _ in range(4)]
    await asyncio.sleep(0.05)
    # The writer sits inside a transaction with rows written but not committed meanwhile.
    held = asyncio.create_task(db.write("held open", held_open))
    await inside.wait()
    report = await asyncio.wait_for(backup_database(db_path, tmp_path / "backup.db"), 60)
    release.set()
    await asyncio.sleep(0.05)
    stop.set()
    await asyncio.gather(held, *writers)

    assert report.ok and report.problems == ()
    assert report.schema_version == latest_version()
    assert report.path == tmp_path / "backup.db"
    assert report.size_bytes == report.path.stat().st_size
    assert stat.S_IMODE(report.path.stat().st_mode) == 0o600
    left, right = read_pairs(report.path)
    assert left == right, "the copy is not one snapshot"
    assert set(range(5000)) <= left
    assert uncommitted not in left
    live_left, _ = read_pairs(db_path)
    assert uncommitted in live_left
    assert left < live_left  # the server went on writing after the snapshot
    assert integrity_check(report.path) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["backup.db", "data"]  # no temporaries

    conn = sqlite3.connect(report.path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("delete",)  # one file
    finally:
        conn.close()


async def test_a_backup_opens_as_a_database(db: Database, db_path: Path, tmp_path: Path) -> None:
    await db.write("schema", create_pairs)
    await db.write("pair", insert_pair(1))
    report = await backup_database(db_path, tmp_path / "copy.db")
    restored = Database(report.path)
    await restored.open(migrate=False)
    try:
        async with restored.read() as conn, conn.execute("SELECT id FROM left_half") as cursor:
            assert await cursor.fetchall() == [(1,)]
    finally:
        await restored.close()


async def test_an_existing_target_is_kept_unless_overwriting_is_asked(
    db: Database, db_path: Path, tmp_path: Path
) -> None:
    target = tmp_path / "backup.db"
    target.write_bytes(b"yesterday's backup")
    with pytest.raises(StorageError) as caught:
        await backup_database(db_path, target)
    assert caught.value.code == "backup_exists"
    assert target.read_bytes() == b"yesterday's backup"

    report = await backup_database(db_path, target, overwrite=True)
    assert report.ok and report.schema_version == latest_version()
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


async def test_backup_errors_have_clear_codes(db: Database, db_path: Path, tmp_path: Path) -> None:
    cases = [
        (tmp_path / "nothing-here.db", tmp_path / "a.db", "storage_not_found"),
        (db_path, tmp_path / "no" / "such" / "dir" / "a.db", "backup_failed"),
        (db_path, db_path, "backup_failed"),
    ]
    for source, dest, code in cases:
        with pytest.raises(StorageError) as caught:
            await backup_database(source, dest, overwrite=True)
        assert caught.value.code == code, (source, dest)
    assert await db.ping()  # the live database was not replaced


def make_copy(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT)")
    conn.executemany("INSERT INTO t (body) VALUES (?)", [(f"row {i:04d}",) for i in range(2000)])
    conn.execute("CREATE INDEX t_body ON t (body)")  # written after the rows: later in the file
    conn.commit()
    conn.close()


def test_integrity_check_reports_an_index_that_disagrees_with_its_table(tmp_path: Path) -> None:
    path = tmp_path / "copy.db"
    make_copy(path)
    assert integrity_check(path) == []
    data = bytearray(path.read_bytes())
    at = data.rfind(b"row 1234")  # the index's copy of the key
    data[at:at + 8] = b"row 1235"
    path.write_bytes(data)
    assert integrity_check(path) == ["row 1235 missing from index t_body"]


def test_integrity_check_reports_a_scribbled_page(tmp_path: Path) -> None:
    path = tmp_path / "copy.db"
    make_copy(path)
    size = path.stat().st_size
    with path.open("r+b") as handle:
        handle.seek(size // 2)
        handle.write(os.urandom(2048))
    problems = integrity_check(path)
    assert problems, "corruption went unnoticed"
    assert all(isinstance(p, str) and p and p != "ok" for p in problems)


def test_integrity_check_of_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "junk.db"
    path.write_bytes(os.urandom(8192))
    assert integrity_check(path) == ["file is not a database"]
    with pytest.raises(StorageError) as caught:
        integrity_check(tmp_path / "missing.db")
    assert caught.value.code == "storage_not_found"
