"""The keystore at rest: encryption of every secret, passphrases, file modes, tampering, and
crash safety of the ratchet step (a child process killed by SIGKILL mid-transaction)."""

from __future__ import annotations

import json
import signal
import sqlite3
import stat
import subprocess
import sys
import types
from pathlib import Path

import pytest

from semafore.client.device import Device
from semafore.client.device_state import DeviceState
from semafore.client.errors import KeystoreError, KeystoreExists, WrongPassphrase
from semafore.client.keysource import Passphrase, RawKey, keyring_available
from semafore.client.keystore import FILENAME, Keystore, UseKeyring
from semafore.client.messaging import Messenger
from semafore.client.sealing import ScryptParams
from semafore.protocol import DeviceAddress
from semafore.protocol.encoding import b64u_encode

from .memory_relay import TEST_KEK, MemoryRelay, make_device, reopen

FAST_SCRYPT = ScryptParams.fresh(n=2**14)
WORKER = Path(__file__).with_name("crash_worker.py")


def keystore_files(home: Path) -> list[Path]:
    return [p for p in home.iterdir() if p.name.startswith(FILENAME)]


def forms(secret: bytes) -> list[bytes]:
    """The encodings a careless implementation would leave a secret in."""
    out = [secret, secret.hex().encode(), b64u_encode(secret).encode()]
    return [f for f in out if len(f) >= 8]


def secrets_of(device) -> list[bytes]:
    m = device.state.manager
    keys = m.device
    found = [keys.identity.to_bytes(), keys.identity.dh.private, keys.identity.signing_seed]
    found += [k.key_pair.private for k in keys.signed_pre_keys]
    found += [k.key_pair.private for k in keys.one_time_pre_keys]
    for record in m.session_records():
        for session in record.sessions():
            r = session.ratchet
            found += [r.rk, r.dhs.private] + [k for k in (r.cks, r.ckr) if k]
            found += [s.mk for s in r.skipped]
    return found


async def test_no_secret_in_the_files_in_clear(tmp_path: Path):
    relay = MemoryRelay()
    alice = await make_device(relay, tmp_path / "a", "alice", 1)
    bob = await make_device(relay, tmp_path / "b", "bob", 1)
    token = "eyJhbGciOiJFZERTQSJ9.access-token-marker.signature"
    with bob.state.ks.transaction():
        bob.state.ks.put_credential("access_token", token)
    bob.relay.hold = True
    for i in range(3):
        await alice.send_text("bob", f"plaintext-marker-{i}")
    queue = relay.devices[bob.address].queue
    queue[:] = [queue[2], queue[0]]  # out of order, and one lost: bob keeps a skipped key
    bob.relay.hold = False
    await bob.drain()
    assert bob.state.manager.session_record(alice.address).active.ratchet.skipped
    await bob.send_text("alice", "reply-marker")
    await alice.drain()
    with alice.state.step() as m:
        m.set_verified("bob")
    secrets = secrets_of(alice) + secrets_of(bob)
    plaintexts = [b"plaintext-marker-0", b"plaintext-marker-2", b"reply-marker"]
    plaintexts += [token.encode(), b"access-token-marker"]
    for device in (alice, bob):
        home = device.state.ks.path.parent
        blob = b"".join(p.read_bytes() for p in keystore_files(home))
        assert len(blob) > 10_000
        for secret in secrets:
            for form in forms(secret):
                assert form not in blob
        for text in plaintexts:
            assert text not in blob


def test_passphrase_required_and_checked(tmp_path: Path):
    home = tmp_path / "dev"
    passphrase = Passphrase("correct horse")
    ks = Keystore.create(home, passphrase, server_url="https://x", scrypt=FAST_SCRYPT)
    ks.close()
    with pytest.raises(WrongPassphrase):
        Keystore.open(home, Passphrase("wrong horse"))
    with pytest.raises(KeystoreError):
        Keystore.open(home, RawKey(b"k" * 32))  # a passphrase keystore needs its passphrase
    Keystore.open(home, Passphrase("correct horse")).close()
    meta = dict(sqlite3.connect(home / FILENAME).execute("SELECT name, value FROM meta"))
    params = json.loads(meta["kdf"])
    assert params["n"] == 2**14 and params["r"] == 8 and len(bytes.fromhex(params["salt"])) == 16
    with pytest.raises(KeystoreExists):
        Keystore.create(home, Passphrase("x"), server_url="https://x", scrypt=FAST_SCRYPT)


