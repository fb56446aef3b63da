"""Files on the device side (PROTOCOL s9): encrypt a file into a blob file, and check and decrypt
a downloaded blob stream into a file, both streaming with flat memory.

The blob is written to a private file before upload, so an interrupted upload resumes by
re-reading the same bytes; it is never encrypted twice (a fresh key each time would be safe,
but the same key over a file that changed in between would reuse GCM nonces).

A received file is written to a temporary file beside the target and renamed into place only
after the digest, the length and every chunk checked: a truncated, reordered, swapped or
tampered blob leaves no file behind.
"""

from __future__ import annotations

import contextlib
import mimetypes
import os
import secrets
from collections.abc import AsyncIterable
from dataclasses import dataclass
from pathlib import Path

from semafore.client.errors import AttachmentRejected, ClientError
from semafore.protocol import (
    AttachmentDecryptor,
    AttachmentEncryptor,
    AttachmentPointer,
    AttachmentSecrets,
    DecryptionFailed,
)
from semafore.protocol.constants import ATT_DEFAULT_CHUNK

READ_SIZE = ATT_DEFAULT_CHUNK
OUTGOING_DIR = "outgoing"


@dataclass(frozen=True)
class SealedFile:
    """A blob on disk, ready to upload, and what its pointer needs."""

    blob_path: Path
    blob_size: int
    secrets: AttachmentSecrets
    name: str
    content_type: str

    def pointer(self, attachment_id: str) -> AttachmentPointer:
        return self.secrets.pointer(attachment_id, self.content_type, self.name)

    def discard(self) -> None:
        self.blob_path.unlink(missing_ok=True)


def _private_file(path: Path) -> int:
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)


def seal_file(source: Path, home: Path, *, chunk_size: int = ATT_DEFAULT_CHUNK) -> SealedFile:
    """Encrypt `source` into `home/outgoing/<random>.blob` (mode 0600)."""
    outgoing = home / OUTGOING_DIR
    outgoing.mkdir(mode=0o700, parents=True, exist_ok=True)
    blob_path = outgoing / f"{secrets.token_hex(16)}.blob"
    encryptor = AttachmentEncryptor(chunk_size)
    size = 0
    try:
        with source.open("rb") as plain, os.fdopen(_private_file(blob_path), "wb") as blob:
            while data := plain.read(READ_SIZE):
                blob.write(encryptor.update(data))
            blob.write(encryptor.finalize())
            blob.flush()
            os.fsync(blob.fileno())
            size = blob.tell()
    except FileNotFoundError:
        blob_path.unlink(missing_ok=True)
        raise ClientError(f"no such file: {source}") from None
    except IsADirectoryError:
        blob_path.unlink(missing_ok=True)
        raise ClientError(f"{source} is a directory") from None
    except BaseException:
        blob_path.unlink(missing_ok=True)
        raise
    content_type = mimetypes.guess_type(source.name)[0] or "application/octet-stream"
    return SealedFile(blob_path, size, encryptor.secrets, source.name, content_type)


def receive_path(target: Path, pointer: AttachmentPointer) -> Path:
    """Where a received file goes: `target`, or the sender's file name inside a directory."""
    if target.is_dir():
        target = target / _safe_name(pointer.name or pointer.id)
    if target.exists():
        raise ClientError(f"{target} already exists; not overwritten")
    return target


async def open_blob(chunks: AsyncIterable[bytes], pointer: AttachmentPointer, target: Path) -> int:
    """Check and decrypt a blob stream into `target` (see receive_path), atomically.

    Returns the number of plaintext bytes written.
    """
    tmp = str(target.with_name(f".{target.name}.{secrets.token_hex(4)}.partial"))
    decryptor = AttachmentDecryptor(pointer)
    written = 0
    try:
        with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as out:
            async for chunk in chunks:
                for start in range(0, len(chunk), READ_SIZE):
                    plain = decryptor.update(chunk[start : start + READ_SIZE])
                    out.write(plain)
                    written += len(plain)
            plain = decryptor.finalize()
            out.write(plain)
            written += len(plain)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, target)
    except DecryptionFailed:
        _unlink(tmp)
        raise AttachmentRejected(
            "the downloaded file failed its integrity check (truncated, reordered or tampered);"
            " nothing was written"
        ) from None
    except BaseException:
        _unlink(tmp)
        raise
    return written


def _unlink(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def _safe_name(name: str) -> str:
    """A sender-chosen name, reduced to one harmless path component."""
    base = os.path.basename(name.replace("\\", "/")).strip().lstrip(".")
    return base or "attachment"
