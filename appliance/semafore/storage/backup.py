"""Online backup of the database, and integrity checks of database files.

:func:`backup_database` copies a live database with SQLite's online backup API in one step: the
copy is one consistent snapshot, and in WAL mode the server keeps writing meanwhile. The copy is
written to a temporary file beside the target (mode 0600), switched to a self-contained
rollback-journal file, fsynced and renamed into place; then ``PRAGMA integrity_check`` is run on
it and the result is reported.
"""

from __future__ import annotations

import asyncio
import errno
import os
import secrets
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from semafore.storage.errors import StorageError


@dataclass(frozen=True, slots=True)
class BackupReport:
    path: Path
    size_bytes: int
    schema_version: int
    problems: tuple[str, ...]  # from PRAGMA integrity_check; empty when the copy is sound
    seconds: float

    @property
    def ok(self) -> bool:
        return not self.problems


async def backup_database(db_path: Path, dest: Path, *, overwrite: bool = False) -> BackupReport:
    """Copy the database at ``db_path`` to ``dest`` while it may be in use, then check the copy.

    Raises ``storage_not_found`` (no database), ``backup_exists`` (``dest`` exists and
    ``overwrite`` is false) or ``backup_failed``. A copy that fails the integrity check is still
    written; the report's ``problems`` say what is wrong.
    """
    return await asyncio.to_thread(_backup, Path(db_path), Path(dest), overwrite)


def integrity_check(path: Path) -> list[str]:
    """The problems ``PRAGMA integrity_check`` finds in the database file; [] when it is sound.

    Blocking; opens the file read-only. A file that is not a database at all is one problem.
    """
    return _inspect(Path(path))[0]


def _backup(source: Path, dest: Path, overwrite: bool) -> BackupReport:
    started = time.monotonic()
    if not source.is_file():
        raise StorageError(f"{source}: no such database file", code="storage_not_found")
    if dest.resolve() == source.resolve():
        raise StorageError("the backup must not replace the database itself", code="backup_failed")
    if dest.exists() and not overwrite:
        raise StorageError(f"{dest} already exists", code="backup_exists")
    tmp = dest.with_name(f".{dest.name}.{secrets.token_hex(8)}.tmp")
    try:
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except OSError as exc:
        raise StorageError(
            f"cannot write to {dest.parent}: {exc.strerror}", code="backup_failed"
        ) from exc
    try:
        _copy(source, tmp)
        _fsync(tmp)
        _publish(tmp, dest, overwrite=overwrite)
    except sqlite3.Error as exc:
        raise StorageError(f"backup of {source} failed: {exc}", code="backup_failed") from exc
    except OSError as exc:
        raise StorageError(
            f"cannot write backup {dest}: {exc.strerror}", code="backup_failed"
        ) from exc
    finally:
        tmp.unlink(missing_ok=True)
    problems, version = _inspect(dest)
    return BackupReport(
        path=dest,
        size_bytes=dest.stat().st_size,
        schema_version=version,
        problems=tuple(problems),
        seconds=time.monotonic() - started,
    )


def _copy(source: Path, tmp: Path) -> None:
    src = sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True)
    try:
        dst = sqlite3.connect(tmp)
        try:
            src.backup(dst)  # all pages in one step: one read transaction, one snapshot
            # The copy carries the source's WAL flag; make it one self-contained file.
            dst.execute("PRAGMA journal_mode = DELETE")
        finally:
            dst.close()
    finally:
        src.close()


def _publish(tmp: Path, dest: Path, *, overwrite: bool) -> None:
    if overwrite:
        os.replace(tmp, dest)
    else:
        try:
            os.link(tmp, dest)  # fails if dest appeared meanwhile, unlike rename
        except FileExistsError:
            raise StorageError(f"{dest} already exists", code="backup_exists") from None
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP):
                raise
            if dest.exists():  # no hard links on this file system (vfat, some mounts)
                raise StorageError(f"{dest} already exists", code="backup_exists") from None
            os.rename(tmp, dest)
    _fsync(dest.parent)


def _inspect(path: Path) -> tuple[list[str], int]:
    if not path.is_file():
        raise StorageError(f"{path}: no such database file", code="storage_not_found")
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            rows = conn.execute("PRAGMA integrity_check").fetchall()
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        return [str(exc)], 0
    problems = [str(row[0]) for row in rows]
    return ([] if problems == ["ok"] else problems), version


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
