"""The device keystore: one SQLite file per device, every secret sealed (semafore.client.sealing).

Crash safety rests on one rule: a ratchet step and what it produced (the decrypted message, or
the outgoing ciphertexts) are written in ONE transaction (`with keystore.transaction():`), and
nothing leaves the device before that COMMIT. The file is opened with `synchronous=FULL`, so a
COMMIT that returned survives a crash or power loss.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from semafore.client.errors import KeystoreError, KeystoreExists, KeystoreMissing
from semafore.client.keysource import (
    KeySource,
    Passphrase,
    RawKey,
    keyring_create,
    keyring_load,
)
from semafore.client.keystore_schema import FORMAT_VERSION, MIGRATIONS, SCHEMA
from semafore.client.sealing import (
    ScryptParams,
    Sealer,
    new_data_key,
    unwrap_data_key,
    wrap_data_key,
)
from semafore.protocol.prekeys import DeviceKeys

FILENAME = "keystore.db"
Clock = Callable[[], float]


class UseKeyring:
    """Create the keystore with a random KEK kept in the OS keyring."""


@dataclass(frozen=True)
class DeviceRecord:
    server_url: str
    user_id: str | None
    device_id: int | None
    status: str


def _secure_home(home: Path) -> None:
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    if stat.S_IMODE(home.stat().st_mode) & 0o077:
        os.chmod(home, 0o700)


def _precreate_private_file(path: Path) -> None:
    # SQLite gives its -wal and -shm files the database file's mode, so 0600 here covers them.
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    os.close(fd)


class Keystore:
    """An open keystore. Reads may happen anywhere; writes only inside `transaction()`."""

    def __init__(self, path: Path, conn: sqlite3.Connection, sealer: Sealer, clock: Clock) -> None:
        self.path = path
        self.conn = conn
        self.sealer = sealer
        self.clock = clock
        self._in_tx = False

    # -- lifetime ---------------------------------------------------------------------------

    @staticmethod
    def exists(home: Path) -> bool:
        return (home / FILENAME).exists()

    @staticmethod
    def remove(home: Path) -> None:
        for suffix in ("", "-wal", "-shm"):
            Path(str(Path(home) / FILENAME) + suffix).unlink(missing_ok=True)

    @classmethod
    def create(
        cls,
        home: Path,
        key_source: KeySource | UseKeyring,
        *,
        server_url: str,
        scrypt: ScryptParams | None = None,
        clock: Clock = time.time,
    ) -> Keystore:
        home = Path(home)
        _secure_home(home)
        path = home / FILENAME
        if path.exists():
            raise KeystoreExists(f"a keystore already exists in {home}")
        if isinstance(key_source, UseKeyring):
            kek, kind, kdf = keyring_create(path).value, "keyring", ""
        elif isinstance(key_source, Passphrase):
            params = scrypt or ScryptParams.fresh()
            kek, kind, kdf = params.derive(key_source.value), "passphrase", params.to_json()
        else:
            kek, kind, kdf = key_source.value, "raw", ""
        data_key = new_data_key()
        _precreate_private_file(path)
        try:
            conn = _connect(path)
            conn.executescript(SCHEMA)
            store = cls(path, conn, Sealer(data_key), clock)
            with store.transaction():
                meta = {
                    "format": str(FORMAT_VERSION),
                    "key_source": kind,
                    "kdf": kdf,
                    "wrapped_data_key": wrap_data_key(kek, data_key).hex(),
                }
                conn.executemany("INSERT INTO meta VALUES (?, ?)", meta.items())
                conn.execute(
                    "INSERT INTO device VALUES (1, ?, NULL, NULL, 'new', NULL, ?)",
                    (server_url, int(clock())),
                )
        except BaseException:
            for suffix in ("", "-wal", "-shm"):
                Path(str(path) + suffix).unlink(missing_ok=True)
            raise
        return store

    @classmethod
    def open(
        cls,
        home: Path,
        key_source: KeySource | Callable[[], KeySource],
        *,
        clock: Clock = time.time,
    ) -> Keystore:
        """Open an existing keystore. `key_source` may be a callable, asked only if needed."""
        path = Path(home) / FILENAME
        if not path.exists():
            raise KeystoreMissing(f"no keystore in {home}; run `semafore-client enrol` first")
        _secure_home(Path(home))
        if stat.S_IMODE(path.stat().st_mode) & 0o077:
            os.chmod(path, 0o600)
        conn = _connect(path)
        try:
            meta = dict(conn.execute("SELECT name, value FROM meta").fetchall())
            _migrate(conn, int(meta.get("format", "0")))
            kind = meta["key_source"]
            if kind == "keyring":
                kek = keyring_load(path).value
            else:
                source = key_source() if callable(key_source) else key_source
                if kind == "passphrase" and isinstance(source, Passphrase):
                    kek = ScryptParams.from_json(meta["kdf"]).derive(source.value)
                elif kind == "raw" and isinstance(source, RawKey):
                    kek = source.value
                else:
                    raise KeystoreError(f"this keystore is unlocked with its {kind}")
            data_key = unwrap_data_key(kek, bytes.fromhex(meta["wrapped_data_key"]))
        except (sqlite3.DatabaseError, KeyError, ValueError) as exc:
            conn.close()
            if isinstance(exc, KeystoreError):
                raise
            raise KeystoreError("keystore file is damaged or not a keystore") from None
        except BaseException:
            conn.close()
            raise
        return cls(path, conn, Sealer(data_key), clock)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Keystore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """BEGIN IMMEDIATE ... COMMIT; an exception (or a crash) rolls everything back."""
        if self._in_tx:
            yield
            return
        self.conn.execute("BEGIN IMMEDIATE")
        self._in_tx = True
        try:
            yield
        except BaseException:
            self._in_tx = False
            self.conn.execute("ROLLBACK")
            raise
        self._in_tx = False
        self.conn.execute("COMMIT")

    @property
    def in_transaction(self) -> bool:
        return self._in_tx

    def require_tx(self) -> None:
        if not self._in_tx:
            raise KeystoreError("keystore write outside a transaction")  # a bug, never user error

    def now(self) -> int:
        return int(self.clock())

    # -- this device ------------------------------------------------------------------------

    def device(self) -> DeviceRecord:
        row = self.conn.execute(
            "SELECT server_url, user_id, device_id, status FROM device WHERE id = 1"
        ).fetchone()
        return DeviceRecord(*row)

    def device_keys(self) -> DeviceKeys:
        (sealed,) = self.conn.execute("SELECT keys_sealed FROM device WHERE id = 1").fetchone()
        if sealed is None:
            raise KeystoreError("this device has no keys yet; finish `semafore-client enrol`")
        return DeviceKeys.from_bytes(self.sealer.open(sealed, "device", "keys"))

    def put_device_keys(self, keys: DeviceKeys) -> None:
        """Store the device's keys; the address they were made for becomes this device's."""
        self.require_tx()
        self.conn.execute(
            "UPDATE device SET keys_sealed = ?, user_id = ?, device_id = ? WHERE id = 1",
            (
                self.sealer.seal(keys.to_bytes(), "device", "keys"),
                keys.address.user_id,
                keys.address.device_id,
            ),
        )

    def set_status(self, status: str) -> None:
        self.require_tx()
        self.conn.execute("UPDATE device SET status = ? WHERE id = 1", (status,))

    def set_server_url(self, url: str) -> None:
        self.require_tx()
        self.conn.execute("UPDATE device SET server_url = ? WHERE id = 1", (url,))

    # -- tokens and other credentials -------------------------------------------------------

    def put_credential(self, name: str, value: str) -> None:
        self.require_tx()
        sealed = self.sealer.seal(value.encode("utf-8"), "credentials", name)
        self.conn.execute("INSERT OR REPLACE INTO credentials VALUES (?, ?)", (name, sealed))

    def credential(self, name: str) -> str | None:
        row = self.conn.execute("SELECT sealed FROM credentials WHERE name = ?", (name,)).fetchone()
        return self.sealer.open(row[0], "credentials", name).decode("utf-8") if row else None

    def delete_credential(self, name: str) -> None:
        self.require_tx()
        self.conn.execute("DELETE FROM credentials WHERE name = ?", (name,))

    # -- counters ---------------------------------------------------------------------------

    def counter(self, name: str, default: int = 0) -> int:
        row = self.conn.execute("SELECT value FROM counters WHERE name = ?", (name,)).fetchone()
        return int(row[0]) if row else default

    def set_counter(self, name: str, value: int) -> None:
        self.require_tx()
        self.conn.execute("INSERT OR REPLACE INTO counters VALUES (?, ?)", (name, value))


def _migrate(conn: sqlite3.Connection, version: int) -> None:
    """Bring an older keystore up to FORMAT_VERSION, one step per transaction."""
    if version > FORMAT_VERSION:
        raise KeystoreError("this keystore was written by a newer semafore-client")
    if version < 1:
        raise KeystoreError("keystore file is damaged or not a keystore")
    for step in range(version + 1, FORMAT_VERSION + 1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in MIGRATIONS[step].split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute("UPDATE meta SET value = ? WHERE name = 'format'", (str(step),))
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, timeout=10.0)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA secure_delete = ON")
    conn.execute("PRAGMA foreign_keys = ON")
    return conn
