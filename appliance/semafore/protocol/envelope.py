"""Envelopes (s7.1) and the multi-device send request (s7.2): strict parse and serialise."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .address import DeviceAddress
from .constants import HEADER_LEN, KEY_LEN, SIGNATURE_LEN, TAG_LEN, VERSION
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
from .keys import DHPublicKey, SigningPublicKey
from .ratchet import Header

PREKEY = "prekey"
MSG = "msg"


@dataclass(frozen=True)
class PreKeyBlock:
    """The initiator's X3DH values, attached to every envelope until it has decrypted (s7.3)."""

    ik: DHPublicKey
    isk: SigningPublicKey
    ik_sig: bytes
    ek: DHPublicKey
    spk_id: int
    opk_id: int | None = None

    def __post_init__(self) -> None:
        if len(self.ik_sig) != SIGNATURE_LEN:
            raise DecodeError("invalid signature length")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "ik": b64u_encode(self.ik.data),
            "isk": b64u_encode(self.isk.data),
            "ik_sig": b64u_encode(self.ik_sig),
            "ek": b64u_encode(self.ek.data),
            "spk_id": self.spk_id,
        }
        if self.opk_id is not None:
            out["opk_id"] = self.opk_id
        return out

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any]) -> PreKeyBlock:
        obj = require_object(obj, "prekey")
        return cls(
            ik=DHPublicKey(get_bytes(obj, "ik", KEY_LEN)),
            isk=SigningPublicKey(get_bytes(obj, "isk", KEY_LEN)),
            ik_sig=get_bytes(obj, "ik_sig", SIGNATURE_LEN),
            ek=DHPublicKey(get_bytes(obj, "ek", KEY_LEN)),
            spk_id=get_int(obj, "spk_id"),
            opk_id=get_int(obj, "opk_id", optional=True),
        )


@dataclass(frozen=True)
class Envelope:
    """One ciphertext for one recipient device. `type` is "prekey" iff `prekey` is set."""

    sender: DeviceAddress
    recipient: DeviceAddress
    header: Header
    ciphertext: bytes
    prekey: PreKeyBlock | None = None

    def __post_init__(self) -> None:
        if len(self.ciphertext) < TAG_LEN:
            raise DecodeError("ciphertext too short")

    @property
    def type(self) -> str:
        return PREKEY if self.prekey is not None else MSG

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "v": VERSION,
            "type": self.type,
            "from": self.sender.to_dict(),
            "to": self.recipient.to_dict(),
            "header": b64u_encode(self.header.to_bytes()),
            "ct": b64u_encode(self.ciphertext),
        }
        if self.prekey is not None:
            out["prekey"] = self.prekey.to_dict()
        return out

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any]) -> Envelope:
        obj = require_object(obj, "envelope")
        check_version(obj)
        kind = get_str(obj, "type")
        if kind not in (PREKEY, MSG):
            raise DecodeError("unknown envelope type")
        if ("prekey" in obj) != (kind == PREKEY):
            raise DecodeError("prekey block must be present iff type is prekey")
        return cls(
            sender=DeviceAddress.from_dict(obj.get("from")),
            recipient=DeviceAddress.from_dict(obj.get("to")),
            header=Header.from_bytes(get_bytes(obj, "header", HEADER_LEN)),
            ciphertext=get_bytes(obj, "ct", min_length=TAG_LEN),
            prekey=PreKeyBlock.from_dict(obj["prekey"]) if kind == PREKEY else None,
        )

    def to_json(self) -> bytes:
        return dump_json(self.to_dict())

    @classmethod
    def from_json(cls, data: bytes | str) -> Envelope:
        return cls.from_dict(load_json_object(data))


@dataclass(frozen=True)
class SendRequest:
    """{"v":1, "msg_id": ..., "envelopes": [...]}: one request for the whole fan-out."""

    msg_id: str
    envelopes: tuple[Envelope, ...]

    def __post_init__(self) -> None:
        if not self.msg_id:
            raise DecodeError("empty msg_id")
        targets = [e.recipient for e in self.envelopes]
        if len(set(targets)) != len(targets):
            raise DecodeError("more than one envelope for a device")

    @classmethod
    def build(cls, msg_id: str, envelopes: Sequence[Envelope]) -> SendRequest:
        return cls(msg_id, tuple(envelopes))

    def to_dict(self) -> dict[str, Any]:
        return {
            "v": VERSION,
            "msg_id": self.msg_id,
            "envelopes": [e.to_dict() for e in self.envelopes],
        }

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any]) -> SendRequest:
        obj = require_object(obj, "send request")
        check_version(obj)
        envelopes = obj.get("envelopes")
        if not isinstance(envelopes, list):
            raise DecodeError("envelopes must be a list")
        return cls(get_str(obj, "msg_id"), tuple(Envelope.from_dict(e) for e in envelopes))

    def to_json(self) -> bytes:
        return dump_json(self.to_dict())

    @classmethod
    def from_json(cls, data: bytes | str) -> SendRequest:
        return cls.from_dict(load_json_object(data))
