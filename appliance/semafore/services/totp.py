"""TOTP (RFC 6238) second factor: secrets, provisioning URI and QR code, step matching,
and sealing the secret at rest.

Codes are 6 digits, SHA-1, 30-second steps (what every authenticator app supports). A code is
accepted for the current step and one step either side (clock drift), and only if its step is
newer than the last one accepted for that admin, so a code is never accepted twice.
"""

from __future__ import annotations

import base64
import hmac
import io
import secrets

import pyotp
import segno
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

DIGITS = 6
STEP_SECONDS = 30
DRIFT_STEPS = 1
SECRET_BYTES = 20  # 160 bits, as RFC 4226 recommends
_AAD = b"semafore/admin-totp/v1\x00"
_NONCE_BYTES = 12


def new_secret() -> str:
    """A fresh base32 TOTP secret (160 random bits from ``secrets``)."""
    return base64.b32encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def step_at(now: float) -> int:
    return int(now) // STEP_SECONDS


def code_at_step(secret: str, step: int) -> str:
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS).generate_otp(step)


def matching_step(secret: str, code: str, now: float, *, after_step: int) -> int | None:
    """The step (within the drift window, newer than ``after_step``) whose code is ``code``."""
    if not (isinstance(code, str) and len(code) == DIGITS and code.isascii() and code.isdigit()):
        return None
    current = step_at(now)
    found = None
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        # Compare every candidate (constant work whatever matches).
        if hmac.compare_digest(code_at_step(secret, step), code) and step > after_step \
                and found is None:
            found = step
    return found


def provisioning_uri(secret: str, *, account: str, issuer: str) -> str:
    """The ``otpauth://`` URI an authenticator app scans."""
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS).provisioning_uri(
        name=account, issuer_name=issuer
    )


def qr_svg(uri: str) -> str:
    """The URI as a QR code, SVG markup (no scripts, no external references)."""
    out = io.BytesIO()
    segno.make(uri, error="m").save(out, kind="svg", xmldecl=False, scale=4, border=2)
    return out.getvalue().decode("utf-8")


class TotpSealer:
    """Seals TOTP secrets at rest with AES-256-GCM, bound to the admin's user id."""

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    def seal(self, user_id: str, secret: str) -> bytes:
        nonce = secrets.token_bytes(_NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, secret.encode("ascii"), _aad(user_id))

    def open(self, user_id: str, sealed: bytes) -> str | None:
        """The secret, or None if the row is damaged or the key was replaced."""
        try:
            plain = self._aead.decrypt(sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:],
                                       _aad(user_id))
        except (InvalidTag, ValueError):
            return None
        return plain.decode("ascii")


def _aad(user_id: str) -> bytes:
    return _AAD + user_id.encode("utf-8")
