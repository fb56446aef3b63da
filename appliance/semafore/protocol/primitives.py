"""Thin wrappers over `cryptography` for the symmetric primitives: HKDF, HMAC, AES-256-GCM.

No primitive is implemented here; this module only fixes parameters and maps library
exceptions to protocol errors.
"""

from __future__ import annotations

import hashlib
import hmac as _hmac

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .errors import DecryptionFailed

AES_KEY_LEN = 32
GCM_NONCE_LEN = 12


def hkdf_sha256(*, salt: bytes, ikm: bytes, info: bytes, length: int) -> bytes:
    """HKDF-SHA256 (RFC 5869). An empty salt equals 32 zero bytes (RFC 5869 s2.2).

    Raises ValueError for a length above 255 * 32, as the RFC requires.
    """
    return HKDF(hashes.SHA256(), length, salt, info).derive(ikm)


def hmac_sha256(key: bytes, data: bytes) -> bytes:
    return _hmac.new(key, data, hashlib.sha256).digest()


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _check_params(key: bytes, nonce: bytes) -> None:
    # Only AES-256 with 96-bit nonces is used anywhere in the protocol; anything else is a bug.
    if len(key) != AES_KEY_LEN or len(nonce) != GCM_NONCE_LEN:
        raise ValueError("AES-256-GCM needs a 32-byte key and a 12-byte nonce")


def aes_gcm_encrypt(key: bytes, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """AES-256-GCM; returns ciphertext || 16-byte tag."""
    _check_params(key, nonce)
    return AESGCM(key).encrypt(nonce, plaintext, aad)


def aes_gcm_decrypt(key: bytes, nonce: bytes, ciphertext: bytes, aad: bytes) -> bytes:
    """AES-256-GCM decryption; any failure is DecryptionFailed without detail."""
    _check_params(key, nonce)
    try:
        return AESGCM(key).decrypt(nonce, ciphertext, aad)
    except (InvalidTag, ValueError):
        raise DecryptionFailed("decryption failed") from None
