"""Signing and verifying access tokens (EdDSA JWTs) with the appliance's rotating key ring.

Verification is pinned: the algorithm list is ``["EdDSA"]`` only, the ``kid`` must name a key in
the ring (current, or retired within the overlap window), the audience and issuer are checked,
and every claim the caller lists is required. Time claims are checked here against the
injectable clock, so expiry is testable without sleeping. The ring is re-read when its file
changes (``semafore keys rotate-jwt`` runs in another process).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from semafore.services.clock import Clock
from semafore.services.errors import Unauthenticated
from semafore.storage.server_keys import JwtSigningKey, ServerKeyStore

ALGORITHM = "EdDSA"
TIME_CLAIMS = ("iat", "exp")


class TokenInvalid(Unauthenticated):
    code = "token_invalid"

    def __init__(self) -> None:
        super().__init__("the access token is not valid")


class TokenExpired(Unauthenticated):
    code = "token_expired"

    def __init__(self) -> None:
        super().__init__("the access token has expired; refresh it")


@dataclass(frozen=True, slots=True)
class _LoadedKey:
    kid: str
    private: Ed25519PrivateKey
    public: Ed25519PublicKey
    retired_at: int | None


class JwtKeyring:
    def __init__(self, keys: ServerKeyStore, clock: Clock, *, overlap_seconds: int) -> None:
        self._store = keys
        self._clock = clock
        self._overlap = overlap_seconds
        self._mtime = -1
        self._keys: dict[str, _LoadedKey] = {}
        self._current: _LoadedKey | None = None
        self._lock = threading.Lock()

    def _refresh(self) -> None:
        mtime = self._store.keyring_mtime_ns()
        if mtime == self._mtime:
            return
        with self._lock:
            loaded = [_load(k) for k in self._store.load_jwt_keys()]
            self._keys = {k.kid: k for k in loaded}
            active = [k for k in loaded if k.retired_at is None]
            self._current = active[-1] if active else None
            self._mtime = mtime

    @property
    def current_kid(self) -> str:
        self._refresh()
        if self._current is None:
            raise RuntimeError("no JWT signing key: the key directory was not prepared")
        return self._current.kid

    def sign(self, claims: Mapping[str, Any]) -> str:
        self._refresh()
        key = self._current
        if key is None:
            raise RuntimeError("no JWT signing key: the key directory was not prepared")
        return jwt.encode(dict(claims), key.private, algorithm=ALGORITHM, headers={"kid": key.kid})

    def verify(
        self,
        token: object,
        *,
        audience: str,
        issuer: str,
        required: Sequence[str],
        max_lifetime_seconds: int,
    ) -> dict[str, Any]:
        """The verified claims, or TokenInvalid / TokenExpired. Never says more than that."""
        if not isinstance(token, str) or len(token) > 4096:
            raise TokenInvalid()
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise TokenInvalid() from None
        kid = header.get("kid")
        if not isinstance(kid, str) or header.get("alg") != ALGORITHM:
            raise TokenInvalid()
        key = self._verification_key(kid)
        if key is None:
            raise TokenInvalid()
        try:
            claims = jwt.decode(
                token,
                key.public,
                algorithms=[ALGORITHM],
                audience=audience,
                issuer=issuer,
                options={
                    "require": list(dict.fromkeys([*required, *TIME_CLAIMS, "iss", "aud"])),
                    # Time is checked below against the service clock.
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                },
            )
        except jwt.PyJWTError:
            raise TokenInvalid() from None
        iat, exp = claims.get("iat"), claims.get("exp")
        if type(iat) is not int or type(exp) is not int:
            raise TokenInvalid()
        if not 0 < exp - iat <= max_lifetime_seconds:
            raise TokenInvalid()
        now = self._clock.now()
        if iat > now + 60:  # issued in the future (beyond clock skew)
            raise TokenInvalid()
        if exp <= now:
            raise TokenExpired()
        return claims

    def _verification_key(self, kid: str) -> _LoadedKey | None:
        key = self._keys.get(kid)
        if key is None:
            self._refresh()  # a rotation by another process
            key = self._keys.get(kid)
        if key is None:
            return None
        if key.retired_at is not None and key.retired_at + self._overlap <= self._clock.now():
            return None
        return key

    def rotate(self) -> str:
        """Start signing with a new key; the old one verifies for the overlap window."""
        fresh = self._store.rotate_jwt_key(int(self._clock.now()), self._overlap)
        self._refresh()
        return fresh.kid


def _load(key: JwtSigningKey) -> _LoadedKey:
    private = Ed25519PrivateKey.from_private_bytes(key.private_seed)
    return _LoadedKey(key.kid, private, private.public_key(), key.retired_at)
