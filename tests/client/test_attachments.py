"""Device-side file encryption (PROTOCOL s9): streaming seal to a private blob file, and the
receiver's all-or-nothing decrypt (no partial file for a bad blob)."""

from __future__ import annotations

import os
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from semafore.client.attachments import open_blob, receive_path, seal_file
from semafore.client.errors import AttachmentRejected


async def stream(data: bytes, piece: int = 10_000) -> AsyncIterator[bytes]:
    for i in range(0, len(data), piece):
        yield data[i : i + piece]


@pytest.fixture
def original(tmp_path: Path) -> bytes:
    data = os.urandom(300_000)
    (tmp_path / "report.pdf").write_bytes(data)
    return data


async def test_round_trip(tmp_path: Path, original: bytes):
    sealed = seal_file(tmp_path / "report.pdf", tmp_path / "home", chunk_size=65536)
    assert stat.S_IMODE(sealed.blob_path.stat().st_mode) == 0o600
    blob = sealed.blob_path.read_bytes()
    assert original[:64] not in blob and len(blob) == sealed.blob_size == 8 + 300_000 + 16 * 5
    pointer = sealed.pointer("blob-id")
    assert (pointer.name, pointer.content_type) == ("report.pdf", "application/pdf")
    out = tmp_path / "received"
    out.mkdir()
    size = await open_blob(stream(blob), pointer, receive_path(out, pointer))
    assert size == len(original)
    assert (out / "report.pdf").read_bytes() == original
    sealed.discard()
    assert not sealed.blob_path.exists()


@pytest.mark.parametrize(
    "damage",
    [
        lambda b: b[:-1],  # truncated
        lambda b: b[: 8 + 65536 + 16],  # truncated at a chunk boundary
        lambda b: b[:8] + b[8 + 65552 : 8 + 2 * 65552] + b[8 : 8 + 65552] + b[8 + 2 * 65552 :],
        lambda b: b[:100] + bytes([b[100] ^ 1]) + b[101:],  # tampered
        lambda b: b + b"x",  # extended
    ],
    ids=["truncated", "chunk-boundary", "reordered", "tampered", "extended"],
)
async def test_bad_blobs_leave_no_file(tmp_path: Path, original: bytes, damage):  # type: ignore[no-untyped-def]
    sealed = seal_file(tmp_path / "report.pdf", tmp_path / "home")
    blob = damage(sealed.blob_path.read_bytes())
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(AttachmentRejected, match="nothing was written"):
        await open_blob(stream(blob), sealed.pointer("id"), out / "report.pdf")
    assert list(out.iterdir()) == []


async def test_swapped_blob_is_refused(tmp_path: Path, original: bytes):
    first = seal_file(tmp_path / "report.pdf", tmp_path / "home")
    second = seal_file(tmp_path / "report.pdf", tmp_path / "home")  # fresh key: other bytes
    assert first.blob_path.read_bytes() != second.blob_path.read_bytes()
    with pytest.raises(AttachmentRejected):
        await open_blob(
            stream(second.blob_path.read_bytes()), first.pointer("id"), tmp_path / "x.pdf"
        )
    assert not (tmp_path / "x.pdf").exists()


async def test_names_from_the_sender_cannot_escape_the_directory(tmp_path: Path, original):  # type: ignore[no-untyped-def]
    sealed = seal_file(tmp_path / "report.pdf", tmp_path / "home")
    pointer = sealed.secrets.pointer("id", "text/plain", "../../etc/passwd")
    out = tmp_path / "out"
    out.mkdir()
    await open_blob(stream(sealed.blob_path.read_bytes()), pointer, receive_path(out, pointer))
    assert [p.name for p in out.iterdir()] == ["passwd"]