def test_default_scrypt_parameters_are_strong():
    params = ScryptParams.fresh()
    assert (params.n, params.r, params.p) == (2**17, 8, 1)


async def test_file_and_directory_modes(tmp_path: Path):
    relay = MemoryRelay()
    device = await make_device(relay, tmp_path / "dev", "alice", 1)
    home = device.state.ks.path.parent
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    files = keystore_files(home)
    assert {p.name for p in files} >= {FILENAME, FILENAME + "-wal"}
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


async def test_sealed_value_moved_to_another_row_does_not_open(tmp_path: Path):
    relay = MemoryRelay()
    device = await make_device(relay, tmp_path / "dev", "alice", 1)
    ks = device.state.ks
    with ks.transaction():
        ks.put_credential("access_token", "a")
        ks.put_credential("refresh_token", "b")
        ks.conn.execute(
            "UPDATE credentials SET sealed = (SELECT sealed FROM credentials"
            " WHERE name = 'access_token') WHERE name = 'refresh_token'"
        )
    with pytest.raises(KeystoreError, match="damaged or was moved"):
        ks.credential("refresh_token")


# -- crash safety -------------------------------------------------------------------------


def run_worker(*args: str) -> None:
    proc = subprocess.run([sys.executable, str(WORKER), *args], capture_output=True, timeout=60)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()


def ratchet_counters(device, peer: DeviceAddress) -> tuple[int, int]:
    r = device.state.manager.session_record(peer).active.ratchet
    return r.ns, r.nr


async def test_crash_before_commit_loses_nothing_on_receive(tmp_path: Path):
    relay = MemoryRelay()
    alice = await make_device(relay, tmp_path / "a", "alice", 1)
    bob = await make_device(relay, tmp_path / "b", "bob", 1)
    await alice.send_text("bob", "first")
    await bob.drain()
    await alice.send_text("bob", "survives the crash")
    ((server_id, envelope),) = relay.devices[bob.address].queue
    delivery_file = tmp_path / "delivery.json"
    delivery_file.write_text(json.dumps({"server_id": server_id, "envelope": envelope}))
    before = ratchet_counters(bob, alice.address)
    bob.state.ks.close()

    run_worker("receive-before-commit", str(tmp_path / "b"), str(delivery_file))

    bob = Messenger(DeviceState(Keystore.open(tmp_path / "b", TEST_KEK)))
    assert [m.content.body for m in bob.messages.history()] == ["first"]
    r = bob.state.manager.session_record(alice.address).active.ratchet
    assert (r.ns, r.nr) == before  # the ratchet step was rolled back with the message
    got = bob.receive(envelope, server_id)  # redelivered after the crash: still decrypts
    assert got is not None and got.content.body == "survives the crash"
    assert bob.receive(envelope, server_id) is None  # and only once
    assert [m.content.body for m in bob.messages.history()] == ["first", "survives the crash"]


