"""The SQLite database: one writer with group commit, read-only readers, migrations.

Every write is a named *unit of work*: an async callable that receives the writer connection
and runs its statements. Units are queued; the writer task takes as many as are waiting (up to
``max_batch_units``), runs each inside its own SAVEPOINT within one ``BEGIN IMMEDIATE``
transaction, COMMITs once, and only then answers each caller. A unit that raises is rolled back
to its savepoint and gets its exception; the other units in the batch still commit. When the
disk is full or failing, or the COMMIT fails, the whole batch is rolled back and every caller
gets ``storage_unavailable``: nobody is told a write happened unless it is committed.

Reads go through a small pool of read-only connections (``mode=ro`` and ``query_only``); in WAL
mode they never block the writer and always see committed data.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from semafore.storage.errors import StorageError
from semafore.storage.migrations import (
    apply_migrations,
    available_migrations,
    pending_migrations,
    schema_version,
)

log = logging.getLogger("semafore.storage")

T = TypeVar("T")
UnitOfWork = Callable[[aiosqlite.Connection], Awaitable[T]]
CommitObserver = Callable[[int, float], None]

MIN_SQLITE_VERSION = (3, 37, 0)  # STRICT tables

# Primary result codes that mean the disk or the database file is at fault (or another process
# holds the lock): the batch's fate is not the unit's doing, so the whole batch fails.
_UNAVAILABLE_CODES = frozenset({
    sqlite3.SQLITE_BUSY, sqlite3.SQLITE_NOMEM, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_IOERR,
    sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_FULL, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PROTOCOL,
    sqlite3.SQLITE_NOTADB,
})


@dataclass(slots=True, eq=False)
class _Pending:
    name: str
    unit: UnitOfWork[Any]
    future: asyncio.Future[Any]
    result: Any = None
    error: BaseException | None = None


class _TransactionLost(Exception):
    """A unit's error made SQLite roll back the whole transaction (``RAISE(ROLLBACK)``, ...)."""

    def __init__(self, item: _Pending) -> None:
        super().__init__(item.name)
        self.item = item


_STOP = object()


