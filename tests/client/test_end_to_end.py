"""`semafore-client` processes holding conversations through a running appliance over TLS:
two users with a second device that sees both sides, a group of three, live WebSocket
delivery, offline and out-of-order delivery, and the clear one-line errors."""

from __future__ import annotations

import asyncio
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from semafore.client.api import ApiClient
from semafore.client.device import Device
from semafore.client.device_state import DeviceState
from semafore.client.keysource import Passphrase
from semafore.client.keystore import Keystore
from semafore.client.messaging import new_content
from semafore.services import ManualClock
from semafore.web.appkeys import SERVICES
from support.appliance import Appliance
from support.relay_client import RELAY_TEST_CONFIG

from .cli_device import PASSPHRASE, CliDevice, enrol, last_code

pytestmark = pytest.mark.slow


@dataclass
class Org:
    server: Any
    services: Any
    org_id: str
    spool_dir: Path
    ca: Path
    tmp: Path
    phones: dict[str, str]

    def device(self, name: str) -> CliDevice:
        return CliDevice(self.tmp / name, self.server.url, self.ca)

    async def enrol(self, name: str, user: str) -> CliDevice:
        return await enrol(
            self.device(name), self.services, self.spool_dir, self.org_id, self.phones[user]
        )


@pytest.fixture
async def make_org(appliance: Appliance, start_server, tmp_path: Path):  # type: ignore[no-untyped-def]
    async def make(clock: Any = None) -> Org:
        appliance.configure(**RELAY_TEST_CONFIG)
        kwargs = {"clock": clock} if clock else {}
        server = await start_server(**kwargs)
        services = server.app[SERVICES]
        phones = {"alice": "+447700900101", "bob": "+447700900102", "carol": "+447700900103"}
        created, _ = await services.orgs.create_org("Acme", phones["alice"], actor="operator")
        for user in ("bob", "carol"):
            await services.members.add_member(created.org_id, phones[user], actor="operator")
        settings = appliance.settings()
        return Org(
            server,
            services,
            created.org_id,
            settings.resolve(settings.otp.file_spool_dir),
            appliance.ca_path,
            tmp_path,
            phones,
        )

    return make


@pytest.fixture
async def org(make_org) -> Org:  # type: ignore[no-untyped-def]
    return await make_org()


async def test_two_users_and_a_second_device_that_sees_both_sides(org: Org):
    alice = await org.enrol("alice-laptop", "alice")
    alice2 = await org.enrol("alice-phone", "alice")
    bob = await org.enrol("bob", "bob")

    sent = (await alice.ok("--json", "send", bob.user_id, "hello bob")).json()
    assert sent["devices"] == 2  # bob's device and alice's phone
    got = (await bob.ok("--json", "listen", "--once")).lines()
    assert [(m["from"], m["body"]) for m in got] == [(alice.user_id, "hello bob")]

    await bob.ok("send", org.phones["alice"], "hi alice")  # by phone number, via the directory
    got = (await alice.ok("--json", "listen", "--once")).lines()
    assert [m["body"] for m in got] == ["hi alice"]

    both = (await alice2.ok("--json", "listen", "--once")).lines()
    assert [(m["from"], m.get("to"), m["body"]) for m in both] == [
        (alice.user_id, bob.user_id, "hello bob"),
        (bob.user_id, alice.user_id, "hi alice"),
    ]
    assert both[0]["own_device"] is True
    human = await bob.ok("listen", "--once")
    assert human.out == ""  # everything was acked once stored


async def test_group_of_three(org: Org):
    alice = await org.enrol("alice", "alice")
    bob = await org.enrol("bob", "bob")
    carol = await org.enrol("carol", "carol")

    created = (
        await alice.ok("--json", "group", "create", "team", bob.user_id, carol.user_id)
    ).json()
    for member in (bob, carol):
        update = (await member.ok("--json", "listen", "--once")).lines()
        assert update[0]["type"] == "group_update"
        assert set(update[0]["members"]) == {alice.user_id, bob.user_id, carol.user_id}

    await bob.ok("group", "send", created["id"], "hello team")
    for member in (alice, carol):
        got = (await member.ok("--json", "listen", "--once")).lines()
        assert [(m["body"], m["group_name"]) for m in got] == [("hello team", "team")]

    await alice.ok("group", "remove", "team", carol.user_id)
    await carol.ok("listen", "--once")
    await bob.ok("listen", "--once")
    await alice.ok("group", "send", "team", "without carol")
    assert [m["body"] for m in (await bob.ok("--json", "listen", "--once")).lines()] == [
        "without carol"
    ]
    assert (await carol.ok("--json", "listen", "--once")).lines() == []


