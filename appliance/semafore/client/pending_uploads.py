"""Files being sent: the keystore's `uploads` table and the sealed blobs in `outgoing/`.

A row is written (in a keystore transaction) as soon as a file is sealed, before its upload
starts, and gets the server's upload id once the server has named one. It lets a later
`send-file` of the same unchanged source to the same destination continue the upload instead
of encrypting again. The row goes in the same transaction that stores the pointer message in
the outbox (see `Device.send_attachment`), so a file whose pointer is on its way is never
uploaded again; its blob is deleted right after.

Everything that says what the file is or where it goes (the attachment key and digest, name,
type, source path, destination) is sealed in `record_sealed`; only the blob id, its size, the
server's upload id and the creation time are in clear.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path

from semafore.client.attachments import OUTGOING_DIR, SealedFile
from semafore.client.keystore import Keystore
from semafore.protocol import AttachmentSecrets, b64u_decode, b64u_encode

RETENTION_SECONDS = 7 * 86_400  # the server does not tell devices how long it keeps uploads
BLOB_SUFFIX = ".blob"


@dataclass(frozen=True)
class Source:
    """The file the user asked to send, as it was when its blob was sealed."""

    path: str  # absolute
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, path: Path) -> Source:
        """Raises FileNotFoundError / IsADirectoryError like opening it would."""
        absolute = path.resolve()
        st = absolute.stat()
        if absolute.is_dir():
            raise IsADirectoryError(str(path))
        return cls(str(absolute), st.st_size, st.st_mtime_ns)


@dataclass(frozen=True)
class Destination:
    to: str  # the user or group as given on the command line
    group: bool


@dataclass(frozen=True)
class PendingUpload:
    blob_id: str
    file_id: str | None
    created_at: int
    sealed: SealedFile
    source: Source
    destination: Destination

    def blob_intact(self) -> bool:
        try:
            return self.sealed.blob_path.stat().st_size == self.sealed.blob_size
        except OSError:
            return False


def blob_id_of(sealed: SealedFile) -> str:
    return sealed.blob_path.name.removesuffix(BLOB_SUFFIX)


class PendingUploads:
    def __init__(self, keystore: Keystore, home: Path) -> None:
        self.ks = keystore
        self.outgoing = Path(home) / OUTGOING_DIR

    def add(self, sealed: SealedFile, source: Source, destination: Destination) -> str:
        ks = self.ks
        ks.require_tx()
        blob_id = blob_id_of(sealed)
        record = {
            "key": b64u_encode(sealed.secrets.key),
            "digest": b64u_encode(sealed.secrets.digest),
            "size": sealed.secrets.size,
            "chunk_size": sealed.secrets.chunk_size,
            "name": sealed.name,
            "content_type": sealed.content_type,
            "source": [source.path, source.size, source.mtime_ns],
            "to": destination.to,
            "group": destination.group,
        }
        ks.conn.execute(
            "INSERT INTO uploads (blob_id, blob_size, file_id, created_at, record_sealed)"
            " VALUES (?, ?, NULL, ?, ?)",
            (
                blob_id,
                sealed.blob_size,
                ks.now(),
                ks.sealer.seal(json.dumps(record).encode(), "uploads", blob_id),
            ),
        )
        return blob_id

    def set_file_id(self, blob_id: str, file_id: str) -> None:
        self.ks.require_tx()
        self.ks.conn.execute("UPDATE uploads SET file_id = ? WHERE blob_id = ?", (file_id, blob_id))

    def remove(self, blob_id: str) -> None:
        """Forget the row (in the caller's transaction); the blob file is the caller's."""
        self.ks.require_tx()
        self.ks.conn.execute("DELETE FROM uploads WHERE blob_id = ?", (blob_id,))

    def all(self) -> list[PendingUpload]:
        rows = self.ks.conn.execute(
            "SELECT blob_id, blob_size, file_id, created_at, record_sealed FROM uploads"
            " ORDER BY created_at"
        ).fetchall()
        return [self._pending(*row) for row in rows]

    def drop(self, blob_id: str, blob: SealedFile) -> None:
        """Forget an upload that will not be resumed, and delete its blob."""
        with self.ks.transaction():
            self.remove(blob_id)
        blob.discard()

    def resumable(self, source: Source, destination: Destination) -> tuple[
        PendingUpload | None, list[PendingUpload]
    ]:
        """The upload of this unchanged source to this destination, if its blob is intact;
        and the stale ones of the same source and destination (changed since, or blob gone),
        which the caller drops."""
        found, stale = None, []
        for pending in self.all():
            if pending.source.path != source.path or pending.destination != destination:
                continue
            if found is None and pending.source == source and pending.blob_intact():
                found = pending
            else:
                stale.append(pending)
        return found, stale

    def expired(self) -> list[PendingUpload]:
        cutoff = self.ks.now() - RETENTION_SECONDS
        return [p for p in self.all() if p.created_at < cutoff]

    def remove_stray_blobs(self) -> int:
        """Delete blobs no row knows of (left by a crash) once they are past the retention."""
        known = {p.blob_id for p in self.all()}
        cutoff = self.ks.now() - RETENTION_SECONDS
        removed = 0
        with contextlib.suppress(FileNotFoundError):
            for entry in self.outgoing.iterdir():
                blob_id = entry.name.removesuffix(BLOB_SUFFIX)
                if entry.name.endswith(BLOB_SUFFIX) and blob_id not in known:
                    with contextlib.suppress(FileNotFoundError):
                        if entry.stat().st_mtime < cutoff:
                            entry.unlink()
                            removed += 1
        return removed

    def _pending(
        self, blob_id: str, blob_size: int, file_id: str | None, created_at: int, sealed: bytes
    ) -> PendingUpload:
        record = json.loads(self.ks.sealer.open(sealed, "uploads", blob_id))
        secrets = AttachmentSecrets(
            b64u_decode(record["key"], 32),
            b64u_decode(record["digest"], 32),
            int(record["size"]),
            int(record["chunk_size"]),
        )
        blob = SealedFile(
            self.outgoing / f"{blob_id}{BLOB_SUFFIX}",
            blob_size,
            secrets,
            str(record["name"]),
            str(record["content_type"]),
        )
        path, size, mtime_ns = record["source"]
        return PendingUpload(
            blob_id,
            file_id,
            created_at,
            blob,
            Source(str(path), int(size), int(mtime_ns)),
            Destination(str(record["to"]), bool(record["group"])),
        )

