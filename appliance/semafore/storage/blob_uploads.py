"""File records (migration 0006): uploads in progress and complete blobs, by organisation.

Units of work: ``files.create`` (quota and open-upload cap checked in the same transaction as
the insert, so concurrent creations cannot overshoot), ``files.progress``, ``files.complete``,
``files.remove``. The bytes are in the :class:`~semafore.storage.blobs.BlobStore`; callers
remove a file's bytes together with its row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import aiosqlite

from semafore.storage.database import Database
from semafore.storage.errors import StorageError

State = Literal["uploading", "complete"]
# Statements are built from this constant and "?" placeholders only, never from values.
_COLUMNS = (
    "file_id, org_id, user_id, device_id, length, received, state, created_at, updated_at,"
    " completed_at, expires_at"
)


@dataclass(frozen=True, slots=True)
class FileRecord:
    file_id: str
    org_id: str
    user_id: str
    device_id: int
    length: int
    received: int
    state: State
    created_at: int
    updated_at: int
    completed_at: int | None = None
    expires_at: int | None = None

    @property
    def complete(self) -> bool:
        return self.state == "complete"


class QuotaExceeded(StorageError):
    """The organisation's stored and reserved bytes plus this upload would pass its quota."""

    code = "org_quota_exceeded"

    def __init__(self, used: int) -> None:
        super().__init__("organisation storage quota exceeded", code=self.code)
        self.used = used


class TooManyOpenUploads(StorageError):
    code = "too_many_uploads"


class FileRecords:
    def __init__(self, database: Database) -> None:
        self._db = database

    # -- writes -------------------------------------------------------------------------------

    async def create(
        self, record: FileRecord, *, quota_bytes: int, max_open_per_device: int, now: int
    ) -> None:
        async def unit(conn: aiosqlite.Connection) -> None:
            used = await _org_usage(conn, record.org_id, now)
            if used + record.length > quota_bytes:
                raise QuotaExceeded(used)
            async with conn.execute(
                "SELECT count(*) FROM files WHERE user_id = ? AND device_id = ?"
                " AND state = 'uploading'",
                (record.user_id, record.device_id),
            ) as cursor:
                (open_uploads,) = await cursor.fetchone() or (0,)
            if open_uploads >= max_open_per_device:
                raise TooManyOpenUploads("too many unfinished uploads", code="too_many_uploads")
            await conn.execute(
                f"INSERT INTO files ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",  # noqa: S608
                _row(record),
            )

        await self._db.write("files.create", unit)

    async def progress(self, file_id: str, received: int, now: int) -> None:
        """Record bytes durably in the partial file (only ever called after its fsync)."""

        async def unit(conn: aiosqlite.Connection) -> None:
            await conn.execute(
                "UPDATE files SET received = ?, updated_at = ?"
                " WHERE file_id = ? AND state = 'uploading'",
                (received, now, file_id),
            )

        await self._db.write("files.progress", unit)

    async def complete(self, file_id: str, now: int, expires_at: int) -> FileRecord | None:
        """Mark a fully received upload complete (after its file was published)."""

        async def unit(conn: aiosqlite.Connection) -> FileRecord | None:
            await conn.execute(
                "UPDATE files SET state = 'complete', received = length, updated_at = ?,"
                " completed_at = ?, expires_at = ? WHERE file_id = ? AND state = 'uploading'",
                (now, now, expires_at, file_id),
            )
            return await _get(conn, file_id)

        return await self._db.write("files.complete", unit)

    async def remove(self, file_ids: list[str]) -> list[FileRecord]:
        """Delete rows; returns the ones that existed (their files are the caller's to remove)."""

        async def unit(conn: aiosqlite.Connection) -> list[FileRecord]:
            removed = []
            for file_id in file_ids:
                async with conn.execute(
                    f"DELETE FROM files WHERE file_id = ? RETURNING {_COLUMNS}",  # noqa: S608
                    (file_id,),
                ) as cursor:
                    row = await cursor.fetchone()
                if row is not None:
                    removed.append(_record(row))
            return removed

        return await self._db.write("files.remove", unit)

    # -- reads --------------------------------------------------------------------------------

    async def get(self, file_id: str) -> FileRecord | None:
        async with self._db.read() as conn:
            return await _get(conn, file_id)

    async def org_usage(self, org_id: str, now: int) -> int:
        async with self._db.read() as conn:
            return await _org_usage(conn, org_id, now)

    async def stored_bytes(self) -> int:
        async with self._db.read() as conn, conn.execute(
            "SELECT coalesce(sum(length), 0) FROM files WHERE state = 'complete'"
        ) as cursor:
            (total,) = await cursor.fetchone() or (0,)
        return int(total)

    async def expired(self, now: int, limit: int) -> list[str]:
        async with self._db.read() as conn, conn.execute(
            "SELECT file_id FROM files WHERE state = 'complete' AND expires_at <= ? LIMIT ?",
            (now, limit),
        ) as cursor:
            return [row[0] for row in await cursor.fetchall()]

    async def abandoned(self, idle_since: int, limit: int) -> list[str]:
        async with self._db.read() as conn, conn.execute(
            "SELECT file_id FROM files WHERE state = 'uploading' AND updated_at <= ? LIMIT ?",
            (idle_since, limit),
        ) as cursor:
            return [row[0] for row in await cursor.fetchall()]

    async def known(self, file_ids: list[str]) -> set[str]:
        """Which of ``file_ids`` have a row (for the stray-file check)."""
        found: set[str] = set()
        async with self._db.read() as conn:
            for start in range(0, len(file_ids), 500):
                batch = file_ids[start : start + 500]
                marks = ",".join("?" * len(batch))
                async with conn.execute(
                    f"SELECT file_id FROM files WHERE file_id IN ({marks})", batch  # noqa: S608
                ) as cursor:
                    found.update(row[0] for row in await cursor.fetchall())
        return found


async def _get(conn: aiosqlite.Connection, file_id: str) -> FileRecord | None:
    async with conn.execute(
        f"SELECT {_COLUMNS} FROM files WHERE file_id = ?", (file_id,)  # noqa: S608
    ) as cursor:
        row = await cursor.fetchone()
    return _record(row) if row is not None else None


async def _org_usage(conn: aiosqlite.Connection, org_id: str, now: int) -> int:
    # Uploads in progress reserve their declared length; expired blobs no longer count.
    async with conn.execute(
        "SELECT coalesce(sum(length), 0) FROM files WHERE org_id = ?"
        " AND (state = 'uploading' OR expires_at > ?)",
        (org_id, now),
    ) as cursor:
        (used,) = await cursor.fetchone() or (0,)
    return int(used)


def _row(r: FileRecord) -> tuple[object, ...]:
    return (
        r.file_id, r.org_id, r.user_id, r.device_id, r.length, r.received, r.state,
        r.created_at, r.updated_at, r.completed_at, r.expires_at,
    )


def _record(row: tuple[object, ...] | aiosqlite.Row) -> FileRecord:
    return FileRecord(*row)  # type: ignore[arg-type]