async def test_live_delivery_over_the_websocket(org: Org):
    alice = await org.enrol("alice", "alice")
    bob = await org.enrol("bob", "bob")
    listener = await bob.start("--json", "listen", "--count", "3", "--timeout", "60")
    await asyncio.sleep(1.5)  # the listener is connected and idle
    for i in range(3):
        await alice.ok("send", bob.user_id, f"live {i}")
    out, err = await asyncio.wait_for(listener.communicate(), 60)
    assert listener.returncode == 0, err.decode()
    bodies = [line for line in out.decode().splitlines() if line]
    assert [json.loads(b)["body"] for b in bodies] == ["live 0", "live 1", "live 2"]


async def test_offline_and_out_of_order_delivery(org: Org):
    alice = await org.enrol("alice", "alice")
    bob = await org.enrol("bob", "bob")
    await alice.ok("send", bob.user_id, "first, establishes the session")

    # alice's device encrypts three messages (committed in order), and they reach the server
    # in the reverse order; bob is offline meanwhile.
    ks = Keystore.open(alice.home, Passphrase(PASSPHRASE))
    api = ApiClient.connect(org.server.url, alice.ca, ks)
    try:
        device = Device(DeviceState(ks), api)
        requests = []
        for i in range(3):
            content, raw = new_content("text", f"late {i}", to=bob.user_id)
            targets = await device._current_targets([bob.user_id])
            requests.append(device.messenger.prepare(content, raw, targets))
        for request in reversed(requests):
            await api.send(request.to_dict())
            device.messenger.mark_sent(request.msg_id)
    finally:
        await api.close()
        ks.close()

    got = (await bob.ok("--json", "listen", "--once")).lines()
    assert [m["body"] for m in got] == [
        "first, establishes the session",
        "late 2",
        "late 1",
        "late 0",
    ]


async def test_clear_errors(org: Org, tmp_path: Path):
    alice = await org.enrol("alice", "alice")
    unknown = await alice.run("send", "u_doesnotexist", "hi")
    assert unknown.code != 0 and unknown.err.count("\n") == 1
    assert "unknown user" in unknown.err

    nobody = await alice.run("send", "+447700900999", "hi")
    assert nobody.code != 0 and "no member with the number" in nobody.err

    pending = org.device("bob-pending")
    await pending.ok("enrol", org.phones["bob"], "--request-code-only")
    code = await last_code(org.services, org.spool_dir, org.phones["bob"])
    await pending.ok("enrol", org.phones["bob"], "--code", code, "--no-wait")
    refused = await pending.run("send", alice.user_id, "hi")
    assert refused.code == 4 and "waiting for approval" in refused.err

    down = CliDevice(alice.home, "https://127.0.0.1:9", alice.ca)
    offline = await down.run("send", alice.user_id, "hi")
    assert offline.code == 6 and "cannot reach" in offline.err

    refused_pass = await alice.run("status", env={"SEMAFORE_CLIENT_PASSPHRASE": "nope"})
    assert refused_pass.code == 3 and "wrong passphrase" in refused_pass.err

    bob = await org.enrol("bob", "bob")
    await org.services.devices.revoke(org.org_id, bob.user_id, bob.device_id, actor="operator")
    revoked = await bob.run("send", alice.user_id, "hi")
    assert revoked.code == 8, revoked.err


async def test_safety_numbers_and_the_identity_change_rule(org: Org):
    alice = await org.enrol("alice", "alice")
    bob = await org.enrol("bob", "bob")
    await alice.ok("send", bob.user_id, "hi")
    await bob.ok("listen", "--once")

    ours = (await alice.ok("--json", "safety-number", bob.user_id)).json()
    theirs = (await bob.ok("--json", "safety-number", alice.user_id)).json()
    assert ours["safety_number"] == theirs["safety_number"] and len(ours["safety_number"]) == 60
    assert ours["verified"] is False

    wrong = await alice.run("verify", bob.user_id, "--number", "1" * 60)
    assert wrong.code == 5 and "does not match" in wrong.err
    await alice.ok("verify", bob.user_id, "--number", theirs["safety_number"])

    await org.enrol("bob-tablet", "bob")  # a new, unverified device of a verified contact
    blocked = await alice.run("send", bob.user_id, "still there?")
    assert blocked.code == 5, blocked.err
    assert "changed since you verified" in blocked.err
    assert "warning:" in blocked.err  # the identity-change notice is shown too

    changed = (await alice.ok("--json", "safety-number", bob.user_id)).json()
    assert changed["safety_number"] != ours["safety_number"] and changed["verified"] is False
    await alice.ok("trust", bob.user_id)
    sent = (await alice.ok("--json", "send", bob.user_id, "still there?")).json()
    assert sent["devices"] == 2


