"""Blob upload and download against the appliance's file API (docs/openapi.yaml, /v1/uploads and
/v1/files), streaming both ways and resuming after a dropped connection: an upload continues
from the server's committed offset, a download from the bytes already received (Range).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp

from semafore.client import errors
from semafore.client.attachments import READ_SIZE
from semafore.client.http import Http, error_from_problem
from semafore.client.listener import Backoff

ATTEMPTS = 6
UPLOAD_TYPE = "application/offset+octet-stream"
log = logging.getLogger("semafore.client.transfer")
Progress = Callable[[int], None]


class ProgressBar:
    """`label 42% (12.3/29.0 MiB)` on stderr, for large transfers on a terminal only."""

    MIN_SIZE = 1 << 20

    def __init__(self, label: str, total: int) -> None:
        self.label, self.total = label, total
        self.enabled = total >= self.MIN_SIZE and sys.stderr.isatty()
        self._last = -1

    def __call__(self, done: int) -> None:
        if not self.enabled:
            return
        percent = done * 100 // max(1, self.total)
        if percent != self._last:
            self._last = percent
            mib = 1 << 20
            print(
                f"\r{self.label} {percent:3d}% ({done / mib:.1f}/{self.total / mib:.1f} MiB)",
                end="",
                file=sys.stderr,
                flush=True,
            )

    def done(self) -> None:
        if self.enabled:
            print(file=sys.stderr, flush=True)


async def _send(
    http: Http, method: str, path: str, *, data: object = None, headers: dict[str, str]
) -> aiohttp.ClientResponse:
    """One request with the bearer token; a 401 is answered by one token refresh."""
    for attempt in (0, 1):
        hdrs = {**headers, "Authorization": f"Bearer {http.access_token}"}
        try:
            resp = await http.session.request(
                method,
                http.base_url + path,
                data=data() if callable(data) else data,
                headers=hdrs,
                timeout=aiohttp.ClientTimeout(total=None, sock_read=120),
            )
        except aiohttp.ClientConnectorCertificateError:
            raise errors.ServerUnreachable(
                f"{http.base_url}: the server certificate is not signed by the appliance CA"
            ) from None
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise errors.ServerUnreachable(
                f"cannot reach {http.base_url} ({type(exc).__name__})"
            ) from None
        if resp.status == 401 and attempt == 0 and http.refresh is not None:
            body = await resp.read()
            resp.release()
            if isinstance(error_from_problem(401, body), errors.Revoked):
                raise error_from_problem(401, body)
            http.access_token = await http.refresh()
            continue
        if resp.status >= 400:
            body = await resp.read()
            resp.release()
            raise error_from_problem(resp.status, body)
        return resp
    raise AssertionError("unreachable")


async def upload(http: Http, blob_path: Path, size: int, progress: Progress) -> str:
    """Upload the blob file; returns the server's file id."""
    file_id = await create_upload(http, size)
    await upload_from(http, file_id, blob_path, size, 0, progress)
    return file_id


async def create_upload(http: Http, size: int) -> str:
    """A new upload of `size` bytes on the server; returns its id (also the file's id)."""
    resp = await _send(
        http,
        "POST",
        "/v1/uploads",
        data=_json({"length": size}),
        headers={"Content-Type": "application/json"},
    )
    state = await resp.json()
    resp.release()
    return str(state["id"])


async def upload_from(
    http: Http, file_id: str, blob_path: Path, size: int, offset: int, progress: Progress
) -> None:
    """Send the blob file from `offset` (the server's committed offset) to the end."""
    backoff = Backoff(0.5, 10.0)
    for _attempt in range(ATTEMPTS):
        if offset >= size:
            break
        try:
            resp = await _send(
                http,
                "PATCH",
                f"/v1/uploads/{file_id}",
                data=lambda start=offset: _read_from(blob_path, start, progress),
                headers={"Content-Type": UPLOAD_TYPE, "Upload-Offset": str(offset)},
            )
            offset = int((await resp.json())["offset"])
            resp.release()
        except (errors.ServerUnreachable, aiohttp.ClientError, errors.ServerError) as exc:
            if isinstance(exc, errors.ServerError) and exc.status not in (408, 409, 503):
                raise
            await asyncio.sleep(backoff.next_delay())
            offset = await _committed(http, file_id)  # resume where the server is
    if offset < size:
        raise errors.ServerUnreachable("the upload did not complete; try again")
    progress(size)


async def upload_offset(http: Http, file_id: str) -> int | None:
    """The server's committed offset of an upload, or None if it no longer knows the upload
    (expired, removed, or never ours)."""
    try:
        return await _committed(http, file_id)
    except errors.NotFound:
        return None


async def _committed(http: Http, file_id: str) -> int:
    resp = await _send(http, "GET", f"/v1/uploads/{file_id}", headers={})
    offset = int((await resp.json())["offset"])
    resp.release()
    return offset


async def discard_upload(http: Http, file_id: str) -> None:
    """Remove an upload whose pointer was never sent: cancel it, or delete the file if it was
    complete. Best effort: what the server no longer has, or cannot be reached to remove, it
    removes itself (abandoned uploads and expired files are swept)."""
    try:
        resp = await _send(http, "DELETE", f"/v1/uploads/{file_id}", headers={})
        resp.release()
    except errors.ServerError as exc:
        if exc.code == "upload_complete":
            with contextlib.suppress(errors.ServerError, errors.ServerUnreachable):
                await delete(http, file_id)
        elif not isinstance(exc, errors.NotFound):
            log.info("could not remove upload %s… (%s)", file_id[:6], exc.code)
    except errors.ServerUnreachable:
        log.info("could not remove upload %s…: server unreachable", file_id[:6])


async def _read_from(path: Path, start: int, progress: Progress) -> AsyncIterator[bytes]:
    with path.open("rb") as fh:
        fh.seek(start)
        done = start
        while chunk := fh.read(READ_SIZE):
            done += len(chunk)
            progress(done)
            yield chunk


async def download(http: Http, file_id: str, progress: Progress) -> AsyncIterator[bytes]:
    """The blob's bytes; a dropped connection resumes with a Range request."""
    received = 0
    backoff = Backoff(0.5, 10.0)
    for _attempt in range(ATTEMPTS):
        headers = {"Range": f"bytes={received}-"} if received else {}
        try:
            resp = await _send(http, "GET", f"/v1/files/{file_id}", headers=headers)
        except errors.ServerUnreachable:
            await asyncio.sleep(backoff.next_delay())
            continue
        try:
            if received and resp.status != 206:
                raise errors.ServerError("server ignored the resume range", code="bad_response")
            async for chunk in resp.content.iter_chunked(READ_SIZE):
                received += len(chunk)
                progress(received)
                yield chunk
            return
        except (aiohttp.ClientError, TimeoutError, OSError):
            await asyncio.sleep(backoff.next_delay())
        finally:
            resp.release()
    raise errors.ServerUnreachable("the download did not complete; try again")


async def delete(http: Http, file_id: str) -> None:
    """The uploader removes its file before it expires."""
    resp = await _send(http, "DELETE", f"/v1/files/{file_id}", headers={})
    resp.release()


def _json(obj: object) -> bytes:
    import json

    return json.dumps(obj).encode()
