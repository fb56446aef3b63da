"""Encrypted files (PROTOCOL.md s9): resumable uploads and downloads of opaque blobs.

- ``POST /v1/uploads`` ``{"length": n}``: a new upload (201, ``Location``).
- ``GET``/``HEAD /v1/uploads/{file_id}``: its committed offset (also as ``Upload-Offset``).
- ``PATCH``/``PUT /v1/uploads/{file_id}`` with ``Upload-Offset``: the next bytes. The body is
  streamed from the socket to the partial file and never held in memory; this route is the only
  one not bound by ``server.max_request_bytes`` (that limit applies to bodies read whole).
- ``DELETE /v1/uploads/{file_id}``: abandon it.
- ``GET``/``HEAD /v1/files/{file_id}``: the blob (one byte range at most), streamed from disk.
- ``DELETE /v1/files/{file_id}``: the uploader removes it before it expires.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

from aiohttp import hdrs, web
from aiohttp.http_exceptions import HttpProcessingError
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from semafore.services.files import FileStats, UploadState
from semafore.web.appkeys import FILES, SETTINGS
from semafore.web.bodies import json_response, read_json_object
from semafore.web.device_auth import device_principal
from semafore.web.metrics import Metrics
from semafore.web.problems import problem_response
from semafore.web.server import large_tls_reads

UPLOAD_CONTENT_TYPES = frozenset({"application/offset+octet-stream", "application/octet-stream"})
_RANGE = re.compile(r"bytes=(\d{0,19})-(\d{0,19})")


def _state_response(state: UploadState, *, status: int = 200) -> web.Response:
    headers = {"Upload-Offset": str(state.offset), "Upload-Length": str(state.length)}
    if status == 201:
        headers["Location"] = f"/v1/uploads/{state.file_id}"
    return json_response(state.to_json(), status=status, headers=headers)


async def create_upload(request: web.Request) -> web.Response:
    principal = await device_principal(request)
    state = await request.app[FILES].create_upload(principal, await read_json_object(request))
    return _state_response(state, status=201)


async def upload_state(request: web.Request) -> web.Response:
    principal = await device_principal(request)
    state = await request.app[FILES].upload_state(principal, request.match_info["file_id"])
    return _state_response(state)


async def write_upload(request: web.Request) -> web.Response:
    principal = await device_principal(request)
    if request.content_type not in UPLOAD_CONTENT_TYPES:
        raise web.HTTPUnsupportedMediaType(text="send the bytes as application/offset+octet-stream")
    body = _Body(request, request.app[SETTINGS].files.upload_idle_timeout_seconds)
    with large_tls_reads(request):
        state = await request.app[FILES].write(
            principal,
            request.match_info["file_id"],
            request.headers.get("Upload-Offset", "0" if request.method == "PUT" else None),
            body.chunks(),
            content_length=request.content_length,
        )
    if body.ended == "idle":
        raise web.HTTPRequestTimeout(
            text=f"no bytes arrived for a while; resume at offset {state.offset}"
        )
    return _state_response(state)


async def cancel_upload(request: web.Request) -> web.Response:
    principal = await device_principal(request)
    await request.app[FILES].cancel_upload(principal, request.match_info["file_id"])
    return web.Response(status=204)


async def download(request: web.Request) -> web.StreamResponse:
    principal = await device_principal(request)
    files = request.app[FILES]
    found = await files.download(principal, request.match_info["file_id"])
    etag = f'"{found.file_id}"'  # blobs never change
    try:
        wanted = _byte_range(request, etag, found.size)
    except _Unsatisfiable as exc:
        return problem_response(
            416, "range_not_satisfiable", str(exc),
            headers={"Content-Range": f"bytes */{found.size}"},
        )
    start, end = wanted or (0, found.size)
    response = web.StreamResponse(status=206 if wanted else 200)
    response.headers.update({
        hdrs.CONTENT_TYPE: "application/octet-stream",
        hdrs.CONTENT_DISPOSITION: "attachment",
        hdrs.ACCEPT_RANGES: "bytes",
        hdrs.ETAG: etag,
        "X-Content-Type-Options": "nosniff",
    })
    if wanted:
        response.headers[hdrs.CONTENT_RANGE] = f"bytes {start}-{end - 1}/{found.size}"
    response.content_length = end - start
    if request.method == "HEAD" or start == end:
        await response.prepare(request)
        return response
    chunks = await files.read(found, start, end)  # a vanished file is still a clean 404 here
    async with contextlib.aclosing(chunks):
        await response.prepare(request)
        sent = 0
        try:
            async for chunk in chunks:
                await response.write(chunk)
                sent += len(chunk)
            if sent != end - start:
                response.force_close()  # the file changed under us: end the connection
            await response.write_eof()
        except ConnectionResetError:
            pass  # the client went away; it resumes with a Range request
    return response


async def delete_file(request: web.Request) -> web.Response:
    principal = await device_principal(request)
    await request.app[FILES].delete_file(principal, request.match_info["file_id"])
    return web.Response(status=204)


# -- helpers ----------------------------------------------------------------------------------


@dataclass
class _Body:
    """The request body as chunks straight off the socket. A dropped connection or an idle
    client ends the stream early (``ended`` says why), so what arrived is kept."""

    request: web.Request
    idle_timeout: float
    ended: str = "eof"

    async def chunks(self) -> AsyncIterator[bytes]:
        content = self.request.content
        while True:
            try:
                async with asyncio.timeout(self.idle_timeout):
                    chunk = await content.readany()
            except TimeoutError:
                self.ended = "idle"
                return
            except (ConnectionError, HttpProcessingError):
                self.ended = "dropped"
                return
            if not chunk:
                return
            yield chunk


class _Unsatisfiable(Exception):
    pass


def _byte_range(request: web.Request, etag: str, size: int) -> tuple[int, int] | None:
    """One ``bytes=`` range as ``[start, end)``, or None for the whole file (no Range, or an
    ``If-Range`` that names another version). Anything else is 416."""
    header = request.headers.get(hdrs.RANGE)
    if header is None or request.headers.get(hdrs.IF_RANGE, etag) != etag:
        return None
    match = _RANGE.fullmatch(header.strip())
    if match is None or match.group(1) == match.group(2) == "":
        raise _Unsatisfiable("send a single byte range: bytes=FIRST-LAST, FIRST- or -SUFFIX")
    first, last = match.groups()
    if first == "":
        suffix = int(last)
        if suffix == 0:
            raise _Unsatisfiable("an empty suffix range selects nothing")
        return max(0, size - suffix), size
    start = int(first)
    end = size if last == "" else min(int(last) + 1, size)
    if start >= size or (last != "" and int(last) < start):
        raise _Unsatisfiable(f"the range starts past the end of the file ({size} bytes)")
    return start, end


class _FilesCollector(Collector):
    def __init__(self, stats: FileStats) -> None:
        self._stats = stats

    def collect(self) -> Iterator[Metric]:
        s = self._stats
        yield GaugeMetricFamily(
            "semafore_files_bytes_stored", "Bytes of complete files stored (all organisations).",
            value=s.bytes_stored,
        )
        for name, documentation, value in (
            ("uploads_created", "Uploads created.", s.uploads_created),
            ("uploads_completed", "Uploads completed (files committed).", s.uploads_completed),
            ("bytes_received", "Upload bytes written to partial files.", s.bytes_received),
            ("downloads", "Downloads started (full or ranged).", s.downloads),
            ("expired", "Files removed at the end of their retention.", s.files_expired),
            ("uploads_abandoned", "Unfinished uploads removed by the sweep.", s.uploads_abandoned),
        ):
            yield CounterMetricFamily(f"semafore_files_{name}", documentation, value=value)
        refused = CounterMetricFamily(
            "semafore_files_refused", "File requests refused, by error code.", labels=["code"]
        )
        for code, count in sorted(s.refused.items()):
            refused.add_metric([code], count)
        yield refused


def register_file_metrics(metrics: Metrics, stats: FileStats) -> None:
    metrics.registry.register(_FilesCollector(stats))


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1/uploads", create_upload)
    app.router.add_get("/v1/uploads/{file_id}", upload_state)
    app.router.add_patch("/v1/uploads/{file_id}", write_upload)
    app.router.add_put("/v1/uploads/{file_id}", write_upload)
    app.router.add_delete("/v1/uploads/{file_id}", cancel_upload)
    app.router.add_get("/v1/files/{file_id}", download)
    app.router.add_delete("/v1/files/{file_id}", delete_file)