async def test_expired_access_tokens_are_refreshed(make_org):  # type: ignore[no-untyped-def]
    clock = ManualClock(time.time())
    org = await make_org(clock)
    alice = await org.enrol("alice", "alice")
    bob = await org.enrol("bob", "bob")
    refresh_before = _credential(bob, "refresh_token")

    clock.advance(3600)  # every access token issued so far has expired
    listener = await bob.start("--json", "listen", "--count", "1", "--timeout", "60")
    await asyncio.sleep(2)  # bob's WebSocket handshake got a 401 and reconnected after refresh
    await alice.ok("send", bob.user_id, "after expiry")  # alice refreshes over HTTP
    out, err = await asyncio.wait_for(listener.communicate(), 60)
    assert listener.returncode == 0, err.decode()
    assert json.loads(out.decode().splitlines()[0])["body"] == "after expiry"
    assert _credential(bob, "refresh_token") != refresh_before  # rotated, single use


def _credential(device: CliDevice, name: str) -> str | None:
    ks = Keystore.open(device.home, Passphrase(PASSPHRASE))
    try:
        return ks.credential(name)
    finally:
        ks.close()


async def test_files_go_to_the_recipient_and_the_senders_other_device(org: Org, tmp_path: Path):
    alice = await org.enrol("alice", "alice")
    alice2 = await org.enrol("alice-phone", "alice")
    bob = await org.enrol("bob", "bob")
    original = os.urandom(3 * 65536 + 1234)
    source = tmp_path / "plans.bin"
    source.write_bytes(original)

    sent = (
        await alice.ok("--json", "send-file", str(source), bob.user_id, "--caption", "the plans")
    ).json()
    assert sent["devices"] == 2 and sent["size"] == len(original)
    assert not list((alice.home / "outgoing").iterdir())  # the local blob is gone

    for device in (bob, alice2):
        (msg,) = (await device.ok("--json", "listen", "--once")).lines()
        assert msg["type"] == "attachment" and msg["body"] == "the plans"
        assert msg["attachment"]["name"] == "plans.bin"
        out = tmp_path / f"to-{device.home.name}"
        out.mkdir()
        got = (await device.ok("--json", "get-file", msg["mid"], str(out))).json()
        assert Path(got["path"]) == out / "plans.bin"
        assert (out / "plans.bin").read_bytes() == original

    # The blob directory holds ciphertext only.
    blob_dir = org.server.settings.storage.blob_dir
    stored = b"".join(p.read_bytes() for p in blob_dir.rglob("*") if p.is_file())
    assert len(stored) >= len(original)  # the blob is there, encrypted
    assert original[:4096] not in stored and original[-4096:] not in stored


class _ListFetchedBeforeNewDevice:
    """The device list as it was just before `hidden` was approved (then the real one)."""

    def __init__(self, api: ApiClient, hidden: tuple[str, int]) -> None:
        self.api, self.hidden, self.hid = api, hidden, False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.api, name)

    async def devices(self, user_id: str) -> Any:
        listed = await self.api.devices(user_id)
        if user_id == self.hidden[0] and not self.hid:
            self.hid = True
            return [d for d in listed if d.device_id != self.hidden[1]]
        return listed


async def test_a_409_from_the_server_refreshes_lists_and_resends(org: Org):
    alice = await org.enrol("alice", "alice")
    bob = await org.enrol("bob", "bob")
    await alice.ok("send", bob.user_id, "first")
    bob2 = await org.enrol("bob-tablet", "bob")

    ks = Keystore.open(alice.home, Passphrase(PASSPHRASE))
    api = ApiClient.connect(org.server.url, alice.ca, ks)
    try:
        relay = _ListFetchedBeforeNewDevice(api, (bob.user_id, bob2.device_id))
        device = Device(DeviceState(ks), relay)  # type: ignore[arg-type]
        result = await device.send_text(bob.user_id, "after a 409")
    finally:
        await api.close()
        ks.close()
    assert relay.hid and result.devices == 2  # the server's 409 made the client look again
    for d in (bob, bob2):
        assert [m["body"] for m in (await d.ok("--json", "listen", "--once")).lines()][-1] == (
            "after a 409"
        )
