"""The keystore's record of files being sent (semafore.client.pending_uploads): an older keystore
gains the table in place, records match only the unchanged source and the same destination,
and records past the retention and blobs nobody records are found for removal."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

from semafore.client.attachments import OUTGOING_DIR, seal_file
from semafore.client.keystore import FILENAME, Keystore
from semafore.client.keystore_schema import FORMAT_VERSION
from semafore.client.pending_uploads import (
    RETENTION_SECONDS,
    Destination,
    PendingUploads,
    Source,
)

from .memory_relay import TEST_KEK

BOB = Destination("u_bob", False)


def new_keystore(home: Path, clock: list[float] | None = None) -> Keystore:
    now = clock if clock is not None else [1_800_000_000.0]
    return Keystore.create(home, TEST_KEK, server_url="https://a.test", clock=lambda: now[0])


def source_file(tmp_path: Path, size: int = 200_000) -> Path:
    path = tmp_path / "report.pdf"
    path.write_bytes(os.urandom(size))
    return path


def test_a_format_1_keystore_gains_the_uploads_table_in_place(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with new_keystore(home) as ks, ks.transaction():
        ks.put_credential("refresh_token", "kept across the upgrade")
    # What a format-1 keystore is: the same tables without `uploads`.
    db = sqlite3.connect(home / FILENAME)
    db.executescript("DROP TABLE uploads; UPDATE meta SET value = '1' WHERE name = 'format';")
    db.close()

    source = source_file(tmp_path)
    with Keystore.open(home, TEST_KEK) as ks:
        fmt = ks.conn.execute("SELECT value FROM meta WHERE name = 'format'").fetchone()
        assert fmt == (str(FORMAT_VERSION),) and FORMAT_VERSION == 2
        assert ks.credential("refresh_token") == "kept across the upgrade"
        uploads = PendingUploads(ks, home)
        assert uploads.all() == []
        with ks.transaction():
            uploads.add(seal_file(source, home), Source.of(source), BOB)
    with Keystore.open(home, TEST_KEK) as ks:
        (pending,) = PendingUploads(ks, home).all()
        assert pending.source == Source.of(source) and pending.blob_intact()


def test_only_the_unchanged_source_to_the_same_destination_is_resumed(tmp_path: Path) -> None:
    home = tmp_path / "home"
    source = source_file(tmp_path)
    with new_keystore(home) as ks:
        uploads = PendingUploads(ks, home)
        sealed = seal_file(source, home)
        with ks.transaction():
            blob_id = uploads.add(sealed, Source.of(source), BOB)
            uploads.set_file_id(blob_id, "a" * 32)

        found, stale = uploads.resumable(Source.of(source), BOB)
        assert found is not None and stale == []
        assert found.file_id == "a" * 32 and found.sealed.secrets == sealed.secrets
        assert found.sealed.name == "report.pdf" and found.sealed.blob_path == sealed.blob_path

        assert uploads.resumable(Source.of(source), Destination("u_bob", True)) == (None, [])
        assert uploads.resumable(Source.of(source), Destination("u_carol", False)) == (None, [])

        st = source.stat()
        os.utime(source, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
        assert uploads.resumable(Source.of(source), BOB) == (None, [found])

        os.utime(source, ns=(st.st_atime_ns, st.st_mtime_ns))
        sealed.blob_path.write_bytes(sealed.blob_path.read_bytes()[:-1])  # a blob cut short
        found, stale = uploads.resumable(Source.of(source), BOB)
        assert found is None and [p.blob_id for p in stale] == [blob_id]

        uploads.drop(blob_id, stale[0].sealed)
        assert uploads.all() == [] and not sealed.blob_path.exists()


def test_old_records_and_unrecorded_blobs_are_found_for_removal(tmp_path: Path) -> None:
    home = tmp_path / "home"
    source = source_file(tmp_path)
    clock = [1_800_000_000.0]
    with new_keystore(home, clock) as ks:
        uploads = PendingUploads(ks, home)
        with ks.transaction():
            old = uploads.add(seal_file(source, home), Source.of(source), BOB)
        clock[0] += RETENTION_SECONDS - 10
        with ks.transaction():
            young = uploads.add(seal_file(source, home), Source.of(source), BOB)
        stray_old = seal_file(source, home).blob_path  # sealed, then the process died
        stray_new = seal_file(source, home).blob_path
        assert [p.blob_id for p in uploads.expired()] == []

        clock[0] += 20
        assert [p.blob_id for p in uploads.expired()] == [old]

        clock[0] = time.time()  # blob files carry real times
        past = clock[0] - RETENTION_SECONDS - 60
        os.utime(stray_old, (past, past))
        os.utime(home / OUTGOING_DIR / f"{old}.blob", (past, past))  # recorded: not a stray
        assert uploads.remove_stray_blobs() == 1
        left = sorted(p.name for p in (home / OUTGOING_DIR).iterdir())
        assert left == sorted([f"{old}.blob", f"{young}.blob", stray_new.name])
