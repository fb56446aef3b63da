"""The SQLite database: one writer with group commit, read-only readers, migrations.

Every write is a named *unit of work*: an async callable that receives the writer connection
and runs its statements. Units are queued; the writer task takes as many as are waiting (up to
``max_batch_units``), runs each inside its own SAVEPOINT within one ``BEGIN IMMEDIATE``
transaction, COMMITs once, and only then answers each caller. A unit that raises is rolled back
to its savepoint and gets its exception; the other units in the batch still commit.

Reads go through a small pool of read-only connections (``mode=ro``); in WAL mode they never
block the writer and always see committed data.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from semafore.storage.errors import StorageError
from semafore.storage.migrations import apply_migrations

log = logging.getLogger("semafore.storage")

T = TypeVar("T")
UnitOfWork = Callable[[aiosqlite.Connection], Awaitable[T]]
CommitObserver = Callable[[int, float], None]


@dataclass(slots=True)
class _Pending:
    name: str
    unit: UnitOfWork[Any]
    future: asyncio.Future[Any]
    result: Any = None
    error: BaseException | None = None
    done: bool = field(default=False)


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
        self._busy_timeout_ms = busy_timeout_ms
        self._reader_count = reader_connections
        self._max_batch = max_batch_units
        self._writer: aiosqlite.Connection | None = None
        self._readers: asyncio.Queue[aiosqlite.Connection] = asyncio.Queue()
        self._all_readers: list[aiosqlite.Connection] = []
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._writer_task: asyncio.Task[None] | None = None
        self._commit_observers: list[CommitObserver] = []
        self.sqlite_version = sqlite3.sqlite_version

    # -- lifetime ---------------------------------------------------------------------------

    async def open(self, *, migrate: bool = True) -> None:
        """Open the writer, bring the schema up to date (or refuse a newer one), open readers."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._writer = await self._connect(readonly=False)
        try:
            await apply_migrations(self._writer, migrate=migrate)
        except BaseException:
            await self._writer.close()
            self._writer = None
            raise
        for _ in range(self._reader_count):
            reader = await self._connect(readonly=True)
            self._all_readers.append(reader)
            self._readers.put_nowait(reader)
        self._writer_task = asyncio.create_task(self._writer_loop(), name="semafore-writer")
        log.info("database open: sqlite_version=%s path=%s", sqlite3.sqlite_version, self.path)

    async def close(self) -> None:
        """Finish every queued write, then close all connections."""
        if self._writer_task is not None:
            self._queue.put_nowait(_STOP)
            await self._writer_task
            self._writer_task = None
        for reader in self._all_readers:
            await reader.close()
        self._all_readers.clear()
        if self._writer is not None:
            await self._writer.close()
            self._writer = None

    async def _connect(self, *, readonly: bool) -> aiosqlite.Connection:
        if readonly:
            conn = await aiosqlite.connect(
                f"file:{self.path}?mode=ro", uri=True, isolation_level=None
            )
        else:
            conn = await aiosqlite.connect(self.path, isolation_level=None)
        await self._apply_pragmas(conn, readonly=readonly)
        return conn

    async def _apply_pragmas(self, conn: aiosqlite.Connection, *, readonly: bool) -> None:
        # The one place that sets connection pragmas. WAL + synchronous=FULL: a COMMIT is on
        # disk before anyone is answered. secure_delete: deleted rows are overwritten.
        await conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_ms)}")
        await conn.execute("PRAGMA foreign_keys = ON")
        if readonly:
            await conn.execute("PRAGMA query_only = ON")
            return
        await conn.execute("PRAGMA journal_mode = WAL")
        await conn.execute("PRAGMA synchronous = FULL")
        await conn.execute("PRAGMA secure_delete = ON")

    # -- writes -----------------------------------------------------------------------------

    def add_commit_observer(self, observer: CommitObserver) -> None:
        """Call ``observer(units_in_batch, seconds)`` after every COMMIT (for metrics)."""
        self._commit_observers.append(observer)

    @property
    def queue_depth(self) -> int:
        """Units waiting for the writer."""
        return self._queue.qsize()

    async def write(self, name: str, unit: UnitOfWork[T]) -> T:
        """Run ``unit`` in the writer's next transaction; return its result after COMMIT."""
        if self._writer_task is None:
            raise StorageError("database is not open", code="storage_unavailable")
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Pending(name, unit, future))
        return await future

    async def _writer_loop(self) -> None:
        stopping = False
        while not stopping:
            first = await self._queue.get()
            if first is _STOP:
                break
            batch = [first]
            while len(batch) < self._max_batch and not self._queue.empty():
                item = self._queue.get_nowait()
                if item is _STOP:
                    stopping = True
                    break
                batch.append(item)
            await self._run_batch(batch)
            if stopping:  # finish what was queued behind the stop marker too
                while not self._queue.empty():
                    item = self._queue.get_nowait()
                    if item is not _STOP:
                        await self._run_batch([item])

    async def _run_batch(self, batch: list[_Pending]) -> None:
        conn = self._writer
        assert conn is not None
        started = time.perf_counter()
        try:
            await conn.execute("BEGIN IMMEDIATE")
            for item in batch:
                await self._run_unit(conn, item)
            await conn.execute("COMMIT")
        except Exception as exc:
            log.error("write batch of %d units failed: %s", len(batch), type(exc).__name__)
            if conn.in_transaction:
                try:
                    await conn.execute("ROLLBACK")
                except sqlite3.Error:
                    log.exception("rollback failed")
            failure = _as_storage_error(exc)
            for item in batch:
                if not item.future.done():
                    # Units that failed on their own keep their own error.
                    item.future.set_exception(item.error or failure)
            return
        elapsed = time.perf_counter() - started
        for item in batch:
            if item.future.done():
                continue
            if item.error is not None:
                item.future.set_exception(item.error)
            else:
                item.future.set_result(item.result)
        for observer in self._commit_observers:
            observer(len(batch), elapsed)

    async def _run_unit(self, conn: aiosqlite.Connection, item: _Pending) -> None:
        await conn.execute("SAVEPOINT unit")
        try:
            item.result = await item.unit(conn)
        except sqlite3.Error as exc:
            if _is_fatal(exc):
                raise  # disk full or I/O error: the whole batch fails, nobody is acked
            await conn.execute("ROLLBACK TO unit")
            item.error = _as_storage_error(exc, unit=item.name)
        except Exception as exc:
            await conn.execute("ROLLBACK TO unit")
            item.error = exc
        await conn.execute("RELEASE unit")

    # -- reads ------------------------------------------------------------------------------

    @asynccontextmanager
    async def read(self) -> AsyncIterator[aiosqlite.Connection]:
        """Borrow a read-only connection that sees everything committed so far."""
        if not self._all_readers:
            raise StorageError("database is not open", code="storage_unavailable")
        conn = await self._readers.get()
        try:
            yield conn
        finally:
            self._readers.put_nowait(conn)

    async def ping(self) -> bool:
        """True when a reader can run a trivial query (used by readiness checks)."""
        try:
            async with self.read() as conn:
                async with conn.execute("SELECT 1") as cursor:
                    return (await cursor.fetchone()) == (1,)
        except (sqlite3.Error, StorageError):
            return False


def _is_fatal(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    return code in {sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CORRUPT} or (
        code is not None and code & 0xFF in {sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR}
    )


def _as_storage_error(exc: BaseException, unit: str | None = None) -> StorageError:
    if isinstance(exc, StorageError):
        return exc
    if isinstance(exc, sqlite3.Error):
        if _is_fatal(exc):
            return StorageError("storage is full or failing", code="storage_unavailable")
        where = f" in {unit}" if unit else ""
        return StorageError(f"database error{where}: {type(exc).__name__}", code="storage_error")
    return StorageError("write failed", code="storage_unavailable")
