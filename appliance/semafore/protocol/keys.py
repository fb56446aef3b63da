"""Key types (PROTOCOL.md s3, s4.1, s4.4): raw-byte frozen dataclasses with validation.

X25519 and Ed25519 come from `cryptography`; this module adds the protocol's acceptance rules:
canonical X25519 public keys, the all-zero DH output rule, and no small-order Ed25519 keys.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature as _CryptoInvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
)

from .constants import KEY_LEN, SIGNATURE_LEN
from .errors import DecodeError, InvalidKey, InvalidSignature

GenerateDH = Callable[[], X25519PrivateKey]
GenerateSigning = Callable[[], Ed25519PrivateKey]

_P25519 = 2**255 - 19
_ZERO32 = bytes(KEY_LEN)

# Encodings of the eight small-order Ed25519 points (libsodium's list), compared with the sign
# bit cleared. Anyone can forge signatures under such a key, so it can never be an identity.
_ED25519_SMALL_ORDER = frozenset(
    bytes.fromhex(h)
    for h in (
        "0000000000000000000000000000000000000000000000000000000000000000",
        "0100000000000000000000000000000000000000000000000000000000000000",
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    )
)


def is_canonical_x25519(public: bytes) -> bool:
    """s4.4: exactly 32 bytes and u < 2^255 - 19 (so bit 255 is clear)."""
    return len(public) == KEY_LEN and int.from_bytes(public, "little") < _P25519


def x25519(private: bytes, public: bytes) -> bytes:
    """DH of s5 with the s4.4 rules: rejects non-canonical keys and the all-zero output."""
    if not is_canonical_x25519(public) or len(private) != KEY_LEN:
        raise InvalidKey("unacceptable X25519 public key")
    try:
        shared = X25519PrivateKey.from_private_bytes(private).exchange(
            X25519PublicKey.from_public_bytes(public)
        )
    except ValueError:  # cryptography refuses the all-zero output itself
        raise InvalidKey("key agreement failed") from None
    if shared == _ZERO32:  # belt and braces: the rule is ours, not only OpenSSL's
        raise InvalidKey("key agreement failed")
    return shared


def ed25519_verify(public: bytes, signature: bytes, message: bytes) -> None:
    """Verify an Ed25519 signature; raises InvalidSignature on any failure."""
    if (
        len(public) != KEY_LEN
        or len(signature) != SIGNATURE_LEN
        or public[:31] + bytes([public[31] & 0x7F]) in _ED25519_SMALL_ORDER
    ):
        raise InvalidSignature("invalid signature")
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(signature, message)
    except (_CryptoInvalidSignature, ValueError):
        raise InvalidSignature("invalid signature") from None


def _raw_private(key: X25519PrivateKey | Ed25519PrivateKey) -> bytes:
    return key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())


@dataclass(frozen=True)
class DHPublicKey:
    """An X25519 public key, validated canonical (s4.4)."""

    data: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.data, bytes) or not is_canonical_x25519(self.data):
            raise InvalidKey("unacceptable X25519 public key")

    @classmethod
    def from_bytes(cls, data: bytes) -> DHPublicKey:
        return cls(bytes(data))

    def to_bytes(self) -> bytes:
        return self.data


@dataclass(frozen=True)
class SigningPublicKey:
    """An Ed25519 public key (RFC 8032 encoding)."""

    data: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.data, bytes) or len(self.data) != KEY_LEN:
            raise InvalidKey("unacceptable Ed25519 public key")

    @classmethod
    def from_bytes(cls, data: bytes) -> SigningPublicKey:
        return cls(bytes(data))

    def to_bytes(self) -> bytes:
        return self.data

    def verify(self, signature: bytes, message: bytes) -> None:
        ed25519_verify(self.data, signature, message)


@dataclass(frozen=True)
class DHKeyPair:
    """An X25519 key pair. `private` is the raw 32-byte scalar before clamping (s3)."""

    private: bytes = field(repr=False)
    public: DHPublicKey = field(init=False)

    def __post_init__(self) -> None:
        if not isinstance(self.private, bytes) or len(self.private) != KEY_LEN:
            raise DecodeError("invalid X25519 private key")
        pub = X25519PrivateKey.from_private_bytes(self.private).public_key()
        object.__setattr__(self, "public", DHPublicKey(pub.public_bytes_raw()))

    @classmethod
    def from_private(cls, key: X25519PrivateKey) -> DHKeyPair:
        return cls(_raw_private(key))

    @classmethod
    def generate(cls, generate_dh: GenerateDH = X25519PrivateKey.generate) -> DHKeyPair:
        return cls.from_private(generate_dh())

    @classmethod
    def from_bytes(cls, data: bytes) -> DHKeyPair:
        return cls(bytes(data))

    def to_bytes(self) -> bytes:
        return self.private

    def exchange(self, peer: DHPublicKey) -> bytes:
        return x25519(self.private, peer.data)


@dataclass(frozen=True)
class IdentityKeyPair:
    """A device identity: X25519 `IK` and an independently generated Ed25519 `ISK` (s4.1)."""

    dh: DHKeyPair
    signing_seed: bytes = field(repr=False)
    isk: SigningPublicKey = field(init=False)

    def __post_init__(self) -> None:
        if not isinstance(self.signing_seed, bytes) or len(self.signing_seed) != KEY_LEN:
            raise DecodeError("invalid Ed25519 seed")
        pub = Ed25519PrivateKey.from_private_bytes(self.signing_seed).public_key()
        object.__setattr__(self, "isk", SigningPublicKey(pub.public_bytes_raw()))

    @property
    def ik(self) -> DHPublicKey:
        return self.dh.public

    @classmethod
    def generate(
        cls,
        generate_dh: GenerateDH = X25519PrivateKey.generate,
        generate_signing: GenerateSigning = Ed25519PrivateKey.generate,
    ) -> IdentityKeyPair:
        return cls(DHKeyPair.generate(generate_dh), _raw_private(generate_signing()))

    @classmethod
    def from_bytes(cls, data: bytes) -> IdentityKeyPair:
        """64 bytes: IK private (32) || ISK seed (32)."""
        if len(data) != 2 * KEY_LEN:
            raise DecodeError("invalid identity key pair encoding")
        return cls(DHKeyPair(bytes(data[:KEY_LEN])), bytes(data[KEY_LEN:]))

    def to_bytes(self) -> bytes:
        return self.dh.private + self.signing_seed

    def sign(self, message: bytes) -> bytes:
        return Ed25519PrivateKey.from_private_bytes(self.signing_seed).sign(message)
