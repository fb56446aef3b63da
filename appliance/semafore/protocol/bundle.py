"""Pre-key bundle as the server returns it (s4.5) and its verification (s5 step 1)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .address import DeviceAddress
from .binding import verify_identity_binding, verify_signed_pre_key
from .constants import KEY_LEN, SIGNATURE_LEN, VERSION
from .encoding import b64u_encode, check_version, get_bytes, get_int, require_object
from .errors import DecodeError
from .keys import DHPublicKey, SigningPublicKey


@dataclass(frozen=True)
class Bundle:
    """One device's published keys. The OPK pair is both present or both absent."""

    address: DeviceAddress
    identity_key: DHPublicKey
    identity_signing_key: SigningPublicKey
    identity_binding_signature: bytes
    signed_pre_key_id: int
    signed_pre_key: DHPublicKey
    signed_pre_key_signature: bytes
    one_time_pre_key_id: int | None = None
    one_time_pre_key: DHPublicKey | None = None

    def __post_init__(self) -> None:
        if (self.one_time_pre_key_id is None) != (self.one_time_pre_key is None):
            raise DecodeError("one-time pre key id and key must come together")
        for sig in (self.identity_binding_signature, self.signed_pre_key_signature):
            if len(sig) != SIGNATURE_LEN:
                raise DecodeError("invalid signature length")

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any]) -> Bundle:
        obj = require_object(obj, "bundle")
        check_version(obj)
        has_id, has_key = "one_time_pre_key_id" in obj, "one_time_pre_key" in obj
        if has_id != has_key:
            raise DecodeError("one-time pre key id and key must come together")
        return cls(
            address=DeviceAddress.from_dict(obj),
            identity_key=DHPublicKey(get_bytes(obj, "identity_key", KEY_LEN)),
            identity_signing_key=SigningPublicKey(get_bytes(obj, "identity_signing_key", KEY_LEN)),
            identity_binding_signature=get_bytes(obj, "identity_binding_signature", SIGNATURE_LEN),
            signed_pre_key_id=get_int(obj, "signed_pre_key_id"),
            signed_pre_key=DHPublicKey(get_bytes(obj, "signed_pre_key", KEY_LEN)),
            signed_pre_key_signature=get_bytes(obj, "signed_pre_key_signature", SIGNATURE_LEN),
            one_time_pre_key_id=get_int(obj, "one_time_pre_key_id") if has_id else None,
            one_time_pre_key=(
                DHPublicKey(get_bytes(obj, "one_time_pre_key", KEY_LEN)) if has_key else None
            ),
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "v": VERSION,
            **self.address.to_dict(),
            "identity_key": b64u_encode(self.identity_key.data),
            "identity_signing_key": b64u_encode(self.identity_signing_key.data),
            "identity_binding_signature": b64u_encode(self.identity_binding_signature),
            "signed_pre_key_id": self.signed_pre_key_id,
            "signed_pre_key": b64u_encode(self.signed_pre_key.data),
            "signed_pre_key_signature": b64u_encode(self.signed_pre_key_signature),
        }
        if self.one_time_pre_key is not None:
            out["one_time_pre_key_id"] = self.one_time_pre_key_id
            out["one_time_pre_key"] = b64u_encode(self.one_time_pre_key.data)
        return out

    def verify(self, expected: DeviceAddress) -> None:
        """s5 step 1: right user and device, both signatures valid. Raises on any failure.

        Key validity (s4.4) is already enforced by the field types.
        """
        if self.address != expected:
            raise DecodeError("bundle is not for the requested device")
        verify_identity_binding(
            self.identity_signing_key,
            self.identity_key,
            self.address,
            self.identity_binding_signature,
        )
        verify_signed_pre_key(
            self.identity_signing_key, self.signed_pre_key, self.signed_pre_key_signature
        )
