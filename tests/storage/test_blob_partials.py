"""BlobStore partial files (resumable uploads): written at the committed offset, cut back on
failure, published by one rename, kept across restarts, never listed as blobs."""

from __future__ import annotations

from collections.abc import AsyncIterable
from pathlib import Path

import pytest

from semafore.storage import BlobStore, StorageError, new_blob_id
from semafore.storage.blobs import WRITE_BUFFER_BYTES


async def pieces(*chunks: bytes) -> AsyncIterable[bytes]:
    for chunk in chunks:
        yield chunk


async def failing(*chunks: bytes) -> AsyncIterable[bytes]:
    for chunk in chunks:
        yield chunk
    raise ConnectionResetError("peer went away")


@pytest.fixture
def store(tmp_path: Path) -> BlobStore:
    blobs = BlobStore(tmp_path / "blobs")
    blobs.prepare()
    return blobs


async def test_append_resume_and_publish(store: BlobStore) -> None:
    blob_id = new_blob_id()
    assert store.partial_size(blob_id) is None
    assert await store.append_partial(blob_id, 0, pieces(b"ab", b"cd"), limit=8) == 4
    # Bytes past the caller's committed offset (say 3) are dropped before writing.
    assert await store.append_partial(blob_id, 3, pieces(b"DEFGH"), limit=8) == 8
    assert store.partial_path(blob_id).read_bytes() == b"abcDEFGH"
    assert store.partial_path(blob_id).stat().st_mode & 0o777 == 0o600
    await store.publish_partial(blob_id)
    await store.publish_partial(blob_id)  # already done: nothing to do
    assert store.path_for(blob_id).read_bytes() == b"abcDEFGH"
    assert store.partial_size(blob_id) is None
    assert list(store.ids()) == [blob_id] and list(store.partial_ids()) == []


async def test_pieces_across_write_runs_land_in_order(store: BlobStore) -> None:
    # Pieces are gathered into runs of WRITE_BUFFER_BYTES; pieces that straddle a run, fill
    # one exactly or are larger than one are all written whole and in order.
    run = WRITE_BUFFER_BYTES
    chunks = [bytes([n]) * size for n, size in enumerate(
        [run - 5, 10, run - 5, 3 * run + 7, 1, run // 2]
    )]
    total = sum(map(len, chunks))
    blob_id = new_blob_id()
    assert await store.append_partial(blob_id, 0, pieces(*chunks), limit=total) == total
    assert store.partial_path(blob_id).read_bytes() == b"".join(chunks)


async def test_too_long_and_failures_cut_back_to_the_offset(store: BlobStore) -> None:
    blob_id = new_blob_id()
    await store.append_partial(blob_id, 0, pieces(b"12345"), limit=10)
    with pytest.raises(StorageError) as refused:
        await store.append_partial(blob_id, 5, pieces(b"678", b"9AB"), limit=10)
    assert refused.value.code == "blob_too_long"
    assert store.partial_size(blob_id) == 5
    with pytest.raises(ConnectionResetError):
        await store.append_partial(blob_id, 5, failing(b"67"), limit=10)
    assert store.partial_path(blob_id).read_bytes() == b"12345"


async def test_resuming_a_missing_partial_is_refused(store: BlobStore) -> None:
    with pytest.raises(StorageError) as refused:
        await store.append_partial(new_blob_id(), 5, pieces(b"x"), limit=10)
    assert refused.value.code == "blob_not_found"
    with pytest.raises(StorageError) as refused:
        await store.publish_partial(new_blob_id())
    assert refused.value.code == "blob_not_found"


async def test_partials_survive_a_restart_and_are_jailed(store: BlobStore, tmp_path: Path) -> None:
    blob_id = new_blob_id()
    await store.append_partial(blob_id, 0, pieces(b"kept"), limit=4)
    assert BlobStore(store.root).prepare() == 0
    assert store.partial_size(blob_id) == 4
    for bad in ("../../etc/passwd", "A" * 32, "a" * 31, "partial"):
        with pytest.raises(StorageError) as refused:
            store.partial_path(bad)
        assert refused.value.code == "blob_id_invalid"
    outside = tmp_path / "outside"
    outside.write_bytes(b"do not touch")
    planted = new_blob_id()
    store.partial_path(planted).symlink_to(outside)
    with pytest.raises(StorageError):
        await store.append_partial(planted, 0, pieces(b"overwrite"), limit=100)
    assert outside.read_bytes() == b"do not touch"
