"""Appliance secrets under ``<data_dir>/keys/``: created on first start, 0600, written atomically.

* Symmetric keys (32 random bytes each, one file per purpose): ``phone-seal.key`` (AES-256-GCM
  for phone numbers at rest), ``phone-lookup.key`` (HMAC for phone lookups), ``otp.key`` (HMAC
  of OTP codes and rate-limit subjects), ``token.key`` (HMAC of refresh tokens, enrolment
  tickets and credentials; also of admin sessions, API tokens and recovery codes, each under its
  own domain string), ``admin-totp.key`` (AES-256-GCM for admins' TOTP secrets at rest),
  ``audit-checkpoint.key`` (the Ed25519 seed that signs audit log checkpoints; its public half
  is stored in the database with the checkpoints, see docs/audit.md).
* ``jwt-signing.json``: the Ed25519 keys that sign access tokens, each with a ``kid``. The newest
  key without ``retired_at`` signs; retired keys still verify until their overlap window ends.

A file is created by writing a temporary file, fsyncing it and hard-linking it into place, so
two processes starting at once agree on one key and a crash never leaves half a key. The key
ring is replaced with rename under an exclusive lock.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from semafore.storage.errors import StorageError

SECRET_NAMES = ("phone-seal", "phone-lookup", "otp", "token", "admin-totp", "audit-checkpoint")
SECRET_BYTES = 32
JWT_KEYRING = "jwt-signing.json"


@dataclass(frozen=True, slots=True)
class JwtSigningKey:
    kid: str
    private_seed: bytes  # raw Ed25519 private key (32-byte seed)
    created_at: int
    retired_at: int | None = None


def new_kid() -> str:
    return secrets.token_hex(8)


class ServerKeyStore:
    """Reads and creates the appliance's own keys. Never logs key material."""

    def __init__(self, keys_dir: Path) -> None:
        self.keys_dir = Path(keys_dir)

    def prepare(self, now: int) -> None:
        """Create the directory and every missing key (first start)."""
        self.keys_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.keys_dir, 0o700)
        for name in SECRET_NAMES:
            self.secret(name)
        if not self.load_jwt_keys():
            with self._keyring_lock():
                if not self.load_jwt_keys():
                    seed = secrets.token_bytes(32)
                    self._write_keyring([JwtSigningKey(new_kid(), seed, now)])

    # -- symmetric secrets --------------------------------------------------------------------

    def secret(self, name: str) -> bytes:
        """The 32-byte secret ``name`` (one of SECRET_NAMES), created if missing."""
        if name not in SECRET_NAMES:
            raise StorageError(f"unknown appliance secret {name!r}")
        path = self.keys_dir / f"{name}.key"
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            self.keys_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            self._create_exclusive(path, secrets.token_bytes(SECRET_BYTES))
            data = path.read_bytes()
        except OSError as exc:
            raise StorageError(
                f"cannot read appliance key {path.name} ({exc.strerror})",
                code="storage_unavailable",
            ) from None
        if len(data) != SECRET_BYTES:
            raise StorageError(f"appliance key {path.name} is damaged (wrong length)")
        return data

    def _create_exclusive(self, path: Path, data: bytes) -> None:
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
        _write_synced(tmp, data)
        try:
            os.link(tmp, path)  # fails if another process won the race: keep theirs
        except FileExistsError:
            pass
        finally:
            tmp.unlink(missing_ok=True)
        _fsync_dir(path.parent)

    # -- JWT signing keys ----------------------------------------------------------------------

    @property
    def keyring_path(self) -> Path:
        return self.keys_dir / JWT_KEYRING

    def keyring_mtime_ns(self) -> int:
        try:
            return self.keyring_path.stat().st_mtime_ns
        except FileNotFoundError:
            return 0

    def load_jwt_keys(self) -> list[JwtSigningKey]:
        try:
            raw = self.keyring_path.read_bytes()
        except FileNotFoundError:
            return []
        try:
            doc = json.loads(raw)
            return [
                JwtSigningKey(
                    kid=str(item["kid"]),
                    private_seed=_b64d(item["private_key"]),
                    created_at=int(item["created_at"]),
                    retired_at=None if item.get("retired_at") is None else int(item["retired_at"]),
                )
                for item in doc["keys"]
            ]
        except (ValueError, KeyError, TypeError):
            raise StorageError(f"{JWT_KEYRING} is damaged") from None

    def rotate_jwt_key(self, now: int, overlap_seconds: int) -> JwtSigningKey:
        """Add a new signing key, retire the current one, drop keys past their overlap window."""
        self.keys_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        with self._keyring_lock():
            keys = [
                k if k.retired_at is not None else JwtSigningKey(
                    k.kid, k.private_seed, k.created_at, now
                )
                for k in self.load_jwt_keys()
            ]
            keys = [k for k in keys if k.retired_at is None or k.retired_at + overlap_seconds > now]
            fresh = JwtSigningKey(new_kid(), secrets.token_bytes(32), now)
            self._write_keyring([*keys, fresh])
            return fresh

    def _write_keyring(self, keys: list[JwtSigningKey]) -> None:
        doc = {
            "keys": [
                {
                    "kid": k.kid,
                    "private_key": base64.urlsafe_b64encode(k.private_seed).decode("ascii"),
                    "created_at": k.created_at,
                    "retired_at": k.retired_at,
                }
                for k in keys
            ]
        }
        tmp = self.keys_dir / f".{JWT_KEYRING}.{secrets.token_hex(8)}.tmp"
        _write_synced(tmp, json.dumps(doc, indent=1).encode("utf-8"))
        os.replace(tmp, self.keyring_path)
        _fsync_dir(self.keys_dir)

    @contextlib.contextmanager
    def _keyring_lock(self) -> Iterator[None]:
        fd = os.open(self.keys_dir / ".jwt-signing.lock", os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)


def _b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text.encode("ascii"))


def _write_synced(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
