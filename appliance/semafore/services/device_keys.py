"""Checking the public keys a device uploads (PROTOCOL.md s3, s4): every encoding, both
signatures. Each failure is an InvalidInput with a stable code and the offending ``field``.

Used at enrolment and reusable for signed pre key rotation and one-time pre key refills.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from semafore.protocol import (
    DeviceAddress,
    DHPublicKey,
    ProtocolError,
    SigningPublicKey,
    b64u_decode,
    verify_identity_binding,
    verify_signed_pre_key,
)
from semafore.protocol.constants import KEY_LEN, SIGNATURE_LEN, U32_MAX
from semafore.services.errors import InvalidInput

OPK_MAX_PER_UPLOAD = 100


@dataclass(frozen=True, slots=True)
class SignedPreKeyUpload:
    key_id: int
    public_key: bytes
    signature: bytes


@dataclass(frozen=True, slots=True)
class DeviceKeysUpload:
    identity_key: bytes
    identity_signing_key: bytes
    identity_binding_signature: bytes
    signed_pre_key: SignedPreKeyUpload
    one_time_pre_keys: tuple[tuple[int, bytes], ...]


def _bytes(obj: Mapping[str, Any], name: str, length: int, *, where: str | None = None) -> bytes:
    field = where or name
    if name not in obj:
        raise InvalidInput(f"{field} is required", code="field_missing", details={"field": field})
    try:
        return b64u_decode(obj[name], length)
    except ProtocolError:
        raise InvalidInput(
            f"{field} must be unpadded base64url of exactly {length} bytes",
            code="key_encoding_invalid",
            details={"field": field},
        ) from None


def _key_id(obj: Mapping[str, Any], name: str, *, where: str | None = None) -> int:
    field = where or name
    value = obj.get(name)
    if type(value) is not int or not 0 <= value <= U32_MAX:
        raise InvalidInput(
            f"{field} must be an integer from 0 to {U32_MAX}",
            code="key_id_invalid",
            details={"field": field},
        )
    return value


def _x25519(data: bytes, field: str) -> DHPublicKey:
    try:
        return DHPublicKey(data)
    except ProtocolError:
        raise InvalidInput(
            f"{field} is not a canonical X25519 public key",
            code="x25519_key_invalid",
            details={"field": field},
        ) from None


def parse_signed_pre_key(
    obj: Mapping[str, Any], identity_signing_key: bytes
) -> SignedPreKeyUpload:
    """``signed_pre_key_id``, ``signed_pre_key``, ``signed_pre_key_signature`` — checked."""
    key_id = _key_id(obj, "signed_pre_key_id")
    spk = _x25519(_bytes(obj, "signed_pre_key", KEY_LEN), "signed_pre_key")
    signature = _bytes(obj, "signed_pre_key_signature", SIGNATURE_LEN)
    try:
        verify_signed_pre_key(SigningPublicKey(identity_signing_key), spk, signature)
    except ProtocolError:
        raise InvalidInput(
            "signed_pre_key_signature does not verify under identity_signing_key",
            code="signed_pre_key_signature_invalid",
            details={"field": "signed_pre_key_signature"},
        ) from None
    return SignedPreKeyUpload(key_id, spk.data, signature)


def parse_one_time_pre_keys(
    value: object, *, max_count: int = OPK_MAX_PER_UPLOAD
) -> tuple[tuple[int, bytes], ...]:
    """A list of ``{"id": u32, "key": b64u}``; ids unique within the upload."""
    if not isinstance(value, list):
        raise InvalidInput(
            "one_time_pre_keys must be a list", code="field_invalid",
            details={"field": "one_time_pre_keys"},
        )
    if len(value) > max_count:
        raise InvalidInput(
            f"at most {max_count} one-time pre keys per upload",
            code="too_many_pre_keys",
            details={"field": "one_time_pre_keys", "max": max_count},
        )
    keys: list[tuple[int, bytes]] = []
    seen: set[int] = set()
    for index, item in enumerate(value):
        where = f"one_time_pre_keys[{index}]"
        if not isinstance(item, dict):
            raise InvalidInput(
                f"{where} must be an object", code="field_invalid", details={"field": where}
            )
        key_id = _key_id(item, "id", where=f"{where}.id")
        if key_id in seen:
            raise InvalidInput(
                f"{where}.id repeats an id in this upload",
                code="pre_key_id_duplicate",
                details={"field": f"{where}.id"},
            )
        seen.add(key_id)
        key = _x25519(_bytes(item, "key", KEY_LEN, where=f"{where}.key"), f"{where}.key")
        keys.append((key_id, key.data))
    return tuple(keys)


def parse_device_keys(obj: object, address: DeviceAddress) -> DeviceKeysUpload:
    """Every key a new device registers, with the identity binding checked for ``address``."""
    if not isinstance(obj, dict):
        raise InvalidInput("the body must be a JSON object", code="body_invalid")
    ik = _x25519(_bytes(obj, "identity_key", KEY_LEN), "identity_key")
    isk_bytes = _bytes(obj, "identity_signing_key", KEY_LEN)
    binding = _bytes(obj, "identity_binding_signature", SIGNATURE_LEN)
    try:
        verify_identity_binding(SigningPublicKey(isk_bytes), ik, address, binding)
    except ProtocolError:
        raise InvalidInput(
            "identity_binding_signature does not verify for this identity_key, user_id and"
            " device_id under identity_signing_key",
            code="identity_binding_signature_invalid",
            details={"field": "identity_binding_signature"},
        ) from None
    spk = parse_signed_pre_key(obj, isk_bytes)
    opks = parse_one_time_pre_keys(obj.get("one_time_pre_keys", []))
    return DeviceKeysUpload(ik.data, isk_bytes, binding, spk, opks)
