"""Safety numbers (s8.1, s8.2): per-user fingerprints over all devices, and the QR form."""

from __future__ import annotations

import hashlib
import hmac
import struct
from collections.abc import Iterable
from dataclasses import dataclass

from .constants import FP_ITERATIONS, FP_SCANNABLE_PREFIX, FP_VERSION
from .encoding import user_id_bytes
from .errors import DecodeError
from .keys import DHPublicKey, SigningPublicKey

FINGERPRINT_LEN = 30
DeviceIdentity = tuple[SigningPublicKey, DHPublicKey]  # (ISK, IK) of one device


def user_fingerprint(user_id: str, devices: Iterable[DeviceIdentity]) -> bytes:
    """30-byte fingerprint over the sorted ISK || IK entries of every active device."""
    entries = sorted(isk.data + ik.data for isk, ik in devices)
    if not 1 <= len(entries) <= 0xFFFF:
        raise DecodeError("a fingerprint needs 1 to 65535 devices")
    km = b"".join(entries)
    h = struct.pack(">HH", FP_VERSION, len(entries)) + km + user_id_bytes(user_id)
    for _ in range(FP_ITERATIONS):
        h = hashlib.sha512(h + km).digest()
    return h[:FINGERPRINT_LEN]


def fingerprint_digits(fingerprint: bytes) -> str:
    """30 decimal digits: each 5-byte block as int mod 100000, zero-padded to 5 digits."""
    if len(fingerprint) != FINGERPRINT_LEN:
        raise DecodeError("invalid fingerprint length")
    blocks = (fingerprint[i : i + 5] for i in range(0, FINGERPRINT_LEN, 5))
    return "".join(f"{int.from_bytes(b, 'big') % 100000:05d}" for b in blocks)


@dataclass(frozen=True)
class SafetyNumber:
    """The 60-digit number both users see, and the scannable payload (identical on both sides)."""

    digits: str
    scannable: bytes

    def display(self) -> str:
        """12 groups of 5 digits."""
        return " ".join(self.digits[i : i + 5] for i in range(0, len(self.digits), 5))

    def matches_scanned(self, payload: bytes) -> bool:
        return hmac.compare_digest(self.scannable, payload)


def safety_number(
    user_a: str,
    devices_a: Iterable[DeviceIdentity],
    user_b: str,
    devices_b: Iterable[DeviceIdentity],
) -> SafetyNumber:
    """Both fingerprints, ordered by their digit strings (s8.2), so both users agree."""
    fp_a, fp_b = user_fingerprint(user_a, devices_a), user_fingerprint(user_b, devices_b)
    (low_digits, low), (high_digits, high) = sorted(
        [(fingerprint_digits(fp_a), fp_a), (fingerprint_digits(fp_b), fp_b)]
    )
    return SafetyNumber(low_digits + high_digits, FP_SCANNABLE_PREFIX + low + high)
