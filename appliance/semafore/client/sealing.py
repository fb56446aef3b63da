"""Encryption at rest for the keystore: AES-256-GCM under a data key wrapped by a key-encryption
key (KEK) that comes from a passphrase (scrypt) or from the OS keyring.

Layout: a random 32-byte *data key* seals every secret-bearing value; it is stored wrapped under
the KEK, so changing the passphrase rewraps one value. Every sealed value is bound (AEAD
associated data) to where it lives (table, column, row key), so a sealed value moved to another
row or column does not open.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from semafore.client.errors import KeystoreError, WrongPassphrase

KEY_LEN = 32
NONCE_LEN = 12
SEAL_VERSION = b"\x01"
_AAD_PREFIX = b"semafore-client keystore v1\x00"
_WRAP_AAD = _AAD_PREFIX + b"data key"


@dataclass(frozen=True)
class ScryptParams:
    """Recorded in the keystore so a file stays readable when the defaults change.

    Defaults follow OWASP's scrypt guidance (N=2^17, r=8, p=1: 128 MiB, ~0.5 s).
    """

    n: int = 2**17
    r: int = 8
    p: int = 1
    salt: bytes = b""

    def __post_init__(self) -> None:
        power_of_two = self.n & (self.n - 1) == 0
        if self.n < 2**14 or not power_of_two or not 1 <= self.r <= 32 or not 1 <= self.p <= 16:
            raise KeystoreError("unacceptable scrypt parameters")
        if len(self.salt) not in (0, 16, 32):
            raise KeystoreError("unacceptable scrypt salt")

    @classmethod
    def fresh(cls, n: int = 2**17, r: int = 8, p: int = 1) -> ScryptParams:
        return cls(n=n, r=r, p=p, salt=secrets.token_bytes(16))

    def to_json(self) -> str:
        d = asdict(self)
        d["salt"] = self.salt.hex()
        return json.dumps(d, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ScryptParams:
        try:
            d = json.loads(text)
            return cls(n=int(d["n"]), r=int(d["r"]), p=int(d["p"]), salt=bytes.fromhex(d["salt"]))
        except (ValueError, KeyError, TypeError):
            raise KeystoreError("keystore has unreadable key-derivation parameters") from None

    def derive(self, passphrase: str) -> bytes:
        if not passphrase:
            raise WrongPassphrase("an empty passphrase is not accepted")
        kdf = Scrypt(salt=self.salt, length=KEY_LEN, n=self.n, r=self.r, p=self.p)
        return kdf.derive(passphrase.encode("utf-8"))


def _aad(*where: str | int | bytes) -> bytes:
    parts = []
    for part in where:
        raw = part if isinstance(part, bytes) else str(part).encode("utf-8")
        parts.append(len(raw).to_bytes(4, "big") + raw)
    return _AAD_PREFIX + b"".join(parts)


def wrap_data_key(kek: bytes, data_key: bytes) -> bytes:
    nonce = secrets.token_bytes(NONCE_LEN)
    return SEAL_VERSION + nonce + AESGCM(kek).encrypt(nonce, data_key, _WRAP_AAD)


def unwrap_data_key(kek: bytes, wrapped: bytes) -> bytes:
    if len(wrapped) != 1 + NONCE_LEN + KEY_LEN + 16 or wrapped[:1] != SEAL_VERSION:
        raise KeystoreError("keystore key record is damaged")
    try:
        return AESGCM(kek).decrypt(wrapped[1:13], wrapped[13:], _WRAP_AAD)
    except InvalidTag:
        raise WrongPassphrase("wrong passphrase for this keystore") from None


class Sealer:
    """Seals and opens values under the keystore's data key, bound to their location."""

    def __init__(self, data_key: bytes) -> None:
        if len(data_key) != KEY_LEN:
            raise KeystoreError("invalid data key")
        self._aead = AESGCM(data_key)

    def seal(self, plaintext: bytes, *where: str | int | bytes) -> bytes:
        nonce = secrets.token_bytes(NONCE_LEN)
        return SEAL_VERSION + nonce + self._aead.encrypt(nonce, plaintext, _aad(*where))

    def open(self, sealed: bytes, *where: str | int | bytes) -> bytes:
        if len(sealed) < 1 + NONCE_LEN + 16 or sealed[:1] != SEAL_VERSION:
            raise KeystoreError("keystore value is damaged")
        try:
            return self._aead.decrypt(sealed[1:13], sealed[13:], _aad(*where))
        except InvalidTag:
            raise KeystoreError("keystore value is damaged or was moved") from None


def new_data_key() -> bytes:
    return secrets.token_bytes(KEY_LEN)
