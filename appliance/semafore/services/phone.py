"""Phone numbers: strict E.164 parsing, and the appliance's at-rest protection of them.

A number is personal data. It is stored sealed (AES-256-GCM under ``phone-seal.key``) and
looked up by HMAC-SHA256 under ``phone-lookup.key``, so nothing on disk holds it in clear.
Neither is ever logged or put in an error message.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from semafore.services.errors import InvalidInput

# "+", a country code that does not start with 0, 7 to 15 digits in all (ITU-T E.164).
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
_SEAL_AAD = b"semafore/phone/v1"
_NONCE_BYTES = 12


def parse_phone(value: object) -> str:
    """The number in canonical E.164 form, or InvalidInput(phone_invalid). No reformatting."""
    if not isinstance(value, str) or not _E164.fullmatch(value):
        raise InvalidInput(
            "phone number must be in E.164 form, e.g. +447700900123", code="phone_invalid"
        )
    return value


def is_phone(value: object) -> bool:
    return isinstance(value, str) and _E164.fullmatch(value) is not None


class PhoneVault:
    """Seals, opens and derives lookup keys for phone numbers."""

    def __init__(self, seal_key: bytes, lookup_key: bytes) -> None:
        self._aead = AESGCM(seal_key)
        self._lookup_key = lookup_key

    def lookup_hash(self, phone: str) -> bytes:
        return hmac.new(self._lookup_key, phone.encode("ascii"), hashlib.sha256).digest()

    def seal(self, phone: str) -> bytes:
        nonce = secrets.token_bytes(_NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, phone.encode("ascii"), _SEAL_AAD)

    def open(self, sealed: bytes) -> str:
        try:
            plain = self._aead.decrypt(sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:], _SEAL_AAD)
        except (InvalidTag, ValueError):
            # A damaged row or a replaced key file; never echo the ciphertext.
            return "(unreadable)"
        return plain.decode("ascii")
