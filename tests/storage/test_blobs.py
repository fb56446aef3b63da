"""The blob store: atomic writes, server-generated ids, paths that never leave the root."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import shutil
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from semafore.storage import BlobStore, StorageError, is_blob_id, new_blob_id


@pytest.fixture
def store(tmp_path: Path) -> BlobStore:
    blobs = BlobStore(tmp_path / "data" / "blobs")
    blobs.prepare()
    return blobs


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A directory next to the blob root with a file nothing may touch."""
    directory = tmp_path / "outside"
    directory.mkdir()
    (directory / "secret").write_bytes(b"do not touch")
    return directory


def snapshot(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes()
            for p in sorted(directory.rglob("*")) if p.is_file() and not p.is_symlink()}


def temporaries(store: BlobStore) -> list[str]:
    return sorted(p.name for p in (store.root / "tmp").iterdir())


async def chunks_of(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def test_put_bytes_round_trip(store: BlobStore) -> None:
    data = os.urandom(200_000)
    blob = await store.put_bytes(data)
    assert is_blob_id(blob.blob_id)
    assert (blob.size, blob.sha256) == (len(data), hashlib.sha256(data).digest())
    assert b"".join(store.read_range(blob.blob_id)) == data
    assert store.size(blob.blob_id) == len(data)
    assert store.exists(blob.blob_id)
    path = store.path_for(blob.blob_id)
    assert path.parent.parent == store.root and path.parent.name == blob.blob_id[:2]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert list(store.ids()) == [blob.blob_id]
    assert temporaries(store) == []


async def test_put_streams_chunks(store: BlobStore) -> None:
    parts = [b"a" * 10, b"", b"b" * 70_000, b"c"]
    blob = await store.put(chunks_of(*parts))
    assert blob.size == 70_011
    assert b"".join(store.read_range(blob.blob_id)) == b"".join(parts)
    assert blob.sha256 == hashlib.sha256(b"".join(parts)).digest()


async def test_empty_blob(store: BlobStore) -> None:
    blob = await store.put_bytes(b"")
    assert store.size(blob.blob_id) == 0
    assert list(store.read_range(blob.blob_id)) == []


async def test_read_range(store: BlobStore) -> None:
    data = bytes(range(256)) * 10
    blob_id = (await store.put_bytes(data)).blob_id
    assert b"".join(store.read_range(blob_id, 5, 10)) == data[5:10]
    assert b"".join(store.read_range(blob_id, 2000)) == data[2000:]
    assert b"".join(store.read_range(blob_id, 2500, 9999)) == data[2500:]
    assert b"".join(store.read_range(blob_id, 3000, 3100)) == b""
    assert b"".join(store.read_range(blob_id, 7, 7)) == b""
    pieces = list(store.read_range(blob_id, 0, 1000, chunk_size=300))
    assert [len(p) for p in pieces] == [300, 300, 300, 100]
    assert b"".join(pieces) == data[:1000]
    for start, end in ((-1, None), (10, 5)):
        with pytest.raises(ValueError):
            store.read_range(blob_id, start, end)


async def test_delete(store: BlobStore) -> None:
    blob_id = (await store.put_bytes(b"bye")).blob_id
    assert store.delete(blob_id) is True
    assert store.delete(blob_id) is False
    assert not store.exists(blob_id)
    for lookup in (store.size, store.read_range):
        with pytest.raises(StorageError) as caught:
            lookup(blob_id)
        assert caught.value.code == "blob_not_found"


async def test_a_failed_stream_leaves_neither_blob_nor_temporary(store: BlobStore) -> None:
    async def broken() -> AsyncIterator[bytes]:
        yield b"x" * 100_000
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        await store.put(broken())
    assert temporaries(store) == []
    assert list(store.ids()) == []


async def test_a_file_system_failure_is_storage_unavailable(store: BlobStore) -> None:
    shutil.rmtree(store.root / "tmp")
    with pytest.raises(StorageError) as caught:
        await store.put_bytes(b"data")
    assert caught.value.code == "storage_unavailable"
    assert list(store.ids()) == []


async def test_a_cancelled_upload_leaves_neither_blob_nor_temporary(store: BlobStore) -> None:
    started = asyncio.Event()

    async def stalled() -> AsyncIterator[bytes]:
        yield b"x" * 100_000
        started.set()
        await asyncio.Event().wait()
        yield b"never"

    upload = asyncio.create_task(store.put(stalled()))
    await started.wait()
    assert len(temporaries(store)) == 1
    upload.cancel()
    with pytest.raises(asyncio.CancelledError):
        await upload
    assert temporaries(store) == []
    assert list(store.ids()) == []


async def test_prepare_sweeps_stale_temporaries_and_keeps_blobs(store: BlobStore) -> None:
    kept = (await store.put_bytes(b"keep me")).blob_id
    for name in ("a.part", "b.part"):
        (store.root / "tmp" / name).write_bytes(b"half an upload")
    assert store.prepare() == 2
    assert temporaries(store) == []
    assert list(store.ids()) == [kept]
    assert store.prepare() == 0


def test_prepare_makes_private_directories(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs")
    store.prepare()
    directories = [p for p in store.root.iterdir() if p.is_dir()]
    shards = {a + b for a in "abcdefghijklmnopqrstuvwxyz234567"
              for b in "abcdefghijklmnopqrstuvwxyz234567"}
    assert {p.name for p in directories} >= shards | {"tmp"}
    for directory in [store.root, *directories]:
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700, directory


def test_ids_are_160_random_bits_in_the_fixed_alphabet() -> None:
    ids = [new_blob_id() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    for blob_id in ids:
        assert is_blob_id(blob_id)
        assert len(blob_id) == 32 and set(blob_id) <= set("abcdefghijklmnopqrstuvwxyz234567")
        assert len(base64.b32decode(blob_id.upper())) == 20
    assert set("".join(ids)) == set("abcdefghijklmnopqrstuvwxyz234567")


BAD_IDS = [
    "../x",
    "../" + "a" * 29,
    "/etc/passwd",
    "/" + "a" * 31,
    "..%2f..%2f" + "a" * 22,
    "..%2F" + "a" * 27,
    "ab/" + "c" * 29,
    "ab\\" + "c" * 29,
    "a" * 16 + "\x00" + "a" * 15,
    "A" * 32,
    "a" * 31,
    "a" * 33,
    "",
    "a" * 32 + "\n",
    "abcdefghijklmnopqrstuvwxyz012345",  # 0 and 1 are not in the alphabet
    "a" * 30 + "..",
    ".." + "a" * 30,
    "tmp",
    b"a" * 32,
    None,
]


@pytest.mark.parametrize("bad", BAD_IDS, ids=repr)
def test_ids_that_are_not_ours_are_refused(
    store: BlobStore, outside: Path, tmp_path: Path, bad: object
) -> None:
    before_outside = snapshot(outside)
    for operation in (store.path_for, store.exists, store.size, store.read_range, store.delete):
        with pytest.raises(StorageError) as caught:
            operation(bad)  # type: ignore[arg-type]
        assert caught.value.code == "blob_id_invalid", operation
    assert snapshot(outside) == before_outside
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "outside"]


def test_a_symlinked_shard_pointing_outside_is_refused(store: BlobStore, outside: Path) -> None:
    blob_id = "ab" + "c" * 30
    (outside / blob_id).write_bytes(b"outside blob")
    shard = store.root / "ab"
    shard.rmdir()
    shard.symlink_to(outside, target_is_directory=True)
    before = snapshot(outside)
    for operation in (store.path_for, store.exists, store.size, store.read_range, store.delete):
        with pytest.raises(StorageError) as caught:
            operation(blob_id)
        assert caught.value.code == "blob_id_invalid", operation
    assert snapshot(outside) == before
    with pytest.raises(StorageError):
        store.prepare()  # refuses to run with a planted link
    assert snapshot(outside) == before


def test_a_symlinked_blob_pointing_outside_is_refused(store: BlobStore, outside: Path) -> None:
    blob_id = "cd" + "e" * 30
    link = store.root / "cd" / blob_id
    link.symlink_to(outside / "secret")
    for operation in (store.path_for, store.exists, store.size, store.read_range, store.delete):
        with pytest.raises(StorageError) as caught:
            operation(blob_id)
        assert caught.value.code == "blob_id_invalid", operation
    assert (outside / "secret").read_bytes() == b"do not touch"
    assert link.is_symlink()


def test_a_symlinked_tmp_is_refused_and_its_target_not_swept(
    tmp_path: Path, outside: Path
) -> None:
    root = tmp_path / "blobs"
    root.mkdir()
    (root / "tmp").symlink_to(outside, target_is_directory=True)
    with pytest.raises(StorageError):
        BlobStore(root).prepare()
    assert snapshot(outside) == {"secret": b"do not touch"}
