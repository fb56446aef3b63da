"""The file API over real TLS: resumable uploads, downloads with ranges, refusals with stable
codes, organisation boundaries, quota, expiry and resume after a dropped connection."""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
import struct
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from yarl import URL

from files.support import OCTETS, FileDevice, FilesEnv, env_fixture
from semafore.services import ManualClock, NotFound
from support.appliance import Appliance

DAY = 86_400


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def env(
    appliance: Appliance, start_server, ca_ssl_context: ssl.SSLContext, clock: ManualClock  # type: ignore[no-untyped-def]
) -> AsyncIterator[FilesEnv]:
    async for e in env_fixture(
        appliance, start_server, ca_ssl_context, clock=clock,
        max_upload_bytes=4 << 20, org_quota_bytes=10 << 20, upload_idle_timeout_seconds=1.0,
    ):
        yield e


def members(env: FilesEnv) -> tuple[list[Any], list[Any], Any]:
    """(alice's two devices, bob's device, carol's device in the other organisation)."""
    alice, bob = env.world.members.values()
    (carol,) = env.other_org.members.values()
    return alice, bob, carol[0]


@pytest.fixture
async def alice(env: FilesEnv) -> FileDevice:
    return env.device(members(env)[0][0])


@pytest.fixture
async def alice2(env: FilesEnv) -> FileDevice:
    return env.device(members(env)[0][1])


@pytest.fixture
async def bob(env: FilesEnv) -> FileDevice:
    return env.device(members(env)[1][0])


@pytest.fixture
async def carol(env: FilesEnv) -> FileDevice:
    return env.device(members(env)[2])


def files_under(root: Path) -> dict[str, int]:
    return {
        str(p.relative_to(root)): p.stat().st_size for p in root.rglob("*") if p.is_file()
    }


# -- uploads ----------------------------------------------------------------------------------


async def test_upload_in_pieces_then_download(env: FilesEnv, alice: FileDevice) -> None:
    data = os.urandom(300_000)
    status, created = await alice.create(len(data))
    assert status == 201
    file_id = created["id"]
    assert len(file_id) == 32 and created == {
        "id": file_id, "length": len(data), "offset": 0, "complete": False,
    }
    status, body = await alice.patch(file_id, 0, data[:100_000])
    assert status == 200 and body == {
        "id": file_id, "length": len(data), "offset": 100_000, "complete": False,
    }
    status, headers_only, headers = await alice.call("HEAD", f"/v1/uploads/{file_id}")
    assert status == 200 and headers_only == b""
    assert headers["Upload-Offset"] == "100000" and headers["Upload-Length"] == str(len(data))
    status, body = await alice.patch(file_id, 100_000, data[100_000:])
    assert status == 200 and body["complete"] and body["offset"] == len(data)
    assert body["expires_at"] == int(env.services.clock.now()) + 30 * DAY
    status, got, headers = await alice.download(file_id)
    assert status == 200 and got == data
    assert headers["Content-Type"] == "application/octet-stream"
    assert headers["Content-Disposition"] == "attachment"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Accept-Ranges"] == "bytes"
    assert files_under(env.blob_root) == {f"{file_id[:2]}/{file_id}": len(data)}


async def test_put_uploads_a_whole_body_and_bypasses_the_request_size_limit(
    appliance: Appliance, start_server, ca_ssl_context: ssl.SSLContext  # type: ignore[no-untyped-def]
) -> None:
    appliance.configure(server={"max_request_bytes": 4096})
    async for env in env_fixture(appliance, start_server, ca_ssl_context):
        device = env.device(members(env)[0][0])
        data = os.urandom(1 << 20)
        file_id = await device.new_upload(len(data))
        status, body, _ = await device.call(
            "PUT", f"/v1/uploads/{file_id}", data=data,
            headers={"Content-Type": "application/octet-stream"},
        )
        assert status == 200 and body["complete"]
        assert (await device.download(file_id))[1] == data
        # Everything else keeps the limit.
        status, body, _ = await device.call(
            "POST", "/v1/uploads", data=b'{"length": 1' + b" " * 5000 + b"}",
            headers={"Content-Type": "application/json"},
        )
        assert (status, body["code"]) == (413, "payload_too_large")


async def test_an_empty_blob_completes_with_an_empty_body(alice: FileDevice) -> None:
    file_id = await alice.new_upload(0)
    status, body = await alice.patch(file_id, 0, b"")
    assert status == 200 and body["complete"]
    status, got, headers = await alice.download(file_id)
    assert (status, got, headers["Content-Length"]) == (200, b"", "0")


