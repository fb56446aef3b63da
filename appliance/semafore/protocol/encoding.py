"""Strict encodings (PROTOCOL.md s3): base64url without padding, u32, JSON and identifiers."""

from __future__ import annotations

import base64
import binascii
import json
import re
import struct
from collections.abc import Mapping
from typing import Any

from .constants import DEVICE_ID_MAX, U32_MAX, USER_ID_MAX_BYTES, VERSION
from .errors import DecodeError

_B64U_ALPHABET = re.compile(r"[A-Za-z0-9_-]*")
_U32 = struct.Struct(">I")


def b64u_encode(data: bytes) -> str:
    """base64url (RFC 4648 s5) without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64u_decode(text: object, length: int | None = None, *, min_length: int = 0) -> bytes:
    """Decode strictly: no padding, no whitespace, alphabet only, canonical, length checked."""
    if not isinstance(text, str) or not _B64U_ALPHABET.fullmatch(text) or len(text) % 4 == 1:
        raise DecodeError("invalid base64url")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise DecodeError("invalid base64url") from None
    # Non-zero trailing bits decode fine but are not canonical: re-encoding tells.
    if b64u_encode(data) != text:
        raise DecodeError("non-canonical base64url")
    if (length is not None and len(data) != length) or len(data) < min_length:
        raise DecodeError("wrong decoded length")
    return data


def u32(value: int) -> bytes:
    """Unsigned 32-bit big-endian. Out-of-range values are an error, never wrapped."""
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= U32_MAX:
        raise DecodeError("value out of u32 range")
    return _U32.pack(value)


def read_u32(data: bytes, offset: int = 0) -> int:
    if len(data) < offset + 4:
        raise DecodeError("truncated u32")
    return int(_U32.unpack_from(data, offset)[0])


# --- identifiers (s3) ---------------------------------------------------------------------


def user_id_bytes(user_id: object) -> bytes:
    """The exact UTF-8 bytes of a user_id: 1..255 bytes, no NUL."""
    if not isinstance(user_id, str):
        raise DecodeError("user_id must be a string")
    try:
        raw = user_id.encode("utf-8")
    except UnicodeEncodeError:
        raise DecodeError("user_id is not valid UTF-8") from None
    if not 1 <= len(raw) <= USER_ID_MAX_BYTES or b"\x00" in raw:
        raise DecodeError("invalid user_id")
    return raw


def check_device_id(device_id: object) -> int:
    if (
        not isinstance(device_id, int)
        or isinstance(device_id, bool)
        or not 1 <= device_id <= DEVICE_ID_MAX
    ):
        raise DecodeError("invalid device_id")
    return device_id


# --- JSON (s3): UTF-8, no duplicate members, unknown members ignored, `v` checked --------------


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise DecodeError("duplicate JSON member")
        obj[key] = value
    return obj


def _reject_constant(_: str) -> Any:
    raise DecodeError("non-finite number in JSON")


def load_json_object(data: bytes | str) -> dict[str, Any]:
    """Parse one JSON object strictly (UTF-8, no duplicate keys, no NaN/Infinity)."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes | bytearray) else data
        obj = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise DecodeError("invalid JSON") from None
    if not isinstance(obj, dict):
        raise DecodeError("JSON value is not an object")
    return obj


def dump_json(obj: Mapping[str, Any]) -> bytes:
    """Compact UTF-8 JSON with sorted keys (nothing in JSON is hashed or signed)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def require_object(obj: object, what: str = "object") -> Mapping[str, Any]:
    if not isinstance(obj, dict):
        raise DecodeError(f"{what} must be a JSON object")
    return obj


def check_version(obj: Mapping[str, Any]) -> None:
    v = obj.get("v")
    if type(v) is not int or v != VERSION:
        raise DecodeError("unsupported version")


def get_int(
    obj: Mapping[str, Any], key: str, *, lo: int = 0, hi: int = U32_MAX, optional: bool = False
) -> Any:
    if key not in obj and optional:
        return None
    value = obj.get(key)
    if type(value) is not int or not lo <= value <= hi:
        raise DecodeError(f"invalid integer member {key!r}")
    return value


def get_str(obj: Mapping[str, Any], key: str, *, optional: bool = False) -> Any:
    if key not in obj and optional:
        return None
    value = obj.get(key)
    if not isinstance(value, str):
        raise DecodeError(f"invalid string member {key!r}")
    return value


def get_bytes(
    obj: Mapping[str, Any], key: str, length: int | None = None, *, min_length: int = 0
) -> bytes:
    if key not in obj:
        raise DecodeError(f"missing member {key!r}")
    return b64u_decode(obj[key], length, min_length=min_length)
