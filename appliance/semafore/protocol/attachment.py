"""Attachment encryption (s9): AES-256-GCM in STREAM-style chunks with a last-chunk flag.

Both directions are incremental: feed bytes with `update()`, get blob (or plaintext) bytes back
as soon as they are final, then call `finalize()`. Nothing here touches files or the network.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from .constants import ATT_DEFAULT_CHUNK, ATT_MAGIC, KEY_LEN, TAG_LEN, U32_MAX
from .content import AttachmentPointer, check_chunk_size
from .encoding import u32
from .errors import DecryptionFailed, ProtocolError
from .primitives import aes_gcm_decrypt, aes_gcm_encrypt

HEAD_LEN = 8


def chunk_nonce(index: int, last: bool) -> bytes:
    """0x00 * 7 || u32(i) || (0x01 if last else 0x00)."""
    return bytes(7) + u32(index) + (b"\x01" if last else b"\x00")


def blob_length(size: int, chunk_size: int) -> int:
    """len(blob) = 8 + size + 16 * n, n = max(1, ceil(size / chunk_size))."""
    return HEAD_LEN + size + TAG_LEN * max(1, -(-size // chunk_size))


@dataclass(frozen=True)
class AttachmentSecrets:
    """What the sender puts into the pointer once the blob is complete."""

    key: bytes = field(repr=False)
    digest: bytes
    size: int
    chunk_size: int

    def pointer(
        self, attachment_id: str, content_type: str | None = None, name: str | None = None
    ) -> AttachmentPointer:
        return AttachmentPointer(
            attachment_id, self.key, self.digest, self.size, self.chunk_size, content_type, name
        )


class AttachmentEncryptor:
    """Encrypt a plaintext stream into a blob. A fresh random key for every instance."""

    def __init__(
        self,
        chunk_size: int = ATT_DEFAULT_CHUNK,
        *,
        random_bytes: Callable[[int], bytes] = secrets.token_bytes,
    ) -> None:
        self._chunk_size = check_chunk_size(chunk_size)
        self._key = random_bytes(KEY_LEN)
        if len(self._key) != KEY_LEN:
            raise ValueError("random_bytes returned the wrong length")
        self._head = ATT_MAGIC + u32(chunk_size)
        self._hash = hashlib.sha256()
        self._buffer = bytearray()
        self._index = 0
        self._size = 0
        self._started = False
        self._result: AttachmentSecrets | None = None

    def _emit(self, data: bytes) -> bytes:
        if not self._started:
            data, self._started = self._head + data, True
        self._hash.update(data)
        return data

    def _seal(self, chunk: bytes, last: bool) -> bytes:
        if self._index > U32_MAX:
            raise ProtocolError("attachment too large")
        sealed = aes_gcm_encrypt(self._key, chunk_nonce(self._index, last), chunk, self._head)
        self._index += 1
        return sealed

    def update(self, data: bytes) -> bytes:
        """Feed plaintext; returns the blob bytes that are final so far (possibly empty)."""
        if self._result is not None:
            raise ProtocolError("encryptor already finalized")
        self._buffer += data
        self._size += len(data)
        out = []
        # Keep at least one byte back: only `finalize` knows which chunk is the last one.
        while len(self._buffer) > self._chunk_size:
            chunk = bytes(self._buffer[: self._chunk_size])
            del self._buffer[: self._chunk_size]
            out.append(self._seal(chunk, last=False))
        return self._emit(b"".join(out))

    def finalize(self) -> bytes:
        """Seal the final chunk (empty for an empty file); returns the remaining blob bytes."""
        if self._result is not None:
            raise ProtocolError("encryptor already finalized")
        tail = self._emit(self._seal(bytes(self._buffer), last=True))
        self._buffer.clear()
        self._result = AttachmentSecrets(
            self._key, self._hash.digest(), self._size, self._chunk_size
        )
        return tail

    @property
    def secrets(self) -> AttachmentSecrets:
        if self._result is None:
            raise ProtocolError("encryptor not finalized")
        return self._result


class AttachmentDecryptor:
    """Check and decrypt a blob stream against its pointer.

    `update()` releases each non-final chunk once its tag checks (s9 allows that). The final
    chunk is released by `finalize()` only after the total length, the final chunk (last flag)
    and the SHA-256 digest of the whole blob have all been checked. Every failure is the same
    DecryptionFailed; after one, the decryptor refuses further input.
    """

    def __init__(self, pointer: AttachmentPointer) -> None:
        self._pointer = pointer
        self._head = ATT_MAGIC + u32(pointer.chunk_size)
        self._chunks = max(1, -(-pointer.size // pointer.chunk_size))
        self._expected_len = blob_length(pointer.size, pointer.chunk_size)
        self._last_len = pointer.size - (self._chunks - 1) * pointer.chunk_size + TAG_LEN
        self._hash = hashlib.sha256()
        self._buffer = bytearray()
        self._received = 0
        self._index = 0
        self._head_checked = False
        self._state = "open"

    def _fail(self) -> DecryptionFailed:
        self._state = "failed"
        self._buffer.clear()
        return DecryptionFailed("attachment decryption failed")

    def update(self, data: bytes) -> bytes:
        """Feed blob bytes; returns plaintext of non-final chunks whose tags verified."""
        if self._state != "open":
            raise DecryptionFailed("attachment decryption failed")
        self._received += len(data)
        if self._received > self._expected_len:
            raise self._fail()
        self._hash.update(data)
        self._buffer += data
        if not self._head_checked:
            if len(self._buffer) < HEAD_LEN:
                return b""
            if not hmac.compare_digest(bytes(self._buffer[:HEAD_LEN]), self._head):
                raise self._fail()
            del self._buffer[:HEAD_LEN]
            self._head_checked = True
        out = []
        sealed_len = self._pointer.chunk_size + TAG_LEN
        while self._index < self._chunks - 1 and len(self._buffer) >= sealed_len:
            sealed = bytes(self._buffer[:sealed_len])
            del self._buffer[:sealed_len]
            out.append(self._open(sealed, last=False))
        return b"".join(out)

    def _open(self, sealed: bytes, last: bool) -> bytes:
        try:
            plain = aes_gcm_decrypt(
                self._pointer.key, chunk_nonce(self._index, last), sealed, self._head
            )
        except DecryptionFailed:
            raise self._fail() from None
        self._index += 1
        return plain

    def finalize(self) -> bytes:
        """Check length, final chunk and digest; returns the final chunk's plaintext."""
        if self._state != "open":
            raise DecryptionFailed("attachment decryption failed")
        if (
            self._received != self._expected_len
            or self._index != self._chunks - 1
            or len(self._buffer) != self._last_len
        ):
            raise self._fail()
        # Digest first (constant-time compare), then the final chunk's tag and last flag.
        if not hmac.compare_digest(self._hash.digest(), self._pointer.digest):
            raise self._fail()
        plain = self._open(bytes(self._buffer), last=True)
        self._buffer.clear()
        self._state = "done"
        return plain


def encrypt_attachment(
    plaintext: bytes,
    chunk_size: int = ATT_DEFAULT_CHUNK,
    *,
    random_bytes: Callable[[int], bytes] = secrets.token_bytes,
) -> tuple[bytes, AttachmentSecrets]:
    """One-shot helper over AttachmentEncryptor: returns (blob, secrets)."""
    enc = AttachmentEncryptor(chunk_size, random_bytes=random_bytes)
    blob = enc.update(plaintext) + enc.finalize()
    return blob, enc.secrets


def decrypt_attachment(blob_chunks: bytes | Iterable[bytes], pointer: AttachmentPointer) -> bytes:
    """One-shot helper over AttachmentDecryptor: returns the whole plaintext or raises."""
    dec = AttachmentDecryptor(pointer)
    parts = [blob_chunks] if isinstance(blob_chunks, bytes | bytearray) else blob_chunks
    out = [dec.update(bytes(p)) for p in parts]
    out.append(dec.finalize())
    return b"".join(out)