async def test_refused_creations(alice: FileDevice) -> None:
    for body in ({}, {"length": -1}, {"length": "10"}, {"length": 1.5}, {"length": True}):
        status, answer, _ = await alice.call("POST", "/v1/uploads", json=body)
        assert (status, answer["code"]) == (400, "invalid_upload_length"), body
    status, answer = await alice.create((4 << 20) + 1)
    assert (status, answer["code"], answer["max_bytes"]) == (413, "upload_too_large", 4 << 20)
    status, answer, _ = await alice.call(
        "POST", "/v1/uploads", data=b"length=5", headers={"Content-Type": "text/plain"}
    )
    assert (status, answer["code"]) == (415, "unsupported_media_type")


async def test_unauthenticated_requests_are_refused(env: FilesEnv, alice: FileDevice) -> None:
    file_id = await alice.upload(b"x" * 100)
    async with alice.session.get(
        env.server.url + f"/v1/files/{file_id}", headers={"Authorization": "Bearer nope"}
    ) as response:
        assert response.status == 401
        assert (await response.json())["code"] == "token_invalid"


async def test_offsets_are_checked(env: FilesEnv, alice: FileDevice) -> None:
    file_id = await alice.new_upload(1000)
    assert (await alice.patch(file_id, 0, b"a" * 400))[0] == 200
    status, body = await alice.patch(file_id, 0, b"b" * 100)
    assert (status, body["code"], body["offset"]) == (409, "upload_offset_mismatch", 400)
    status, body = await alice.patch(file_id, 500, b"b" * 100)
    assert (status, body["code"], body["offset"]) == (409, "upload_offset_mismatch", 400)
    for bad in ("-1", "abc", "1e3", "9" * 40, " "):
        status, body = await alice.patch(file_id, 0, b"b", headers={"Upload-Offset": bad})
        assert (status, body["code"]) == (400, "invalid_upload_offset"), bad
    status, body, _ = await alice.call(
        "PATCH", f"/v1/uploads/{file_id}", data=b"b", headers={"Content-Type": OCTETS}
    )
    assert (status, body["code"]) == (400, "invalid_upload_offset")
    status, body = await alice.patch(file_id, 400, b"b", headers={"Content-Type": "text/plain"})
    assert (status, body["code"]) == (415, "unsupported_media_type")
    assert (await alice.state(file_id))[1]["offset"] == 400


async def test_a_body_past_the_declared_length_is_refused_and_nothing_kept(
    env: FilesEnv, alice: FileDevice
) -> None:
    file_id = await alice.new_upload(1000)
    assert (await alice.patch(file_id, 0, b"a" * 300))[0] == 200
    # Declared up front (Content-Length) ...
    status, body = await alice.patch(file_id, 300, b"b" * 800)
    assert (status, body["code"], body["offset"]) == (413, "upload_too_long", 300)

    # ... or found out while streaming (chunked, no Content-Length).
    async def chunked() -> AsyncIterator[bytes]:
        for _ in range(9):
            yield b"c" * 100

    status, body = await alice.patch(file_id, 300, chunked())
    assert (status, body["code"]) == (413, "upload_too_long")
    assert (await alice.state(file_id))[1]["offset"] == 300
    assert files_under(env.blob_root) == {f"partial/{file_id}": 300}
    status, body = await alice.patch(file_id, 300, b"d" * 700)
    assert status == 200 and body["complete"]
    assert (await alice.download(file_id))[1] == b"a" * 300 + b"d" * 700
    status, body = await alice.patch(file_id, 1000, b"e")
    assert (status, body["code"]) == (413, "upload_too_long")
    status, body = await alice.patch(file_id, 1000, b"")  # a retried final piece: idempotent
    assert status == 200 and body["complete"]


async def test_a_short_upload_stays_partial_and_cannot_be_downloaded(
    alice: FileDevice, bob: FileDevice
) -> None:
    file_id = await alice.new_upload(1000)
    assert (await alice.patch(file_id, 0, b"a" * 999))[0] == 200
    for device in (alice, bob):
        status, body, _ = await device.download(file_id)
        assert (status, body["code"]) == (404, "file_not_found")


async def test_cancelled_upload_leaves_nothing(env: FilesEnv, alice: FileDevice) -> None:
    file_id = await alice.new_upload(1000)
    await alice.patch(file_id, 0, b"a" * 500)
    status, _, _ = await alice.call("DELETE", f"/v1/uploads/{file_id}")
    assert status == 204
    assert (await alice.state(file_id))[1]["code"] == "upload_not_found"
    assert files_under(env.blob_root) == {}
    done = await alice.upload(b"z" * 10)
    status, body, _ = await alice.call("DELETE", f"/v1/uploads/{done}")
    assert (status, body["code"]) == (409, "upload_complete")


