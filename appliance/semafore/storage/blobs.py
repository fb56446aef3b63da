"""The blob directory: opaque encrypted files under ``<data_dir>/blobs``.

Ids are generated here (160 random bits, lowercase base32, 32 characters) and are the only
thing that names a file; a client-supplied id is checked against that alphabet and length
before it becomes a path, and the path must resolve to itself under the root (no symbolic link
anywhere on the way). Files live in 1,024 shard directories ``<root>/<first two characters>/``
made by :meth:`BlobStore.prepare`. Writes are atomic: a temporary file in ``tmp/`` is filled,
fsynced, renamed into place and the directory fsynced, so a crash leaves either the whole blob
or nothing (stale temporaries are swept at start).

Resumable uploads write a *partial* file ``partial/<id>`` piece by piece (each piece fsynced,
anything past the caller's committed offset cut off first) and publish it under the same id
with one rename. Partial files survive restarts; whoever tracks them removes them.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import itertools
import os
import re
import secrets
from collections.abc import AsyncIterable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from semafore.storage.errors import StorageError

BLOB_ID_BYTES = 20
PARTIAL_DIR = "partial"
WRITE_BUFFER_BYTES = 1 << 20  # pieces are written in runs of up to this size
_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"
_BLOB_ID = re.compile(r"[a-z2-7]{32}")

T = TypeVar("T")


def new_blob_id() -> str:
    raw = secrets.token_bytes(BLOB_ID_BYTES)
    return base64.b32encode(raw).decode("ascii").lower()


def is_blob_id(value: object) -> bool:
    return isinstance(value, str) and _BLOB_ID.fullmatch(value) is not None


@dataclass(frozen=True, slots=True)
class StoredBlob:
    blob_id: str
    size: int
    sha256: bytes


class BlobStore:
    """Atomic, jailed storage of opaque blobs. Call :meth:`prepare` once at start-up."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()
        self._tmp = self.root / "tmp"

    def prepare(self) -> int:
        """Create the directories (0700), remove temporaries left by a crash; return how many.

        Only at start-up: it would also remove the temporaries of uploads in progress.
        """
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        shards = map("".join, itertools.product(_ALPHABET, repeat=2))
        for name in ("tmp", PARTIAL_DIR, *shards):
            directory = self.root / name
            directory.mkdir(exist_ok=True, mode=0o700)
            if directory.is_symlink():
                raise StorageError(
                    f"{directory} is a symbolic link; the blob store will not follow it",
                    code="storage_unavailable",
                )
        _fsync_dir(self.root)
        removed = 0
        for stale in self._tmp.iterdir():
            if stale.is_symlink() or stale.is_file():
                stale.unlink(missing_ok=True)
                removed += 1
        return removed

    def path_for(self, blob_id: str) -> Path:
        """The file for ``blob_id``; raises ``blob_id_invalid`` for anything not ours."""
        if not is_blob_id(blob_id):
            raise StorageError("not a valid blob id", code="blob_id_invalid")
        path = self.root / blob_id[:2] / blob_id
        if path.resolve() != path:  # a symbolic link was planted on the way
            raise StorageError("not a valid blob id", code="blob_id_invalid")
        return path

    async def put(self, chunks: AsyncIterable[bytes]) -> StoredBlob:
        """Stream ``chunks`` into a new blob; never holds the whole blob in memory.

        If the stream fails or the caller is cancelled, neither the blob nor a temporary remains.
        """
        blob_id = new_blob_id()
        final = self.path_for(blob_id)
        tmp = self._tmp / f"{blob_id}.part"
        digest = hashlib.sha256()
        size = 0
        try:
            fd = await _io(os.open, tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                async for chunk in chunks:  # the source's own errors pass through unchanged
                    digest.update(chunk)
                    size += len(chunk)
                    await _io(_write_all, fd, chunk)
                await _io(os.fsync, fd)
            finally:
                os.close(fd)
            await _io(_publish, tmp, final)
        except BaseException:
            tmp.unlink(missing_ok=True)
            final.unlink(missing_ok=True)
            raise
        return StoredBlob(blob_id, size, digest.digest())

    async def put_bytes(self, data: bytes) -> StoredBlob:
        async def one() -> AsyncIterable[bytes]:
            yield data

        return await self.put(one())

    def exists(self, blob_id: str) -> bool:
        return self.path_for(blob_id).is_file()

    def size(self, blob_id: str) -> int:
        try:
            return self.path_for(blob_id).stat().st_size
        except FileNotFoundError:
            raise StorageError("no such blob", code="blob_not_found") from None

    def read_range(self, blob_id: str, start: int = 0, end: int | None = None,
                   chunk_size: int = 1 << 16) -> Iterator[bytes]:
        """Yield bytes ``[start, end)`` of the blob in chunks (blocking; run in a thread).

        A missing blob raises ``blob_not_found`` here, before the first chunk is asked for.
        """
        if start < 0 or (end is not None and end < start) or chunk_size <= 0:
            raise ValueError("invalid byte range")
        path = self.path_for(blob_id)
        if not path.is_file():
            raise StorageError("no such blob", code="blob_not_found")
        return _read_chunks(path, start, end, chunk_size)

    def delete(self, blob_id: str) -> bool:
        path = self.path_for(blob_id)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        _fsync_dir(path.parent)
        return True

    def ids(self) -> Iterator[str]:
        for shard in self.root.iterdir():
            if shard.is_dir() and not shard.is_symlink() and len(shard.name) == 2:
                for entry in shard.iterdir():
                    if is_blob_id(entry.name):
                        yield entry.name

    # -- partial files (resumable uploads) ----------------------------------------------------

    def partial_path(self, blob_id: str) -> Path:
        """The partial file of ``blob_id``; raises ``blob_id_invalid`` for anything not ours."""
        if not is_blob_id(blob_id):
            raise StorageError("not a valid blob id", code="blob_id_invalid")
        path = self.root / PARTIAL_DIR / blob_id
        if path.resolve() != path:
            raise StorageError("not a valid blob id", code="blob_id_invalid")
        return path

    def partial_size(self, blob_id: str) -> int | None:
        """Bytes in the partial file, or None when there is none."""
        try:
            return self.partial_path(blob_id).stat().st_size
        except FileNotFoundError:
            return None

    def partial_ids(self) -> Iterator[str]:
        for entry in (self.root / PARTIAL_DIR).iterdir():
            if is_blob_id(entry.name):
                yield entry.name

    async def append_partial(
        self, blob_id: str, offset: int, chunks: AsyncIterable[bytes], *, limit: int
    ) -> int:
        """Write ``chunks`` at ``offset`` of the partial file, fsync, return its new size.

        The file is created at offset 0 and cut to ``offset`` first (bytes past the caller's
        committed offset are dropped). If the chunks would take it past ``limit`` it is cut back
        to ``offset`` and ``blob_too_long`` is raised; any other failure also cuts it back.
        """
        if not 0 <= offset <= limit:
            raise ValueError("offset outside the blob")
        path = self.partial_path(blob_id)
        flags = os.O_WRONLY | os.O_NOFOLLOW | (os.O_CREAT if offset == 0 else 0)
        try:
            fd = await _blocking(os.open, path, flags, 0o600)
        except FileNotFoundError:
            raise StorageError("no such partial blob", code="blob_not_found") from None
        except OSError as exc:
            raise _unavailable(exc) from exc
        size = offset
        try:
            await _io(_truncate_at, fd, offset)
            buffer = memoryview(bytearray(WRITE_BUFFER_BYTES))  # one allocation, reused
            filled = 0
            async for chunk in chunks:
                if size + filled + len(chunk) > limit:
                    raise StorageError("more bytes than the blob's length", code="blob_too_long")
                data = memoryview(chunk)
                while data:
                    taken = min(len(data), WRITE_BUFFER_BYTES - filled)
                    buffer[filled : filled + taken] = data[:taken]
                    filled += taken
                    data = data[taken:]
                    if filled == WRITE_BUFFER_BYTES:
                        await _io(_write_all, fd, buffer)
                        size += filled
                        filled = 0
            if filled:
                await _io(_write_all, fd, buffer[:filled])
                size += filled
            await _io(os.fsync, fd)
        except BaseException:
            with contextlib.suppress(OSError):
                await _blocking(_truncate_at, fd, offset)
                await _blocking(os.fsync, fd)
            raise
        finally:
            os.close(fd)
        return size

    async def publish_partial(self, blob_id: str) -> None:
        """Rename the (fsynced) partial file to the blob; nothing to do if that happened before."""
        partial, final = self.partial_path(blob_id), self.path_for(blob_id)
        try:
            await _blocking(_publish, partial, final)
        except FileNotFoundError:
            if not final.is_file():
                raise StorageError("no such partial blob", code="blob_not_found") from None
        except OSError as exc:
            raise _unavailable(exc) from exc
        await _blocking(_fsync_dir, partial.parent)

    def delete_partial(self, blob_id: str) -> bool:
        path = self.partial_path(blob_id)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        return True


def _read_chunks(path: Path, start: int, end: int | None, chunk_size: int) -> Iterator[bytes]:
    try:
        handle = path.open("rb")
    except FileNotFoundError:  # deleted since read_range() looked
        raise StorageError("no such blob", code="blob_not_found") from None
    with handle:
        handle.seek(start)
        remaining = None if end is None else end - start
        while remaining is None or remaining > 0:
            want = chunk_size if remaining is None else min(chunk_size, remaining)
            data = handle.read(want)
            if not data:
                return
            if remaining is not None:
                remaining -= len(data)
            yield data


async def _blocking(fn: Callable[..., T], *args: object) -> T:
    """Run ``fn`` in a thread. If cancelled, wait for it to finish before returning, so the
    caller's clean-up never races it (closing a file descriptor it is still writing to)."""
    task = asyncio.ensure_future(asyncio.to_thread(fn, *args))
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        await asyncio.wait([task])
        if not task.cancelled():
            task.exception()  # already handled by the caller's clean-up; mark it retrieved
        raise


def _publish(tmp: Path, final: Path) -> None:
    os.rename(tmp, final)
    _fsync_dir(final.parent)


async def _io(fn: Callable[..., T], *args: object) -> T:
    """:func:`_blocking` for file operations: an OSError means the disk is full or failing."""
    try:
        return await _blocking(fn, *args)
    except OSError as exc:
        raise _unavailable(exc) from exc


def _unavailable(exc: OSError) -> StorageError:
    return StorageError(f"blob store: {exc.strerror}", code="storage_unavailable")


def _truncate_at(fd: int, offset: int) -> None:
    os.ftruncate(fd, offset)
    os.lseek(fd, offset, os.SEEK_SET)


def _write_all(fd: int, data: bytes | bytearray) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
