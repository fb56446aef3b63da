"""Device addresses: `(user_id, device_id)` as used in envelopes, bundles and sessions (s3)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .constants import DEVICE_ID_MAX
from .encoding import check_device_id, get_int, get_str, require_object, user_id_bytes


@dataclass(frozen=True, order=True)
class DeviceAddress:
    """One device of one user. `user_id` is the server-issued opaque identifier."""

    user_id: str
    device_id: int

    def __post_init__(self) -> None:
        user_id_bytes(self.user_id)
        check_device_id(self.device_id)

    @property
    def user_id_bytes(self) -> bytes:
        return self.user_id.encode("utf-8")

    def to_dict(self) -> dict[str, Any]:
        return {"user_id": self.user_id, "device_id": self.device_id}

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any]) -> DeviceAddress:
        obj = require_object(obj, "address")
        return cls(get_str(obj, "user_id"), get_int(obj, "device_id", lo=1, hi=DEVICE_ID_MAX))

    def __str__(self) -> str:
        return f"{self.user_id}/{self.device_id}"