async def test_concurrent_uploads(env: FilesEnv, alice: FileDevice, alice2: FileDevice,
                                  bob: FileDevice) -> None:
    payloads = [os.urandom(200_000 + i * 7919) for i in range(9)]
    devices = [alice, alice2, bob] * 3

    async def one(device: FileDevice, data: bytes) -> tuple[str, bytes]:
        file_id = await device.new_upload(len(data))
        for start in range(0, len(data), 64_000):
            status, _ = await device.patch(file_id, start, data[start : start + 64_000])
            assert status == 200
        return file_id, data

    done = await asyncio.gather(*(one(d, p) for d, p in zip(devices, payloads, strict=True)))
    assert len({file_id for file_id, _ in done}) == len(payloads)
    for file_id, data in done:
        assert (await bob.download(file_id))[1] == data


async def test_a_second_writer_on_the_same_upload_is_told_it_is_busy(alice: FileDevice) -> None:
    file_id = await alice.new_upload(1 << 20)
    first_piece_sent = asyncio.Event()
    release = asyncio.Event()

    async def slow() -> AsyncIterator[bytes]:
        yield b"a" * 1000
        first_piece_sent.set()
        await release.wait()
        yield b"b" * 1000

    writer = asyncio.create_task(alice.patch(file_id, 0, slow()))
    await first_piece_sent.wait()
    for _ in range(50):  # until the server has the first request's headers
        status, body = await alice.patch(file_id, 0, b"c")
        if status == 409 and body["code"] == "upload_busy":
            break
        await asyncio.sleep(0.05)
    assert body["code"] == "upload_busy"
    release.set()
    status, body = await writer
    assert status == 200 and body["offset"] == 2000


# -- resume after a dropped connection ----------------------------------------------------------


class RawPatch:
    """A PATCH over its own TLS socket, so the test can reset the TCP connection mid-body."""

    def __init__(self, url: str, context: ssl.SSLContext) -> None:
        host, port = URL(url).host, URL(url).port
        self.host = host
        self.tls = context.wrap_socket(socket.create_connection((host, port)),
                                       server_hostname=host)

    def send(self, token: str, file_id: str, offset: int, declared: int, data: bytes) -> None:
        head = (
            f"PATCH /v1/uploads/{file_id} HTTP/1.1\r\nHost: {self.host}\r\n"
            f"Authorization: Bearer {token}\r\nContent-Type: {OCTETS}\r\n"
            f"Upload-Offset: {offset}\r\nContent-Length: {declared}\r\n\r\n"
        ).encode()
        self.tls.sendall(head + data)

    def reset(self) -> None:
        """SO_LINGER 0: an RST, no TLS close_notify, no FIN."""
        self.tls.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.tls.close()


async def test_resume_after_the_connection_drops_mid_body(
    env: FilesEnv, alice: FileDevice
) -> None:
    data = os.urandom(3 << 20)
    file_id = await alice.new_upload(len(data))
    raw = await asyncio.to_thread(RawPatch, env.server.url, env.context)  # handshake
    await asyncio.to_thread(raw.send, alice.creds.access_token, file_id, 0, len(data),
                            data[: 2 << 20])
    blobs = env.services.blobs
    for _ in range(200):  # until the server has written some of it to the partial file
        if (blobs.partial_size(file_id) or 0) >= 1 << 20:
            break
        await asyncio.sleep(0.05)
    raw.reset()
    # The server notices the reset, keeps what arrived (fsynced) and records the offset.
    offset = 0
    for _ in range(200):
        status, body = await alice.state(file_id)
        offset = body["offset"]
        if offset > 0 and (await alice.patch(file_id, offset, b""))[0] == 200:
            break
        await asyncio.sleep(0.05)
    assert 1 << 20 <= offset <= 2 << 20
    status, body = await alice.patch(file_id, offset, data[offset:])
    assert status == 200 and body["complete"]
    assert (await alice.download(file_id))[1] == data


async def test_an_idle_body_is_cut_off_and_what_arrived_is_kept(
    env: FilesEnv, alice: FileDevice
) -> None:
    file_id = await alice.new_upload(10_000)

    async def stalls() -> AsyncIterator[bytes]:
        yield b"a" * 4000
        await asyncio.sleep(3)  # longer than upload_idle_timeout_seconds
        yield b"a" * 6000

    status, body = await alice.patch(file_id, 0, stalls())
    assert (status, body["code"]) == (408, "request_timeout")
    assert (await alice.state(file_id))[1]["offset"] == 4000


# -- downloads --------------------------------------------------------------------------------


