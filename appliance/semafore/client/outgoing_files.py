"""`send-file`: seal a file, upload it, send its pointer; an upload interrupted by anything,
including the end of the process, continues where the server stopped at the next `send-file` of
the same unchanged file to the same destination (semafore.client.pending_uploads). A run
holds a claim on the blob it uploads (semafore.client.blob_claims), so a second run of the same
file to the same destination stops with `upload_in_progress` instead of taking it over.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from dataclasses import dataclass
from pathlib import Path

from semafore.client import errors, transfer
from semafore.client.attachments import SealedFile, seal_file
from semafore.client.blob_claims import BlobClaim
from semafore.client.cli_support import Session
from semafore.client.device import SendResult
from semafore.client.groups import Group
from semafore.client.http import Http
from semafore.client.pending_uploads import Destination, PendingUpload, PendingUploads, Source
from semafore.client.transfer import ProgressBar

MIB = 1 << 20


@dataclass(frozen=True)
class FileSent:
    sealed: SealedFile
    file_id: str
    result: SendResult


async def send_file(
    s: Session,
    home: Path,
    path: Path,
    destination: Destination,
    caption: str | None,
    *,
    user_id: str | None,
    group: Group | None,
) -> FileSent:
    http = s.api.http
    uploads = PendingUploads(s.ks, home)
    for old in uploads.expired():
        await _drop(uploads, http, old)
    uploads.remove_stray_blobs()
    try:
        source = Source.of(path)
    except FileNotFoundError:
        raise errors.ClientError(f"no such file: {path}") from None
    except IsADirectoryError:
        raise errors.ClientError(f"{path} is a directory") from None
    pending, stale = uploads.resumable(source, destination)
    for old in stale:
        await _drop(uploads, http, old)
    with contextlib.ExitStack() as held:
        if pending is None:
            sealed = await asyncio.to_thread(seal_file, path, home)
            held.enter_context(_claim_new(sealed))
            with s.ks.transaction():
                blob_id = uploads.add(sealed, source, destination)
            file_id, offset = None, 0
        else:
            held.enter_context(_claim_pending(uploads, pending, path))
            sealed, blob_id = pending.sealed, pending.blob_id
            file_id, offset = await _resume_point(http, pending)
        if file_id is None:
            try:
                file_id = await transfer.create_upload(http, sealed.blob_size)
            except errors.ServerError:
                uploads.drop(blob_id, sealed)  # refused: nothing to resume
                raise
            with s.ks.transaction():
                uploads.set_file_id(blob_id, file_id)

        bar = ProgressBar("uploading", sealed.blob_size)
        await transfer.upload_from(http, file_id, sealed.blob_path, sealed.blob_size, offset, bar)
        bar.done()
        result = await s.device.send_attachment(
            sealed.pointer(file_id),
            caption,
            user_id=user_id,
            group=group,
            stored=lambda: uploads.remove(blob_id),  # the pointer is on its way: never resume it
        )
        sealed.discard()
    return FileSent(sealed, file_id, result)


async def _resume_point(http: Http, pending: PendingUpload) -> tuple[str | None, int]:
    """The appliance's upload id and committed offset to continue at; (None, 0): start one."""
    if pending.file_id is None:
        return None, 0
    known = await transfer.upload_offset(http, pending.file_id)
    if known is None:
        _note("the appliance no longer has the earlier upload; uploading it again")
        return None, 0
    total = pending.sealed.blob_size
    _note(f"resuming upload at {known / MIB:.1f} MiB of {total / MIB:.1f} MiB")
    return pending.file_id, known


def _claim_new(sealed: SealedFile) -> BlobClaim:
    """Claimed before its row exists, so no other run can pick this upload up meanwhile."""
    claim = BlobClaim.take(sealed.blob_path)
    if claim is None:
        raise RuntimeError("a blob sealed just now is locked by another process")
    return claim


def _claim_pending(uploads: PendingUploads, pending: PendingUpload, path: Path) -> BlobClaim:
    """The interrupted upload to continue, unless another send-file is uploading it now."""
    busy = errors.UploadInProgress(
        f"another send-file is sending {path} to the same destination right now;"
        " wait for it to finish"
    )
    try:
        claim = BlobClaim.take(pending.sealed.blob_path)
    except FileNotFoundError:
        raise busy from None  # that run has just sent it and removed the blob
    if claim is None:
        raise busy
    if pending.blob_id not in {p.blob_id for p in uploads.all()}:
        claim.release()
        raise busy  # sent by the other run between our look and our claim
    return claim


def _note(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


async def _drop(uploads: PendingUploads, http: Http, old: PendingUpload) -> None:
    """Forget an upload that will not be resumed, unless another send-file is uploading it."""
    try:
        claim = BlobClaim.take(old.sealed.blob_path)
    except FileNotFoundError:
        claim = None
    else:
        if claim is None:
            return  # in use by a running send-file; a later run drops it once that ends
    try:
        uploads.drop(old.blob_id, old.sealed)
        if old.file_id is not None:
            await transfer.discard_upload(http, old.file_id)
    finally:
        if claim is not None:
            claim.release()
