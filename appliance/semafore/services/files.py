"""Encrypted files (PROTOCOL.md s9): resumable uploads of opaque blobs, downloads within the
organisation, expiry.

An upload is created with its declared length (quota reserved at once), then written in pieces
at the committed offset, each piece fsynced before its offset is recorded. When the last byte
arrives the partial file is published under the same id in one rename and the row becomes a
*file*, readable by every device of the organisation until it expires (or its uploader deletes
it). Other organisations get the same 404 as for an id that never existed. A background sweep
removes expired files, abandoned uploads and stray files.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterable, AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from semafore.config import FilesSettings
from semafore.services.clock import Clock
from semafore.services.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    LimitReached,
    NotFound,
    TooLarge,
)
from semafore.services.sessions import DevicePrincipal
from semafore.storage import BlobStore, StorageError, is_blob_id, new_blob_id
from semafore.storage.blob_uploads import (
    FileRecord,
    FileRecords,
    QuotaExceeded,
    TooManyOpenUploads,
)

log = logging.getLogger("semafore.files")

DAY = 86_400
SWEEP_CHUNK = 500
STRAY_SCAN_SECONDS = 86_400  # files on disk without a row (a crash mid-delete) are rare
READ_CHUNK_BYTES = 256 * 1024
MAX_OFFSET_DIGITS = 16


@dataclass(slots=True)
class FileStats:
    """Plain counters; the web layer exposes them as metrics at scrape time."""

    bytes_stored: int = 0
    uploads_created: int = 0
    uploads_completed: int = 0
    bytes_received: int = 0
    downloads: int = 0
    files_expired: int = 0
    uploads_abandoned: int = 0
    refused: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class UploadState:
    file_id: str
    length: int
    offset: int
    complete: bool
    expires_at: int | None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.file_id,
            "length": self.length,
            "offset": self.offset,
            "complete": self.complete,
        }
        if self.expires_at is not None:
            out["expires_at"] = self.expires_at
        return out


@dataclass(frozen=True, slots=True)
class Download:
    file_id: str
    size: int
    expires_at: int


def _state(record: FileRecord, offset: int | None = None) -> UploadState:
    return UploadState(
        record.file_id,
        record.length,
        record.length if record.complete else (record.received if offset is None else offset),
        record.complete,
        record.expires_at,
    )


class FileService:
    def __init__(
        self, settings: FilesSettings, clock: Clock, records: FileRecords, blobs: BlobStore
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._records = records
        self._blobs = blobs
        self._busy: set[str] = set()  # uploads a request is writing to right now
        self._last_stray_scan: float | None = None
        self.stats = FileStats()

    def _now(self) -> int:
        return int(self._clock.now())

    def _refuse(self, error: Exception) -> Exception:
        code = getattr(error, "code", "error")
        self.stats.refused[code] = self.stats.refused.get(code, 0) + 1
        return error

    async def load(self) -> None:
        """At start-up: read the stored-bytes total for the metrics."""
        self.stats.bytes_stored = await self._records.stored_bytes()

    # -- uploads ------------------------------------------------------------------------------

    async def create_upload(self, who: DevicePrincipal, body: Mapping[str, Any]) -> UploadState:
        length = body.get("length")
        if type(length) is not int or length < 0:
            raise self._refuse(InvalidInput(
                "length must be the blob's size in bytes (a non-negative integer)",
                code="invalid_upload_length",
            ))
        limit = self._settings.max_upload_bytes
        if length > limit:
            raise self._refuse(TooLarge(
                f"the file is larger than this appliance accepts ({limit} bytes)",
                code="upload_too_large", details={"max_bytes": limit},
            ))
        now = self._now()
        record = FileRecord(
            new_blob_id(), who.org_id, who.user_id, who.device_id, length, 0, "uploading", now,
            now,
        )
        quota = self._settings.org_quota_bytes
        try:
            await self._records.create(
                record,
                quota_bytes=quota,
                max_open_per_device=self._settings.max_open_uploads_per_device,
                now=now,
            )
        except QuotaExceeded as exc:
            raise self._refuse(LimitReached(
                f"your organisation's file storage is full ({exc.used} of {quota} bytes used);"
                " files are removed when they expire or their senders delete them",
                code="org_quota_exceeded",
                details={"quota_bytes": quota, "used_bytes": exc.used, "requested_bytes": length},
            )) from None
        except TooManyOpenUploads:
            raise self._refuse(LimitReached(
                "this device has too many unfinished uploads; finish or cancel one first",
                code="too_many_uploads",
                details={"max_open_uploads": self._settings.max_open_uploads_per_device},
            )) from None
        self.stats.uploads_created += 1
        return _state(record)

    async def upload_state(self, who: DevicePrincipal, file_id: str) -> UploadState:
        record = await self._own_upload(who, file_id)
        if record.complete or file_id in self._busy:
            return _state(record)
        return await self._settle(record)

    async def write(
        self,
        who: DevicePrincipal,
        file_id: str,
        offset_header: str | None,
        chunks: AsyncIterable[bytes],
        *,
        content_length: int | None,
    ) -> UploadState:
        """Write the body at the committed offset; commit the file when it is complete.

        If ``chunks`` ends early (a dropped connection), what arrived is kept and recorded.
        """
        await self._own_upload(who, file_id)
        offset = _parse_offset(offset_header)
        if file_id in self._busy:
            raise self._refuse(Conflict(
                "another request is writing to this upload; wait for it or retry later",
                code="upload_busy",
            ))
        self._busy.add(file_id)
        try:
            record = await self._own_upload(who, file_id)  # as the last writer left it
            state = _state(record) if record.complete else await self._settle(record)
            if offset != state.offset:
                raise self._refuse(Conflict(
                    f"the upload continues at offset {state.offset}, not {offset}",
                    code="upload_offset_mismatch", details={"offset": state.offset},
                ))
            too_long = TooLarge(
                f"the body runs past the declared length of {record.length} bytes",
                code="upload_too_long", details={"offset": state.offset, "length": record.length},
            )
            if content_length is not None and offset + content_length > record.length:
                raise self._refuse(too_long)
            if state.complete:
                async for chunk in chunks:
                    if chunk:
                        raise self._refuse(too_long)
                return state
            try:
                size = await self._blobs.append_partial(
                    file_id, offset, chunks, limit=record.length
                )
            except StorageError as exc:
                if exc.code == "blob_too_long":
                    raise self._refuse(too_long) from None
                raise
            self.stats.bytes_received += size - offset
            if size == record.length:
                return await self._finish(record)
            if size != offset:
                await self._records.progress(file_id, size, self._now())
            return _state(record, size)
        finally:
            self._busy.discard(file_id)

    async def cancel_upload(self, who: DevicePrincipal, file_id: str) -> None:
        record = await self._own_upload(who, file_id)
        if record.complete:
            raise self._refuse(Conflict(
                "the upload is complete; delete the file instead", code="upload_complete"
            ))
        if file_id in self._busy:
            raise self._refuse(Conflict(
                "another request is writing to this upload", code="upload_busy"
            ))
        await self._remove([file_id])

    async def _own_upload(self, who: DevicePrincipal, file_id: str) -> FileRecord:
        _check_id(file_id)
        record = await self._records.get(file_id)
        if record is None or record.org_id != who.org_id or record.user_id != who.user_id:
            raise self._refuse(NotFound("no such upload", code="upload_not_found"))
        return record

    async def _settle(self, record: FileRecord) -> UploadState:
        """The committed offset, after reconciling the row with the partial file (a crash can
        leave the rename done but not recorded, or, on a failing disk, fewer bytes than
        recorded)."""
        size = self._blobs.partial_size(record.file_id)
        if size is None:
            if self._blobs.exists(record.file_id):
                return await self._finish(record)
            size = 0
        if size < record.received:
            log.warning("upload %s: partial file shorter than recorded; resuming from %d",
                        record.file_id[:6], size)
            await self._records.progress(record.file_id, size, self._now())
            return _state(record, size)
        return _state(record)

    async def _finish(self, record: FileRecord) -> UploadState:
        await self._blobs.publish_partial(record.file_id)
        now = self._now()
        done = await self._records.complete(
            record.file_id, now, now + self._settings.retention_days * DAY
        )
        if done is None:  # removed meanwhile (cancelled, swept)
            await asyncio.to_thread(self._blobs.delete, record.file_id)
            raise self._refuse(NotFound("no such upload", code="upload_not_found"))
        self.stats.uploads_completed += 1
        self.stats.bytes_stored += done.length
        return _state(done)

    # -- files --------------------------------------------------------------------------------

    async def download(self, who: DevicePrincipal, file_id: str) -> Download:
        record = await self._org_file(who, file_id)
        assert record.expires_at is not None
        try:
            size = await asyncio.to_thread(self._blobs.size, file_id)
        except StorageError as exc:
            if exc.code == "blob_not_found":
                log.error("file %s is recorded but missing from the blob directory", file_id[:6])
                raise NotFound("no such file", code="file_not_found") from None
            raise
        if size != record.length:
            # Damaged on disk. Serve what is there: the receiver checks length and digest
            # against the pointer and refuses it, rather than waiting for bytes that never come.
            log.error("file %s has %d bytes on disk, %d recorded", file_id[:6], size,
                      record.length)
        self.stats.downloads += 1
        return Download(file_id, size, record.expires_at)

    async def read(self, download: Download, start: int, end: int) -> AsyncIterator[bytes]:
        """Bytes ``[start, end)`` of the file in chunks, read in a thread. Raises
        ``file_not_found`` before the first chunk if the file went meanwhile."""
        try:
            chunks = self._blobs.read_range(download.file_id, start, end, READ_CHUNK_BYTES)
            first = await asyncio.to_thread(next, chunks, b"")
        except StorageError as exc:
            if exc.code == "blob_not_found":
                raise NotFound("no such file", code="file_not_found") from None
            raise
        return _chained(first, chunks)

    async def delete_file(self, who: DevicePrincipal, file_id: str) -> None:
        record = await self._org_file(who, file_id)
        if record.user_id != who.user_id:
            raise self._refuse(Forbidden(
                "only the member who uploaded a file may delete it", code="not_file_owner"
            ))
        await self._remove([file_id])

    async def _org_file(self, who: DevicePrincipal, file_id: str) -> FileRecord:
        _check_id(file_id)
        record = await self._records.get(file_id)
        if (
            record is None
            or record.org_id != who.org_id
            or not record.complete
            or (record.expires_at or 0) <= self._now()
        ):
            raise self._refuse(NotFound("no such file", code="file_not_found"))
        return record

    # -- housekeeping -------------------------------------------------------------------------

    async def _remove(self, file_ids: list[str]) -> list[FileRecord]:
        """Rows first, then bytes: a crash in between leaves only a stray file (swept)."""
        removed = await self._records.remove(file_ids)
        for record in removed:
            await asyncio.to_thread(self._delete_bytes, record.file_id)
            if record.complete:
                self.stats.bytes_stored -= record.length
        return removed

    def _delete_bytes(self, file_id: str) -> None:
        self._blobs.delete_partial(file_id)
        self._blobs.delete(file_id)

    async def sweep(self) -> int:
        """One pass: expired files, abandoned uploads, (daily) stray files; returns removals."""
        now = self._now()
        total = 0
        while batch := await self._records.expired(now, SWEEP_CHUNK):
            removed = await self._remove(batch)
            self.stats.files_expired += len(removed)
            total += len(removed)
        idle_since = now - self._settings.abandoned_upload_seconds
        while batch := [
            i for i in await self._records.abandoned(idle_since, SWEEP_CHUNK)
            if i not in self._busy
        ]:
            removed = await self._remove(batch)
            self.stats.uploads_abandoned += len(removed)
            total += len(removed)
            if len(removed) < len(batch):
                break
        if self._last_stray_scan is None or now - self._last_stray_scan >= STRAY_SCAN_SECONDS:
            total += await self._remove_strays()
            self._last_stray_scan = now
        if total:
            log.info("removed %d expired files or abandoned uploads", total)
        return total

    async def _remove_strays(self) -> int:
        # A row always exists before its file and is deleted before it, so a file listed here
        # without a row is left over from a crash (or being deleted right now: harmless).
        on_disk = await asyncio.to_thread(
            lambda: sorted({*self._blobs.ids(), *self._blobs.partial_ids()})
        )
        known = await self._records.known(on_disk)
        strays = [i for i in on_disk if i not in known]
        for file_id in strays:
            await asyncio.to_thread(self._delete_bytes, file_id)
        if strays:
            log.warning("removed %d blob files that had no record", len(strays))
        return len(strays)

    async def run(self) -> None:
        """Forever (a background task): sweep, sleep, repeat; errors are logged, not fatal."""
        while True:
            try:
                await self.sweep()
            except Exception:
                log.exception("file sweep failed; will retry")
            await asyncio.sleep(self._settings.sweep_interval_seconds)


def _check_id(file_id: str) -> None:
    if not is_blob_id(file_id):
        raise InvalidInput(
            "not a file id (32 characters a-z, 2-7, as the server issued it)",
            code="invalid_file_id",
        )


def _parse_offset(value: str | None) -> int:
    if value is None:
        raise InvalidInput("send the Upload-Offset header", code="invalid_upload_offset")
    value = value.strip()
    if not value.isascii() or not value.isdigit() or len(value) > MAX_OFFSET_DIGITS:
        raise InvalidInput(
            "Upload-Offset must be a non-negative decimal integer", code="invalid_upload_offset"
        )
    return int(value)


async def _chained(first: bytes, chunks: Any) -> AsyncIterator[bytes]:
    try:
        if not first:
            return
        yield first
        while chunk := await asyncio.to_thread(next, chunks, b""):
            yield chunk
    finally:
        chunks.close()  # the file handle, also when the client went away mid-way
