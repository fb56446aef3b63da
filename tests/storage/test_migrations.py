"""Append-only numbered migrations and the recorded schema version."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import aiosqlite
import pytest

from semafore.storage import Database, StorageError, latest_version
from semafore.storage.migrations import apply_migrations, available_migrations

from .notes import refused_open


def files_of(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def make_migrations(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir()
    for name, sql in files.items():
        (directory / name).write_text(sql)
    return directory


def user_version(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("PRAGMA user_version").fetchone()[0]
    finally:
        conn.close()


async def test_a_new_database_gets_every_migration_once_and_reopening_changes_nothing(
    db_path: Path,
) -> None:
    shipped = [m.name for m in available_migrations()]
    assert shipped and latest_version() == len(shipped)
    db = Database(db_path)
    await db.open()
    await db.close()
    assert db.applied_migrations == shipped
    assert user_version(db_path) == latest_version()
    conn = sqlite3.connect(db_path)
    try:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    finally:
        conn.close()
    assert "appliance_meta" in tables

    again = Database(db_path)
    await again.open()
    await again.close()
    assert again.applied_migrations == []
    assert user_version(db_path) == latest_version()


async def test_a_database_from_newer_code_is_refused_and_left_untouched(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    conn = sqlite3.connect(db_path)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("CREATE TABLE from_the_future (x)")
    conn.execute(f"PRAGMA user_version = {latest_version() + 1}")
    conn.close()
    before = files_of(db_path.parent)

    assert (await refused_open(Database(db_path))).code == "schema_too_new"
    assert files_of(db_path.parent) == before


async def test_a_rollback_journal_database_from_newer_code_gets_no_wal_files(
    db_path: Path,
) -> None:
    db_path.parent.mkdir(parents=True)
    conn = sqlite3.connect(db_path)
    conn.execute(f"PRAGMA user_version = {latest_version() + 5}")
    conn.close()
    before = files_of(db_path.parent)
    assert (await refused_open(Database(db_path))).code == "schema_too_new"
    assert files_of(db_path.parent) == before  # not switched to WAL, nothing created


async def test_an_old_database_is_refused_when_migrating_is_not_allowed(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    sqlite3.connect(db_path).close()  # version 0
    assert (await refused_open(Database(db_path), migrate=False)).code == "schema_too_old"
    assert user_version(db_path) == 0


async def test_an_up_to_date_database_opens_without_migrating(db_path: Path) -> None:
    first = Database(db_path)
    await first.open()
    await first.close()
    db = Database(db_path)
    await db.open(migrate=False)
    try:
        assert await db.ping()
    finally:
        await db.close()


async def test_a_missing_database_is_not_created_when_migrating_is_not_allowed(
    db_path: Path,
) -> None:
    assert (await refused_open(Database(db_path), migrate=False)).code == "storage_not_found"
    assert not db_path.exists()


@pytest.mark.parametrize(
    "names",
    [
        ["0001_a.sql", "0003_c.sql"],  # gap
        ["0002_b.sql"],  # does not start at 1
        ["0001_a.sql", "0001_b.sql"],  # duplicate number
        ["0001_a.sql", "0002-b.sql"],  # misnamed files are errors, not silently skipped
        ["0001_a.sql", "2_b.sql"],
        ["0001_a.sql", "0002_Upper.sql"],
    ],
)
def test_misnumbered_or_misnamed_migrations_are_detected(tmp_path: Path, names: list[str]) -> None:
    directory = make_migrations(tmp_path / "m", {n: "CREATE TABLE t (x);" for n in names})
    with pytest.raises(StorageError) as caught:
        available_migrations(directory)
    assert caught.value.code == "migration_invalid"


def test_migrations_are_ordered_and_other_files_ignored(tmp_path: Path) -> None:
    directory = make_migrations(tmp_path / "m", {
        "0002_b.sql": "B", "0001_a.sql": "A", "0003_c.sql": "C", "README.md": "notes",
    })
    assert [(m.version, m.name, m.sql) for m in available_migrations(directory)] == [
        (1, "0001_a.sql", "A"), (2, "0002_b.sql", "B"), (3, "0003_c.sql", "C"),
    ]
    assert latest_version(directory) == 3


async def test_a_failing_migration_is_rolled_back_and_later_ones_not_run(tmp_path: Path) -> None:
    directory = make_migrations(tmp_path / "m", {
        "0001_base.sql": "CREATE TABLE base (x);",
        "0002_broken.sql": "CREATE TABLE half (x);\nINSERT INTO missing VALUES (1);",
        "0003_later.sql": "CREATE TABLE later (x);",
    })
    async with aiosqlite.connect(tmp_path / "m.db", isolation_level=None) as conn:
        with pytest.raises(StorageError) as caught:
            await apply_migrations(conn, directory=directory)
        assert caught.value.code == "migration_failed"
        assert "0002_broken.sql" in str(caught.value)
        async with conn.execute("PRAGMA user_version") as cursor:
            assert await cursor.fetchone() == (1,)
        async with conn.execute("SELECT name FROM sqlite_master") as cursor:
            assert [row[0] for row in await cursor.fetchall()] == ["base"]
        assert not conn.in_transaction


async def test_a_migration_may_rebuild_a_referenced_table(tmp_path: Path) -> None:
    # SQLite's table-rebuild procedure (the only way to change a column) drops a table other
    # rows point at; it must work although the writer runs with foreign keys on.
    directory = make_migrations(tmp_path / "m", {
        "0001_base.sql": """
            CREATE TABLE parent (id INTEGER PRIMARY KEY, name TEXT);
            CREATE TABLE child (parent_id INTEGER NOT NULL REFERENCES parent (id));
            INSERT INTO parent VALUES (1, 'one');
            INSERT INTO child VALUES (1);
        """,
        "0002_rebuild.sql": """
            CREATE TABLE parent_new (id INTEGER PRIMARY KEY, name TEXT NOT NULL) STRICT;
            INSERT INTO parent_new SELECT id, name FROM parent;
            DROP TABLE parent;
            ALTER TABLE parent_new RENAME TO parent;
        """,
    })
    async with aiosqlite.connect(tmp_path / "m.db", isolation_level=None) as conn:
        await conn.execute("PRAGMA foreign_keys = ON")
        assert await apply_migrations(conn, directory=directory) == [
            "0001_base.sql", "0002_rebuild.sql"
        ]
        async with conn.execute("PRAGMA foreign_keys") as cursor:
            assert await cursor.fetchone() == (1,)  # switched back on afterwards
        with pytest.raises(sqlite3.IntegrityError):
            await conn.execute("INSERT INTO child VALUES (2)")


async def test_a_migration_that_leaves_dangling_references_is_rolled_back(
    tmp_path: Path,
) -> None:
    directory = make_migrations(tmp_path / "m", {
        "0001_base.sql": """
            CREATE TABLE parent (id INTEGER PRIMARY KEY);
            CREATE TABLE child (parent_id INTEGER NOT NULL REFERENCES parent (id));
        """,
        "0002_orphan.sql": "INSERT INTO child VALUES (7);",
    })
    async with aiosqlite.connect(tmp_path / "m.db", isolation_level=None) as conn:
        with pytest.raises(StorageError) as caught:
            await apply_migrations(conn, directory=directory)
        assert caught.value.code == "migration_failed"
        assert "child" in str(caught.value)
        async with conn.execute("SELECT count(*) FROM child") as cursor:
            assert await cursor.fetchone() == (0,)
        async with conn.execute("PRAGMA user_version") as cursor:
            assert await cursor.fetchone() == (1,)


async def test_a_migration_that_commits_by_itself_is_reported(tmp_path: Path) -> None:
    directory = make_migrations(tmp_path / "m", {"0001_rogue.sql": "CREATE TABLE t (x); COMMIT;"})
    async with aiosqlite.connect(tmp_path / "m.db", isolation_level=None) as conn:
        with pytest.raises(StorageError) as caught:
            await apply_migrations(conn, directory=directory)
    assert caught.value.code == "migration_failed"
    assert "end the transaction" in str(caught.value)