async def test_ranges(alice: FileDevice, bob: FileDevice) -> None:
    data = os.urandom(10_000)
    file_id = await alice.upload(data)
    for header, start, end in (
        ("bytes=0-99", 0, 100),
        ("bytes=9990-", 9990, 10_000),
        ("bytes=-10", 9990, 10_000),
        ("bytes=5000-99999", 5000, 10_000),
        ("bytes=-20000", 0, 10_000),
    ):
        status, got, headers = await bob.download(file_id, {"Range": header})
        assert status == 206, header
        assert got == data[start:end]
        assert headers["Content-Range"] == f"bytes {start}-{end - 1}/10000"
    for header in ("bytes=10000-", "bytes=20000-30000", "bytes=-0", "bytes=0-1,5-6",
                   "bytes=5-1", "items=0-1", "bytes=-", "bytes=x-y"):
        status, body, headers = await bob.download(file_id, {"Range": header})
        assert (status, body["code"]) == (416, "range_not_satisfiable"), header
        assert headers["Content-Range"] == "bytes */10000"
    # If-Range naming another version: the whole file.
    status, got, _ = await bob.download(file_id, {"Range": "bytes=0-9", "If-Range": '"old"'})
    assert (status, got) == (200, data)
    status, got, headers = await bob.download(file_id, {"Range": "bytes=0-9",
                                                        "If-Range": f'"{file_id}"'})
    assert (status, got) == (206, data[:10])
    status, got, headers = await bob.call("HEAD", f"/v1/files/{file_id}")
    assert (status, got, headers["Content-Length"]) == (200, b"", "10000")


async def test_other_organisations_get_the_same_404_as_for_unknown_ids(
    alice: FileDevice, carol: FileDevice
) -> None:
    file_id = await alice.upload(b"secret ciphertext")
    unknown = "a" * 32
    status, body, _ = await carol.download(file_id)
    status2, body2, _ = await carol.download(unknown)
    assert status == status2 == 404
    assert body == body2 and body["code"] == "file_not_found"
    for path in (f"/v1/uploads/{file_id}", f"/v1/uploads/{unknown}"):
        status, body, _ = await carol.call("GET", path)
        assert (status, body["code"]) == (404, "upload_not_found")
    status, body, _ = await carol.call("DELETE", f"/v1/files/{file_id}")
    assert (status, body["code"]) == (404, "file_not_found")
    assert (await alice.download(file_id))[1] == b"secret ciphertext"


async def test_only_the_uploader_may_delete(
    env: FilesEnv, alice: FileDevice, alice2: FileDevice, bob: FileDevice
) -> None:
    file_id = await alice.upload(b"x" * 1000)
    status, body, _ = await bob.call("DELETE", f"/v1/files/{file_id}")
    assert (status, body["code"]) == (403, "not_file_owner")
    status, _, _ = await alice2.call("DELETE", f"/v1/files/{file_id}")  # her other device
    assert status == 204
    assert (await bob.download(file_id))[1]["code"] == "file_not_found"
    assert files_under(env.blob_root) == {}
    # An upload in progress is not a file yet (and another member cannot see the upload).
    pending = await alice.new_upload(10)
    assert (await bob.state(pending))[1]["code"] == "upload_not_found"
    assert (await alice.call("DELETE", f"/v1/files/{pending}"))[1]["code"] == "file_not_found"


@pytest.mark.parametrize("path", [
    "/v1/files/not-an-id",
    "/v1/files/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    "/v1/files/" + "a" * 31,
    "/v1/files/" + "a" * 33,
    "/v1/files/" + "a" * 30 + "01",
    "/v1/files/..%2F..%2Fsemafore.db",
    "/v1/files/%2e%2e",
    "/v1/files/" + "a" * 31 + "%00",
    "/v1/uploads/..%2Fpartial",
    "/v1/uploads/" + "a" * 31 + "%2F",
])
async def test_malformed_and_traversal_ids_touch_nothing(
    env: FilesEnv, alice: FileDevice, path: str
) -> None:
    data_dir = env.services.settings.storage.data_dir
    sentinel = data_dir / "sentinel"
    sentinel.write_bytes(b"keep")
    before = files_under(env.blob_root)
    url = URL(env.server.url + path, encoded=True)
    for method in ("GET", "DELETE", "PATCH"):
        async with alice.session.request(
            method, url, data=b"x", headers={"Upload-Offset": "0", "Content-Type": OCTETS}
        ) as response:
            body = await response.json(content_type=None)
            assert response.status in (400, 404, 405), (method, path)
            assert body["code"] in {
                "invalid_file_id", "not_found", "method_not_allowed", "file_not_found",
            }, (method, path, body)
            if response.status == 400:
                assert body["code"] == "invalid_file_id"
    assert sentinel.read_bytes() == b"keep"
    assert files_under(env.blob_root) == before


