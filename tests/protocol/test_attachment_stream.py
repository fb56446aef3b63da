"""Attachment vectors (s9) through the streaming encryptor and decryptor, plus attacks."""

from __future__ import annotations

import hashlib
import random
from dataclasses import replace

import pytest

from semafore.protocol import (
    AttachmentDecryptor,
    AttachmentEncryptor,
    AttachmentPointer,
    DecodeError,
    DecryptionFailed,
    decrypt_attachment,
    encrypt_attachment,
)
from semafore.protocol.attachment import blob_length

NAMES = ["attachment", "attachment_empty", "attachment_exact_multiple"]
SEALED = 1024 + 16


def _vector(vectors, name):
    v = vectors[name]
    return v, bytes.fromhex(v["plaintext"]), bytes.fromhex(v["blob"]), bytes.fromhex(v["key"])


def _pointer(v) -> AttachmentPointer:
    return AttachmentPointer(
        "att-1", bytes.fromhex(v["key"]), bytes.fromhex(v["digest"]), v["size"], v["chunk_size"]
    )


def _splits(data: bytes, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    parts, pos = [], 0
    while pos < len(data):
        step = rng.choice([1, 7, 1023, 1024, 1025, 1040, 3000])
        parts.append(data[pos : pos + step])
        pos += step
    return parts


@pytest.mark.parametrize("name", NAMES)
def test_vector_encrypts_byte_for_byte(vectors, name):
    v, plaintext, blob, key = _vector(vectors, name)
    assert len(plaintext) == v["size"]
    assert len(blob) == blob_length(v["size"], v["chunk_size"])
    for seed in range(5):
        enc = AttachmentEncryptor(v["chunk_size"], random_bytes=lambda n, key=key: key[:n])
        out = b"".join(enc.update(part) for part in _splits(plaintext, seed)) + enc.finalize()
        assert out == blob
        assert enc.secrets.digest.hex() == v["digest"]
        assert (enc.secrets.size, enc.secrets.chunk_size) == (v["size"], v["chunk_size"])
    one_shot, secrets_ = encrypt_attachment(
        plaintext, v["chunk_size"], random_bytes=lambda n: key[:n]
    )
    assert one_shot == blob and secrets_.key == key
    assert secrets_.pointer("att-1") == _pointer(v)
    assert hashlib.sha256(blob).hexdigest() == v["digest"]
    assert -(-(len(blob) - 8) // SEALED) == v["chunks"]


@pytest.mark.parametrize("name", NAMES)
def test_vector_decrypts_in_any_split(vectors, name):
    v, plaintext, blob, _ = _vector(vectors, name)
    for seed in range(5):
        assert decrypt_attachment(_splits(blob, seed), _pointer(v)) == plaintext
    assert decrypt_attachment(blob, _pointer(v)) == plaintext


def test_encryptor_streams_and_holds_back_only_the_last_chunk(vectors):
    _v, plaintext, blob, key = _vector(vectors, "attachment")
    enc = AttachmentEncryptor(1024, random_bytes=lambda n: key[:n])
    assert enc.update(plaintext[:1024]) == blob[:8]  # could still be the last chunk
    assert enc.update(plaintext[1024:1025]) == blob[8 : 8 + SEALED]
    assert enc.update(plaintext[1025:]) == blob[8 + SEALED : 8 + 2 * SEALED]
    assert enc.finalize() == blob[8 + 2 * SEALED :]
    with pytest.raises(Exception, match="finalized"):
        enc.update(b"x")


def test_decryptor_releases_verified_chunks_early_but_not_the_last(vectors):
    v, plaintext, blob, _ = _vector(vectors, "attachment")
    dec = AttachmentDecryptor(_pointer(v))
    assert dec.update(blob[: 8 + SEALED]) == plaintext[:1024]
    assert dec.update(blob[8 + SEALED :]) == plaintext[1024:2048]
    assert dec.finalize() == plaintext[2048:]


def test_fresh_random_key_per_encryption():
    blob_a, a = encrypt_attachment(b"same", 1024)
    blob_b, b = encrypt_attachment(b"same", 1024)
    assert a.key != b.key and blob_a != blob_b


def _expect_failure(blob: bytes, pointer: AttachmentPointer) -> None:
    dec = AttachmentDecryptor(pointer)
    with pytest.raises(DecryptionFailed):
        dec.update(blob)
        dec.finalize()
    with pytest.raises(DecryptionFailed):  # a failed decryptor stays failed
        dec.update(b"")


def _chunks(blob: bytes) -> tuple[bytes, list[bytes]]:
    return blob[:8], [blob[i : i + SEALED] for i in range(8, len(blob), SEALED)]


def _with_digest(pointer: AttachmentPointer, blob: bytes, size: int | None = None):
    """A pointer whose digest (and size) match a manipulated blob: only the AEAD can object."""
    return replace(
        pointer,
        digest=hashlib.sha256(blob).digest(),
        size=pointer.size if size is None else size,
    )


def test_truncation_at_chunk_boundary_is_refused(vectors):
    v, _, blob, _ = _vector(vectors, "attachment")
    pointer = _pointer(v)
    truncated = blob[: 8 + 2 * SEALED]
    _expect_failure(truncated, pointer)  # length and digest
    _expect_failure(truncated, _with_digest(pointer, truncated, size=2048))  # last-chunk flag


def test_reordered_chunks_are_refused(vectors):
    v, _, blob, _ = _vector(vectors, "attachment")
    head, (c0, c1, c2) = _chunks(blob)
    for order in ([c1, c0, c2], [c0, c2, c1]):
        swapped = head + b"".join(order)
        _expect_failure(swapped, _pointer(v))
        _expect_failure(swapped, _with_digest(_pointer(v), swapped))


def test_chunk_from_another_blob_is_refused(vectors):
    v, _, blob, _ = _vector(vectors, "attachment")
    _, _, other, _ = _vector(vectors, "attachment_exact_multiple")
    head, chunks = _chunks(blob)
    _, other_chunks = _chunks(other)
    spliced = head + other_chunks[0] + b"".join(chunks[1:])
    _expect_failure(spliced, _with_digest(_pointer(v), spliced))


@pytest.mark.parametrize("name", NAMES)
def test_every_flipped_byte_is_refused(vectors, name):
    v, _, blob, _ = _vector(vectors, name)
    for pos in sorted({0, 4, 7, 8, 9, len(blob) // 2, len(blob) - 17, len(blob) - 1}):
        tampered = bytearray(blob)
        tampered[pos] ^= 0x01
        _expect_failure(bytes(tampered), _pointer(v))
        _expect_failure(bytes(tampered), _with_digest(_pointer(v), bytes(tampered)))


def test_length_digest_key_and_head_mismatches_are_refused(vectors):
    v, _, blob, _ = _vector(vectors, "attachment")
    pointer = _pointer(v)
    _expect_failure(blob + b"\x00", pointer)
    _expect_failure(blob + b"\x00", _with_digest(pointer, blob + b"\x00"))
    _expect_failure(blob, replace(pointer, digest=bytes(32)))
    _expect_failure(blob, replace(pointer, key=bytes(32)))
    _expect_failure(blob, replace(pointer, size=2499))
    _expect_failure(blob, replace(pointer, chunk_size=2048))
    head_changed = b"SFA\x02" + blob[4:]
    _expect_failure(head_changed, _with_digest(pointer, head_changed))
    dec = AttachmentDecryptor(pointer)
    dec.update(blob[:-1])
    with pytest.raises(DecryptionFailed):
        dec.finalize()


@pytest.mark.parametrize("chunk_size", [0, 512, 1000, 3000, 8 * 1024 * 1024, True])
def test_invalid_chunk_sizes_are_refused(chunk_size):
    with pytest.raises(DecodeError):
        AttachmentEncryptor(chunk_size)
    with pytest.raises(DecodeError):
        AttachmentPointer("x", bytes(32), bytes(32), 1, chunk_size)


def test_pointer_json_round_trip_and_strictness(vectors):
    pointer = replace(_pointer(vectors["attachment"]), content_type="image/png", name="a.png")
    assert AttachmentPointer.from_dict(pointer.to_dict()) == pointer
    assert AttachmentPointer.from_dict({**pointer.to_dict(), "extra": 1}) == pointer
    for bad in (
        {"key": "AA"},
        {"size": -1},
        {"size": 1.5},
        {"digest": pointer.to_dict()["key"] + "="},
    ):
        with pytest.raises(DecodeError):
            AttachmentPointer.from_dict({**pointer.to_dict(), **bad})
