"""The blob directory: opaque encrypted files under ``<data_dir>/blobs``.

Ids are generated here (160 random bits, lowercase base32, 32 characters) and are the only
thing that names a file; a client-supplied id is checked against that alphabet and length
before it becomes a path, and every path is checked to stay under the root. Writes are atomic:
a temporary file in ``tmp/`` is filled, fsynced, renamed into place and the directory fsynced,
so a crash leaves either the whole blob or nothing (stale temporaries are swept at start).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import re
import secrets
from collections.abc import AsyncIterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from semafore.storage.errors import StorageError

BLOB_ID_BYTES = 20
_BLOB_ID = re.compile(r"^[a-z2-7]{32}$")


def new_blob_id() -> str:
    raw = secrets.token_bytes(BLOB_ID_BYTES)
    return base64.b32encode(raw).decode("ascii").lower()


def is_blob_id(value: str) -> bool:
    return bool(_BLOB_ID.fullmatch(value))


@dataclass(frozen=True, slots=True)
class StoredBlob:
    blob_id: str
    size: int
    sha256: bytes


class BlobStore:
    """Atomic, jailed storage of opaque blobs."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()
        self._tmp = self.root / "tmp"

    def prepare(self) -> int:
        """Create the directories (0700) and remove temporaries left by a crash; return count."""
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._tmp.mkdir(exist_ok=True, mode=0o700)
        removed = 0
        for stale in self._tmp.iterdir():
            stale.unlink(missing_ok=True)
            removed += 1
        return removed

    def path_for(self, blob_id: str) -> Path:
        """The file for ``blob_id``; raises ``blob_id_invalid`` for anything not ours."""
        if not isinstance(blob_id, str) or not is_blob_id(blob_id):
            raise StorageError("not a valid blob id", code="blob_id_invalid")
        path = (self.root / blob_id[:2] / blob_id).resolve()
        if not path.is_relative_to(self.root) or path.parent.parent != self.root:
            raise StorageError("not a valid blob id", code="blob_id_invalid")
        return path

    async def put(self, chunks: AsyncIterable[bytes]) -> StoredBlob:
        """Stream ``chunks`` into a new blob; never holds the whole blob in memory."""
        blob_id = new_blob_id()
        tmp = self._tmp / f"{blob_id}.part"
        digest = hashlib.sha256()
        size = 0
        fd = await asyncio.to_thread(os.open, tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            async for chunk in chunks:
                digest.update(chunk)
                size += len(chunk)
                await asyncio.to_thread(_write_all, fd, chunk)
            await asyncio.to_thread(os.fsync, fd)
        except BaseException:
            os.close(fd)
            tmp.unlink(missing_ok=True)
            raise
        os.close(fd)
        await asyncio.to_thread(self._publish, tmp, self.path_for(blob_id))
        return StoredBlob(blob_id, size, digest.digest())

    async def put_bytes(self, data: bytes) -> StoredBlob:
        async def one() -> AsyncIterable[bytes]:
            yield data

        return await self.put(one())

    def _publish(self, tmp: Path, final: Path) -> None:
        try:
            final.parent.mkdir(exist_ok=True, mode=0o700)
            os.rename(tmp, final)
            _fsync_dir(final.parent)
        except OSError:
            tmp.unlink(missing_ok=True)
            raise

    def exists(self, blob_id: str) -> bool:
        return self.path_for(blob_id).is_file()

    def size(self, blob_id: str) -> int:
        try:
            return self.path_for(blob_id).stat().st_size
        except FileNotFoundError:
            raise StorageError("no such blob", code="blob_not_found") from None

    def read_range(self, blob_id: str, start: int = 0, end: int | None = None,
                   chunk_size: int = 1 << 16) -> Iterator[bytes]:
        """Yield bytes ``[start, end)`` of the blob in chunks (blocking; run in a thread)."""
        path = self.path_for(blob_id)
        try:
            handle = path.open("rb")
        except FileNotFoundError:
            raise StorageError("no such blob", code="blob_not_found") from None
        with handle:
            handle.seek(start)
            remaining = None if end is None else max(0, end - start)
            while remaining is None or remaining > 0:
                want = chunk_size if remaining is None else min(chunk_size, remaining)
                data = handle.read(want)
                if not data:
                    return
                if remaining is not None:
                    remaining -= len(data)
                yield data

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
            if shard.is_dir() and shard != self._tmp:
                for entry in shard.iterdir():
                    if is_blob_id(entry.name):
                        yield entry.name


def _write_all(fd: int, data: bytes) -> None:
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