class Database:
    """The appliance's SQLite database. Open with :meth:`open`, close with :meth:`close`."""

    def __init__(
        self,
        path: Path,
        *,
        busy_timeout_ms: int = 5000,
        reader_connections: int = 4,
        max_batch_units: int = 1000,
    ) -> None:
        self.path = Path(path)
        self.sqlite_version = sqlite3.sqlite_version
        self.applied_migrations: list[str] = []
        self._busy_timeout_ms = int(busy_timeout_ms)
        self._reader_count = reader_connections
        self._max_batch = max_batch_units
        self._writer: aiosqlite.Connection | None = None
        self._readers: asyncio.Queue[aiosqlite.Connection] = asyncio.Queue()
        self._all_readers: list[aiosqlite.Connection] = []
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._writer_task: asyncio.Task[None] | None = None
        self._accepting = False
        self._commit_observers: list[CommitObserver] = []

    # -- lifetime ---------------------------------------------------------------------------

    async def open(self, *, migrate: bool = True) -> None:
        """Open the writer, bring the schema up to date (or refuse a newer one), open readers.

        With ``migrate=False`` an existing, up-to-date database is required (``storage_not_found``
        / ``schema_too_old``). A database written by newer code is refused (``schema_too_new``)
        before anything in it is changed.
        """
        if self._writer is not None:
            raise RuntimeError("database is already open")
        if sqlite3.sqlite_version_info < MIN_SQLITE_VERSION:
            raise StorageError(
                f"SQLite {sqlite3.sqlite_version} is too old; SemaFore needs "
                f"{'.'.join(map(str, MIN_SQLITE_VERSION))} or newer",
                code="sqlite_too_old",
            )
        log.info("opening database %s with sqlite_version=%s", self.path, sqlite3.sqlite_version)
        try:
            self._create_file(migrate=migrate)
            self._writer = await aiosqlite.connect(self.path, isolation_level=None)
            await self._writer.execute(f"PRAGMA busy_timeout = {self._busy_timeout_ms}")
            current = await schema_version(self._writer)
            pending_migrations(current, available_migrations(), migrate=migrate)
            await self._apply_pragmas(self._writer, readonly=False)
            self.applied_migrations = await apply_migrations(self._writer, migrate=migrate)
            for _ in range(self._reader_count):
                reader = await self._connect_reader()
                self._all_readers.append(reader)
                self._readers.put_nowait(reader)
        except BaseException as exc:
            await self._close_connections()
            if isinstance(exc, sqlite3.Error | OSError):
                raise StorageError(
                    f"cannot open database {self.path}: {exc}", code="storage_unavailable"
                ) from exc
            raise
        if self.applied_migrations:
            log.info("applied migrations: %s", ", ".join(self.applied_migrations))
        self._writer_task = asyncio.create_task(self._writer_loop(), name="semafore-writer")
        self._accepting = True

    async def close(self) -> None:
        """Refuse new writes, finish every queued one, then close all connections."""
        self._accepting = False
        task, self._writer_task = self._writer_task, None
        if task is not None:
            if not task.done():
                self._queue.put_nowait(_STOP)  # nothing can be queued behind it
            await asyncio.wait([task])
        await self._close_connections()

    async def _close_connections(self) -> None:
        for reader in self._all_readers:
            await reader.close()
        self._all_readers.clear()
        self._readers = asyncio.Queue()
        if self._writer is not None:
            await self._writer.close()
            self._writer = None

    def _create_file(self, *, migrate: bool) -> None:
        if self.path.exists():
            return
        if not migrate:
            raise StorageError(f"{self.path}: no such database file", code="storage_not_found")
        # Create it ourselves so it is private from the start; -wal and -shm inherit the mode.
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600))

    async def _connect_reader(self) -> aiosqlite.Connection:
        uri = f"{self.path.resolve().as_uri()}?mode=ro"
        conn = await aiosqlite.connect(uri, uri=True, isolation_level=None)
        await self._apply_pragmas(conn, readonly=True)
        return conn

    async def _apply_pragmas(self, conn: aiosqlite.Connection, *, readonly: bool) -> None:
        # The one place that sets connection pragmas. WAL + synchronous=FULL: a COMMIT is on
        # disk before anyone is answered. secure_delete: deleted rows are overwritten.
        await conn.execute(f"PRAGMA busy_timeout = {self._busy_timeout_ms}")
        await conn.execute("PRAGMA foreign_keys = ON")
        await conn.execute("PRAGMA synchronous = FULL")
        await conn.execute("PRAGMA secure_delete = ON")
        if readonly:
            await conn.execute("PRAGMA query_only = ON")
            return
        async with conn.execute("PRAGMA journal_mode = WAL") as cursor:
            row = await cursor.fetchone()
        if row is None or row[0] != "wal":
            raise StorageError(
                f"cannot put {self.path} in WAL mode (the file system may not support it)",
                code="storage_unavailable",
            )

    # -- writes -----------------------------------------------------------------------------

    def add_commit_observer(self, observer: CommitObserver) -> None:
        """Call ``observer(units_in_batch, seconds)`` after every COMMIT (for metrics)."""
        self._commit_observers.append(observer)

    @property
    def queue_depth(self) -> int:
        """Units waiting for the writer."""
        return self._queue.qsize()

    async def write(self, name: str, unit: UnitOfWork[T]) -> T:
        """Run ``unit`` in the writer's next transaction; return its result after COMMIT.

        If the caller is cancelled before the writer reaches the unit, the unit is skipped;
        once it has started it runs to completion and commits with its batch.
        """
        if not self._accepting:
            raise StorageError("database is not open", code="storage_unavailable")
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Pending(name, unit, future))
        return await future

    async def _writer_loop(self) -> None:
        try:
            while True:
                batch = [await self._queue.get()]
                while len(batch) < self._max_batch and not self._queue.empty():
                    batch.append(self._queue.get_nowait())
                units = [item for item in batch if item is not _STOP]
                if units:
                    await self._run_batch(units)
                if batch[-1] is _STOP:
                    return
        except BaseException as exc:
            # Never die silently: refuse new writes and fail the queued ones, or they would hang.
            self._accepting = False
            log.critical("database writer stopped; writes are refused until restart",
                         exc_info=True)
            while not self._queue.empty():
                item = self._queue.get_nowait()
                if item is not _STOP and not item.future.done():
                    item.future.set_exception(_unavailable("the database writer stopped"))
            if isinstance(exc, asyncio.CancelledError):
                raise

    async def _run_batch(self, batch: list[_Pending]) -> None:
        conn = self._writer
        assert conn is not None
        while batch:
            started = time.perf_counter()
            try:
                await conn.execute("BEGIN IMMEDIATE")
                for item in batch:
                    await self._run_unit(conn, item)
                await conn.execute("COMMIT")
            except _TransactionLost as lost:
                # Only that unit's doing: answer it and run the others again in a new transaction.
                assert lost.item.error is not None
                if not lost.item.future.done():
                    lost.item.future.set_exception(lost.item.error)
                batch = [item for item in batch if item is not lost.item]
                continue
            except BaseException as exc:
                await self._fail_batch(conn, batch, exc)
                if not isinstance(exc, Exception):
                    raise
                return
            self._answer(batch, time.perf_counter() - started)
            return

    def _answer(self, batch: list[_Pending], elapsed: float) -> None:
        """After COMMIT, and only then: answer each caller and tell the observers."""
        for item in batch:
            if item.future.done():
                continue
            if item.error is not None:
                item.future.set_exception(item.error)
            else:
                item.future.set_result(item.result)
        for observer in self._commit_observers:
            try:
                observer(len(batch), elapsed)
            except Exception:
                log.exception("commit observer failed")

    async def _run_unit(self, conn: aiosqlite.Connection, item: _Pending) -> None:
        item.result = item.error = None
        if item.future.cancelled():  # its caller gave up before we got to it
            return
        await conn.execute("SAVEPOINT unit")
        try:
            item.result = await item.unit(conn)
        except Exception as exc:
            if _is_unavailable(exc):
                raise  # disk full, I/O error: the whole batch fails, nobody is acknowledged
            item.error = _unit_error(exc, item.name)
            if not conn.in_transaction:
                raise _TransactionLost(item) from exc
            await conn.execute("ROLLBACK TO unit")
        await conn.execute("RELEASE unit")  # fails if the unit ended the transaction itself

    async def _fail_batch(
        self, conn: aiosqlite.Connection, batch: list[_Pending], exc: BaseException
    ) -> None:
        log.error("write batch of %d units failed: %s: %s", len(batch), type(exc).__name__, exc)
        if conn.in_transaction:
            try:
                await conn.execute("ROLLBACK")
            except Exception:
                log.exception("rollback failed")
        for item in batch:
            if not item.future.done():
                # A unit that failed on its own keeps its own error.
                item.future.set_exception(item.error or _batch_error(exc))

    # -- reads ------------------------------------------------------------------------------

    @asynccontextmanager
    async def read(self) -> AsyncIterator[aiosqlite.Connection]:
        """Borrow a read-only connection that sees everything committed so far.

        Use ``async with conn.execute(...) as cursor`` so no statement stays open.
        """
        if not self._all_readers:
            raise StorageError("database is not open", code="storage_unavailable")
        conn = await self._readers.get()
        try:
            yield conn
        finally:
            if conn in self._all_readers:
                try:
                    if conn.in_transaction:  # a BEGIN left open would pin an old snapshot
                        await conn.execute("ROLLBACK")
                finally:
                    self._readers.put_nowait(conn)

    async def ping(self) -> bool:
        """True when the writer is running and a reader answers (used by readiness checks)."""
        if not self._accepting:
            return False
        try:
            async with self.read() as conn, conn.execute("SELECT 1") as cursor:
                return (await cursor.fetchone()) == (1,)
        except (sqlite3.Error, StorageError, ValueError):
            return False


def _is_unavailable(exc: BaseException) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    return isinstance(exc, sqlite3.Error) and code is not None and code & 0xFF in _UNAVAILABLE_CODES


def _unavailable(message: str) -> StorageError:
    return StorageError(message, code="storage_unavailable")


def _unit_error(exc: Exception, unit: str) -> Exception:
    if isinstance(exc, sqlite3.Error):
        error = StorageError(f"database error in {unit}: {type(exc).__name__}: {exc}")
        error.__cause__ = exc
        return error
    return exc


def _batch_error(exc: BaseException) -> StorageError:
    if isinstance(exc, StorageError):
        return StorageError(str(exc), code=exc.code)
    if isinstance(exc, sqlite3.Error) and not _is_unavailable(exc):
        return StorageError(f"database error: {type(exc).__name__}: {exc}")
    return _unavailable("the write batch failed (storage full or failing?); nothing was written")
