"""Message content (s7.5): the UTF-8 JSON object inside every padded plaintext.

Unknown members are ignored. An unknown `t` still parses (the receiver acknowledges and then
ignores it); only `v` must be exactly 1.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .constants import ATT_MAX_CHUNK, ATT_MIN_CHUNK, KEY_LEN, U32_MAX, VERSION
from .encoding import (
    b64u_encode,
    check_version,
    dump_json,
    get_bytes,
    get_int,
    get_str,
    load_json_object,
    require_object,
)
from .errors import DecodeError

TEXT = "text"
ATTACHMENT = "attachment"
GROUP_UPDATE = "group_update"
KNOWN_TYPES = frozenset({TEXT, ATTACHMENT, GROUP_UPDATE})

_MAX_SAFE_INT = 2**53 - 1  # JSON numbers beyond this are not portable
GROUP_ID_LEN = 16


def check_chunk_size(chunk_size: int) -> int:
    """s9: a power of two, 1024 <= chunk_size <= 4 MiB."""
    if (
        type(chunk_size) is not int
        or not ATT_MIN_CHUNK <= chunk_size <= ATT_MAX_CHUNK
        or chunk_size & (chunk_size - 1)
    ):
        raise DecodeError("invalid chunk size")
    return chunk_size


@dataclass(frozen=True)
class AttachmentPointer:
    """s9 pointer: where the blob is, and the key and digest to open and check it."""

    id: str
    key: bytes
    digest: bytes
    size: int
    chunk_size: int
    content_type: str | None = None
    name: str | None = None

    def __post_init__(self) -> None:
        if len(self.key) != KEY_LEN or len(self.digest) != 32:
            raise DecodeError("invalid attachment key or digest")
        if type(self.size) is not int or not 0 <= self.size <= _MAX_SAFE_INT:
            raise DecodeError("invalid attachment size")
        check_chunk_size(self.chunk_size)
        if (self.size + self.chunk_size - 1) // self.chunk_size > U32_MAX:
            raise DecodeError("attachment has too many chunks")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "key": b64u_encode(self.key),
            "digest": b64u_encode(self.digest),
            "size": self.size,
            "chunk_size": self.chunk_size,
        }
        if self.content_type is not None:
            out["content_type"] = self.content_type
        if self.name is not None:
            out["name"] = self.name
        return out

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any]) -> AttachmentPointer:
        obj = require_object(obj, "attachment pointer")
        return cls(
            id=get_str(obj, "id"),
            key=get_bytes(obj, "key", KEY_LEN),
            digest=get_bytes(obj, "digest", 32),
            size=get_int(obj, "size", hi=_MAX_SAFE_INT),
            chunk_size=get_int(obj, "chunk_size", lo=ATT_MIN_CHUNK, hi=ATT_MAX_CHUNK),
            content_type=get_str(obj, "content_type", optional=True),
            name=get_str(obj, "name", optional=True),
        )


@dataclass(frozen=True)
class GroupRef:
    """s10: the `g` member of a group message."""

    id: bytes
    rev: int

    def __post_init__(self) -> None:
        if len(self.id) != GROUP_ID_LEN:
            raise DecodeError("invalid group id")
        if type(self.rev) is not int or not 0 <= self.rev <= _MAX_SAFE_INT:
            raise DecodeError("invalid group revision")

    def to_dict(self) -> dict[str, Any]:
        return {"id": b64u_encode(self.id), "rev": self.rev}

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any]) -> GroupRef:
        obj = require_object(obj, "group reference")
        return cls(get_bytes(obj, "id", GROUP_ID_LEN), get_int(obj, "rev", hi=_MAX_SAFE_INT))


@dataclass(frozen=True)
class Content:
    """{"v":1, "t", "mid", "ts", "body"?, "att"?, "g"?}."""

    t: str
    mid: str
    ts: int
    body: str | None = None
    att: AttachmentPointer | None = None
    g: GroupRef | None = None

    def __post_init__(self) -> None:
        if not self.t or not self.mid:
            raise DecodeError("content type and message id must not be empty")
        if type(self.ts) is not int or not 0 <= self.ts <= _MAX_SAFE_INT:
            raise DecodeError("invalid timestamp")
        if self.t == ATTACHMENT and self.att is None:
            raise DecodeError("attachment content without pointer")

    @property
    def is_known_type(self) -> bool:
        return self.t in KNOWN_TYPES

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"v": VERSION, "t": self.t, "mid": self.mid, "ts": self.ts}
        if self.body is not None:
            out["body"] = self.body
        if self.att is not None:
            out["att"] = self.att.to_dict()
        if self.g is not None:
            out["g"] = self.g.to_dict()
        return out

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any]) -> Content:
        obj = require_object(obj, "content")
        check_version(obj)
        return cls(
            t=get_str(obj, "t"),
            mid=get_str(obj, "mid"),
            ts=get_int(obj, "ts", hi=_MAX_SAFE_INT),
            body=get_str(obj, "body", optional=True),
            att=AttachmentPointer.from_dict(obj["att"]) if "att" in obj else None,
            g=GroupRef.from_dict(obj["g"]) if "g" in obj else None,
        )

    def to_bytes(self) -> bytes:
        """Compact UTF-8 JSON with sorted keys (the form used by the vectors)."""
        return dump_json(self.to_dict())

    @classmethod
    def from_bytes(cls, data: bytes) -> Content:
        return cls.from_dict(load_json_object(data))
