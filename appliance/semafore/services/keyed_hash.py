"""Keyed hashes of presented secrets (codes, tokens, tickets): what the database stores instead.

Each use has its own domain string, so a hash from one table can never match in another.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets


class KeyedHash:
    def __init__(self, key: bytes, domain: str) -> None:
        self._key = key
        self._domain = domain.encode("ascii") + b"\x00"

    def __call__(self, *parts: bytes | str) -> bytes:
        mac = hmac.new(self._key, self._domain, hashlib.sha256)
        for part in parts:
            data = part.encode("utf-8") if isinstance(part, str) else part
            mac.update(len(data).to_bytes(4, "big") + data)
        return mac.digest()


def new_secret(prefix: str, nbytes: int = 32) -> str:
    """A fresh bearer secret: a readable prefix and ``nbytes`` from ``secrets``."""
    return prefix + secrets.token_urlsafe(nbytes)


def new_id(prefix: str) -> str:
    """An identifier an attacker cannot guess: 128 random bits, hex."""
    return prefix + secrets.token_hex(16)
