"""Double Ratchet (PROTOCOL.md s6): Signal's section 3 without header encryption.

`RatchetState` is an immutable value. `encrypt` and `decrypt` return a *new* state and never
touch the old one, so a failed decryption cannot change anything (s6.6 is transactional by
construction). The caller persists the new state before using the result (s13: no rollback).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field, replace
from typing import NamedTuple

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from .constants import (
    CK_MSG,
    CK_NEXT,
    HEADER_LEN,
    KEY_LEN,
    MAX_SKIP,
    MAX_STORED_SKIPPED,
    MK_INFO,
    RK_INFO,
    U32_MAX,
)
from .encoding import read_u32, u32
from .errors import (
    DecodeError,
    DecryptionFailed,
    DuplicateMessage,
    NoSession,
    SessionExhausted,
    TooManySkipped,
)
from .keys import DHKeyPair, DHPublicKey, GenerateDH
from .primitives import aes_gcm_decrypt, aes_gcm_encrypt, hkdf_sha256, hmac_sha256

_ZERO_SALT = bytes(32)


# --- external functions (s6.2 - s6.4) --------------------------------------------------------


def kdf_rk(rk: bytes, dh_out: bytes) -> tuple[bytes, bytes]:
    """KDF_RK: returns (new root key, chain key)."""
    okm = hkdf_sha256(salt=rk, ikm=dh_out, info=RK_INFO, length=64)
    return okm[:32], okm[32:]


def kdf_ck(ck: bytes) -> tuple[bytes, bytes]:
    """KDF_CK: returns (next chain key, message key)."""
    return hmac_sha256(ck, CK_NEXT), hmac_sha256(ck, CK_MSG)


def message_key_material(mk: bytes) -> tuple[bytes, bytes]:
    """s6.4: AES-256 key and 96-bit nonce, both derived from the one-use message key."""
    okm = hkdf_sha256(salt=_ZERO_SALT, ikm=mk, info=MK_INFO, length=44)
    return okm[:32], okm[32:]


def encrypt_message(mk: bytes, plaintext: bytes, aad: bytes) -> bytes:
    key, nonce = message_key_material(mk)
    return aes_gcm_encrypt(key, nonce, plaintext, aad)


def decrypt_message(mk: bytes, ciphertext: bytes, aad: bytes) -> bytes:
    key, nonce = message_key_material(mk)
    return aes_gcm_decrypt(key, nonce, ciphertext, aad)


# --- header (s6.5) -------------------------------------------------------------------------


@dataclass(frozen=True)
class Header:
    """HEADER = DHs.public (32) || u32(PN) || u32(N)."""

    dh: DHPublicKey
    pn: int
    n: int

    def __post_init__(self) -> None:
        u32(self.pn)  # range checks
        u32(self.n)

    def to_bytes(self) -> bytes:
        return self.dh.data + u32(self.pn) + u32(self.n)

    @classmethod
    def from_bytes(cls, data: bytes) -> Header:
        if len(data) != HEADER_LEN:
            raise DecodeError("invalid header length")
        return cls(DHPublicKey(bytes(data[:32])), read_u32(data, 32), read_u32(data, 36))


class SkippedKey(NamedTuple):
    dh: DHPublicKey
    n: int
    mk: bytes


# --- state ---------------------------------------------------------------------------------

_STATE_VERSION = 1
_HAS_DHR, _HAS_CKS, _HAS_CKR = 1, 2, 4
_FIXED = struct.Struct(">BB32s32sIIII")  # version, flags, DHs priv, RK, Ns, Nr, PN, count
_SKIPPED = struct.Struct(">32sI32s")


@dataclass(frozen=True)
class RatchetState:
    """DHs, DHr, RK, CKs, CKr, Ns, Nr, PN and MKSKIPPED (insertion-ordered) of Signal s3.2."""

    dhs: DHKeyPair
    dhr: DHPublicKey | None
    rk: bytes = field(repr=False)
    cks: bytes | None = field(repr=False)
    ckr: bytes | None = field(repr=False)
    ns: int = 0
    nr: int = 0
    pn: int = 0
    skipped: tuple[SkippedKey, ...] = field(default=(), repr=False)

    @classmethod
    def initiator(
        cls,
        session_secret: bytes,
        remote_spk: DHPublicKey,
        generate_dh: GenerateDH = X25519PrivateKey.generate,
    ) -> RatchetState:
        """RatchetInitAlice."""
        dhs = DHKeyPair.generate(generate_dh)
        rk, cks = kdf_rk(session_secret, dhs.exchange(remote_spk))
        return cls(dhs=dhs, dhr=remote_spk, rk=rk, cks=cks, ckr=None)

    @classmethod
    def responder(cls, session_secret: bytes, spk: DHKeyPair) -> RatchetState:
        """RatchetInitBob: cannot send until the first message has been decrypted."""
        return cls(dhs=spk, dhr=None, rk=session_secret, cks=None, ckr=None)

    @property
    def can_send(self) -> bool:
        return self.cks is not None

    def encrypt(self, plaintext: bytes, ad: bytes) -> tuple[RatchetState, Header, bytes]:
        """RatchetEncrypt: returns (new state, header, ciphertext || tag)."""
        if self.cks is None:
            raise NoSession("sending chain not established")
        if self.ns >= U32_MAX:
            raise SessionExhausted("message counter exhausted")
        cks, mk = kdf_ck(self.cks)
        header = Header(self.dhs.public, self.pn, self.ns)
        ciphertext = encrypt_message(mk, plaintext, ad + header.to_bytes())
        return replace(self, cks=cks, ns=self.ns + 1), header, ciphertext

    def decrypt(
        self,
        header: Header,
        ciphertext: bytes,
        ad: bytes,
        generate_dh: GenerateDH = X25519PrivateKey.generate,
    ) -> tuple[RatchetState, bytes]:
        """RatchetDecrypt exactly as s6.6. Returns (new state, plaintext); `self` is untouched."""
        aad = ad + header.to_bytes()
        dh, pn, n = header.dh, header.pn, header.n
        for i, entry in enumerate(self.skipped):
            if entry.n == n and entry.dh == dh:
                plaintext = decrypt_message(entry.mk, ciphertext, aad)
                return replace(self, skipped=self.skipped[:i] + self.skipped[i + 1 :]), plaintext

        dhs, dhr, rk, cks, ckr = self.dhs, self.dhr, self.rk, self.cks, self.ckr
        ns, nr, state_pn = self.ns, self.nr, self.pn
        new: list[SkippedKey] = []
        if dh != dhr:  # DH-ratchet step
            if ckr is not None and dhr is not None and pn - nr <= MAX_SKIP:
                while nr < pn:
                    ckr, mk = kdf_ck(ckr)
                    new.append(SkippedKey(dhr, nr, mk))
                    nr += 1
            # If pn - Nr > MAX_SKIP the rest of the old chain is abandoned (s6.6 deviation).
            state_pn, ns, nr, dhr = ns, 0, 0, dh
            rk, ckr = kdf_rk(rk, dhs.exchange(dhr))
            dhs = DHKeyPair.generate(generate_dh)
            rk, cks = kdf_rk(rk, dhs.exchange(dhr))
        if ckr is None:  # only a forged header naming Alice's initial DHr gets here
            raise DecryptionFailed("decryption failed")
        if n - nr > MAX_SKIP:
            raise TooManySkipped("too many skipped messages")
        if n >= U32_MAX:
            raise DecryptionFailed("decryption failed")
        while nr < n:
            ckr, mk = kdf_ck(ckr)
            new.append(SkippedKey(dh, nr, mk))
            nr += 1
        if n < nr:
            raise DuplicateMessage("duplicate message")
        ckr, mk = kdf_ck(ckr)
        nr += 1
        plaintext = decrypt_message(mk, ciphertext, aad)
        skipped = self.skipped + tuple(new)
        if len(skipped) > MAX_STORED_SKIPPED:  # FIFO: the oldest-inserted keys go first
            skipped = skipped[len(skipped) - MAX_STORED_SKIPPED :]
        state = RatchetState(dhs, dhr, rk, cks, ckr, ns, nr, state_pn, skipped)
        return state, plaintext

    # --- serialisation: fixed binary layout, every length checked ---------------------------

    def to_bytes(self) -> bytes:
        flags = (
            (_HAS_DHR if self.dhr is not None else 0)
            | (_HAS_CKS if self.cks is not None else 0)
            | (_HAS_CKR if self.ckr is not None else 0)
        )
        parts = [
            _FIXED.pack(
                _STATE_VERSION,
                flags,
                self.dhs.private,
                self.rk,
                self.ns,
                self.nr,
                self.pn,
                len(self.skipped),
            )
        ]
        parts += [x for x in (self.dhr.data if self.dhr else None, self.cks, self.ckr) if x]
        parts += [_SKIPPED.pack(s.dh.data, s.n, s.mk) for s in self.skipped]
        return b"".join(parts)

    @classmethod
    def from_bytes(cls, data: bytes) -> RatchetState:
        if len(data) < _FIXED.size:
            raise DecodeError("invalid ratchet state")
        version, flags, dhs, rk, ns, nr, pn, count = _FIXED.unpack_from(data)
        if version != _STATE_VERSION or flags & ~7 or count > MAX_STORED_SKIPPED:
            raise DecodeError("invalid ratchet state")
        optional = [bool(flags & bit) for bit in (_HAS_DHR, _HAS_CKS, _HAS_CKR)]
        if len(data) != _FIXED.size + KEY_LEN * sum(optional) + _SKIPPED.size * count:
            raise DecodeError("invalid ratchet state")
        pos = _FIXED.size
        values: list[bytes | None] = []
        for present in optional:
            values.append(bytes(data[pos : pos + KEY_LEN]) if present else None)
            pos += KEY_LEN if present else 0
        skipped = []
        for _ in range(count):
            dh, n, mk = _SKIPPED.unpack_from(data, pos)
            skipped.append(SkippedKey(DHPublicKey(dh), n, mk))
            pos += _SKIPPED.size
        dhr, cks, ckr = values
        return cls(
            dhs=DHKeyPair(dhs),
            dhr=DHPublicKey(dhr) if dhr is not None else None,
            rk=rk,
            cks=cks,
            ckr=ckr,
            ns=ns,
            nr=nr,
            pn=pn,
            skipped=tuple(skipped),
        )