async def test_crash_never_reuses_a_message_key_on_send(tmp_path: Path):
    relay = MemoryRelay()
    alice = await make_device(relay, tmp_path / "a", "alice", 1)
    bob = await make_device(relay, tmp_path / "b", "bob", 1)
    await alice.send_text("bob", "first")
    await bob.drain()
    await bob.send_text("alice", "ack")
    await alice.drain()
    before = ratchet_counters(alice, bob.address)
    alice.state.ks.close()
    home = str(tmp_path / "a")

    # 1. Killed inside the transaction: nothing was stored, nothing can have been sent.
    run_worker("send-before-commit", home, "bob", "1")
    alice = reopen(alice, relay)
    assert alice.messenger.messages.unsent() == []
    assert ratchet_counters(alice, bob.address) == before
    alice.state.ks.close()

    # 2. Killed after COMMIT, before the network: the stored request is resent byte for byte.
    run_worker("send-after-commit", home, "bob", "1")
    alice = reopen(alice, relay)
    (entry,) = alice.messenger.messages.unsent()
    stored = entry.request.to_dict()
    assert ratchet_counters(alice, bob.address)[0] == before[0] + 1
    assert await alice.resend_unsent() == 1
    assert relay.requests[-1] == stored
    assert alice.messenger.messages.unsent() == []

    # 3. The next message uses the next message key; every header alice sent bob is distinct.
    await alice.send_text("bob", "after the crashes")
    headers = [
        e["header"]
        for req in relay.requests
        for e in req["envelopes"]
        if e["from"]["user_id"] == "alice" and e["to"] == {"user_id": "bob", "device_id": 1}
    ]
    assert len(headers) == len(set(headers)) == 3
    got = await bob.drain()
    assert [m.content.body for m in got] == ["crash test send-after-commit", "after the crashes"]


async def test_two_processes_on_one_device_never_reuse_a_message_key(tmp_path: Path):
    """`listen` runs while `send` runs in another process on the same device directory."""
    relay = MemoryRelay()
    alice = await make_device(relay, tmp_path / "a", "alice", 1)
    bob = await make_device(relay, tmp_path / "b", "bob", 1)
    await alice.send_text("bob", "hello")
    await bob.drain()
    await bob.send_text("alice", "hi")

    # A second "process" opens alice's keystore while the first keeps its state in memory.
    other = Device(DeviceState(Keystore.open(tmp_path / "a", TEST_KEK)), relay.view(alice.address))
    await other.send_text("bob", "from the other process")
    await alice.drain()  # the first process commits a receive step after the other's send
    await alice.send_text("bob", "from the first process")
    await other.send_text("bob", "other again")

    headers = [
        e["header"]
        for req in relay.requests
        for e in req["envelopes"]
        if e["from"]["user_id"] == "alice"
    ]
    assert len(headers) == len(set(headers)) == 4
    got = await bob.drain()
    assert [m.content.body for m in got] == [
        "from the other process",
        "from the first process",
        "other again",
    ]


class _FakeKeyring(types.ModuleType):
    """Stands in for the optional `keyring` package (not installed here): a dict."""

    def __init__(self) -> None:
        super().__init__("keyring")
        self.store: dict[tuple[str, str], str] = {}
        self.errors = types.SimpleNamespace(KeyringError=RuntimeError)

    def get_keyring(self) -> object:
        return self

    def get_password(self, service: str, user: str) -> str | None:
        return self.store.get((service, user))

    def set_password(self, service: str, user: str, value: str) -> None:
        self.store[(service, user)] = value


def test_keyring_holds_the_key_when_available(tmp_path: Path, monkeypatch):  # type: ignore[no-untyped-def]
    fake = _FakeKeyring()
    monkeypatch.setitem(sys.modules, "keyring", fake)
    monkeypatch.setitem(sys.modules, "keyring.errors", fake.errors)
    assert keyring_available()
    home = tmp_path / "dev"
    Keystore.create(home, UseKeyring(), server_url="https://x").close()
    ((service, user), _value) = next(iter(fake.store.items()))
    assert service == "semafore-client" and user == str((home / FILENAME).resolve())
    # Opened without any passphrase: the key comes from the keyring.
    Keystore.open(home, lambda: pytest.fail("asked for a passphrase")).close()
    fake.store.clear()
    with pytest.raises(WrongPassphrase):
        Keystore.open(home, Passphrase("x"))


def test_without_keyring_the_passphrase_is_used(monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setitem(sys.modules, "keyring", None)  # import keyring -> ImportError
    assert not keyring_available()