# -- quota and expiry -------------------------------------------------------------------------


async def test_quota_counts_stored_and_reserved_bytes_per_organisation(
    appliance: Appliance, start_server, ca_ssl_context: ssl.SSLContext  # type: ignore[no-untyped-def]
) -> None:
    async for env in env_fixture(
        appliance, start_server, ca_ssl_context, max_upload_bytes=600_000,
        org_quota_bytes=1_000_000,
    ):
        (alice, _), (bob,), carol = members(env)
        a, b, c = env.device(alice), env.device(bob), env.device(carol)
        stored = await a.upload(os.urandom(500_000))
        reserved = await b.new_upload(400_000)  # reserved although nothing was sent yet
        status, body = await a.create(200_000)
        assert status == 409 and body["code"] == "org_quota_exceeded"
        assert (body["quota_bytes"], body["used_bytes"], body["requested_bytes"]) == (
            1_000_000, 900_000, 200_000,
        )
        assert "storage is full" in body["detail"]
        assert (await c.create(600_000))[0] == 201  # another organisation's quota
        assert (await a.create(100_000))[0] == 201  # exactly at the quota
        await a.call("DELETE", f"/v1/files/{stored}")
        await b.call("DELETE", f"/v1/uploads/{reserved}")
        assert (await a.create(600_000))[0] == 201


async def test_open_uploads_per_device_are_capped(
    appliance: Appliance, start_server, ca_ssl_context: ssl.SSLContext  # type: ignore[no-untyped-def]
) -> None:
    async for env in env_fixture(
        appliance, start_server, ca_ssl_context, max_open_uploads_per_device=2
    ):
        (alice, alice2), _, _ = members(env)
        a, a2 = env.device(alice), env.device(alice2)
        await a.new_upload(10)
        await a.new_upload(10)
        status, body = await a.create(10)
        assert (status, body["code"]) == (409, "too_many_uploads")
        assert (await a2.create(10))[0] == 201


async def test_files_expire_after_the_retention_period(
    env: FilesEnv, clock: ManualClock, alice: FileDevice, bob: FileDevice
) -> None:
    file_id = await alice.upload(b"x" * 5000)
    partial = await alice.new_upload(5000)
    await alice.patch(partial, 0, b"y" * 100)
    # Access tokens live 15 minutes on the same clock: after the jump, ask the service.
    sessions, files = env.services.sessions, env.files
    as_alice = await sessions.authenticate(alice.creds.access_token)
    as_bob = await sessions.authenticate(bob.creds.access_token)
    clock.advance(30 * DAY - 1)
    assert (await files.download(as_bob, file_id)).size == 5000
    clock.advance(1)
    # Gone for readers at once, before the sweep removes the bytes.
    with pytest.raises(NotFound, match="no such file"):
        await files.download(as_bob, file_id)
    assert (await files.upload_state(as_alice, partial)).offset == 100  # abandoned long ago
    assert await files.sweep() == 2  # both go in one sweep
    with pytest.raises(NotFound, match="no such upload"):
        await files.upload_state(as_alice, partial)
    assert files_under(env.blob_root) == {}
    assert env.files.stats.files_expired == 1 and env.files.stats.uploads_abandoned == 1


async def test_metrics(env: FilesEnv, alice: FileDevice, bob: FileDevice) -> None:
    file_id = await alice.upload(b"x" * 1234)
    await bob.download(file_id)
    await bob.download("b" * 32)
    async with alice.session.get(env.server.url + "/metrics") as response:
        text = await response.text()
    assert "semafore_files_bytes_stored 1234.0" in text
    assert "semafore_files_uploads_completed_total 1.0" in text
    assert "semafore_files_downloads_total 1.0" in text
    assert 'semafore_files_refused_total{code="file_not_found"} 1.0' in text


async def test_a_blob_damaged_on_disk_is_served_as_it_is_and_a_lost_one_is_404(
    env: FilesEnv, alice: FileDevice
) -> None:
    data = os.urandom(50_000)
    file_id = await alice.upload(data)
    path = env.services.blobs.path_for(file_id)
    path.write_bytes(data[:30_000])  # the receiver's length and digest checks refuse this
    status, got, headers = await alice.download(file_id)
    assert (status, got, headers["Content-Length"]) == (200, data[:30_000], "30000")
    path.unlink()
    status, body, _ = await alice.download(file_id)
    assert (status, body["code"]) == (404, "file_not_found")
