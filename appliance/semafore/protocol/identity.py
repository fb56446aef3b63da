"""The identity-change rule (s8.3) as data and decisions.

For every remote user the store keeps the `(ISK, IK)` of each known device and whether the user
verified the safety number. `observe` decides what a newly seen identity means:

* first device of a user never seen before: trust on first use;
* unverified contact adds or re-keys a device: accept, but the client MUST warn;
* verified contact adds or re-keys a device: the verified state is cleared and sending to that
  device is blocked until the user confirms it.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from .address import DeviceAddress
from .constants import KEY_LEN
from .encoding import (
    b64u_encode,
    dump_json,
    get_bytes,
    get_str,
    load_json_object,
    require_object,
    user_id_bytes,
)
from .errors import DecodeError, UnknownIdentity
from .keys import DHPublicKey, SigningPublicKey


class IdentityStatus(enum.Enum):
    UNCHANGED = "unchanged"  # known device, same keys
    FIRST_USE = "first_use"  # first device ever seen for this user (TOFU)
    NEW_DEVICE = "new_device"  # unverified contact added a device: show "safety number changed"
    CHANGED = "changed"  # unverified contact re-keyed a device: warn, may continue
    BLOCKED = "blocked"  # verified contact changed or added a device: confirm before sending

    @property
    def may_send(self) -> bool:
        return self is not IdentityStatus.BLOCKED

    @property
    def should_warn(self) -> bool:
        return self in (IdentityStatus.NEW_DEVICE, IdentityStatus.CHANGED, IdentityStatus.BLOCKED)


@dataclass(frozen=True)
class KnownDevice:
    isk: SigningPublicKey
    ik: DHPublicKey
    needs_confirmation: bool = False


@dataclass(frozen=True)
class ContactIdentity:
    """Everything known about one remote user's device identities. Immutable."""

    user_id: str
    devices: Mapping[int, KnownDevice] = field(default_factory=dict)
    verified: bool = False

    def __post_init__(self) -> None:
        user_id_bytes(self.user_id)
        object.__setattr__(self, "devices", MappingProxyType(dict(sorted(self.devices.items()))))

    def with_device(self, device_id: int, device: KnownDevice | None) -> ContactIdentity:
        devices = dict(self.devices)
        if device is None:
            devices.pop(device_id, None)
        else:
            devices[device_id] = device
        return replace(self, devices=devices)

    def to_dict(self) -> dict[str, Any]:
        return {
            "user_id": self.user_id,
            "verified": self.verified,
            "devices": [
                {
                    "device_id": device_id,
                    "isk": b64u_encode(d.isk.data),
                    "ik": b64u_encode(d.ik.data),
                    "needs_confirmation": d.needs_confirmation,
                }
                for device_id, d in self.devices.items()
            ],
        }

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any]) -> ContactIdentity:
        obj = require_object(obj, "contact identity")
        devices: dict[int, KnownDevice] = {}
        entries = obj.get("devices")
        if not isinstance(entries, list) or not isinstance(obj.get("verified"), bool):
            raise DecodeError("invalid contact identity")
        for entry in map(require_object, entries):
            addr = DeviceAddress.from_dict({**entry, "user_id": obj.get("user_id")})
            flag = entry.get("needs_confirmation")
            if not isinstance(flag, bool) or addr.device_id in devices:
                raise DecodeError("invalid contact identity")
            devices[addr.device_id] = KnownDevice(
                SigningPublicKey(get_bytes(entry, "isk", KEY_LEN)),
                DHPublicKey(get_bytes(entry, "ik", KEY_LEN)),
                flag,
            )
        return cls(get_str(obj, "user_id"), devices, obj["verified"])

    def to_bytes(self) -> bytes:
        return dump_json(self.to_dict())

    @classmethod
    def from_bytes(cls, data: bytes) -> ContactIdentity:
        return cls.from_dict(load_json_object(data))


def decide(
    contact: ContactIdentity | None,
    address: DeviceAddress,
    isk: SigningPublicKey,
    ik: DHPublicKey,
) -> tuple[IdentityStatus, ContactIdentity]:
    """Pure s8.3 decision: the status, and the contact record to store if the caller commits."""
    seen = KnownDevice(isk, ik)
    if contact is None:
        return IdentityStatus.FIRST_USE, ContactIdentity(address.user_id, {address.device_id: seen})
    if contact.user_id != address.user_id:
        raise ValueError("contact record of another user")
    known = contact.devices.get(address.device_id)
    if known is not None and (known.isk, known.ik) == (isk, ik):
        status = IdentityStatus.BLOCKED if known.needs_confirmation else IdentityStatus.UNCHANGED
        return status, contact
    if contact.verified or (known is not None and known.needs_confirmation):
        # The safety number changed: clear "verified", hold this device until confirmed. A
        # device already on hold stays on hold whatever it changes to next.
        held = KnownDevice(isk, ik, needs_confirmation=True)
        return IdentityStatus.BLOCKED, replace(
            contact.with_device(address.device_id, held), verified=False
        )
    status = IdentityStatus.NEW_DEVICE if known is None else IdentityStatus.CHANGED
    return status, contact.with_device(address.device_id, seen)


class IdentityStore:
    """Known identities of remote users, keyed by user_id. Each record persists on its own."""

    def __init__(self, contacts: Iterable[ContactIdentity] = ()) -> None:
        self._contacts = {c.user_id: c for c in contacts}

    def contact(self, user_id: str) -> ContactIdentity | None:
        return self._contacts.get(user_id)

    def contacts(self) -> tuple[ContactIdentity, ...]:
        return tuple(self._contacts[u] for u in sorted(self._contacts))

    def assess(
        self, address: DeviceAddress, isk: SigningPublicKey, ik: DHPublicKey
    ) -> tuple[IdentityStatus, ContactIdentity]:
        """What `(isk, ik)` for `address` would mean; changes nothing."""
        return decide(self._contacts.get(address.user_id), address, isk, ik)

    def put(self, contact: ContactIdentity) -> None:
        self._contacts[contact.user_id] = contact

    def known_device(self, address: DeviceAddress) -> KnownDevice | None:
        contact = self._contacts.get(address.user_id)
        return contact.devices.get(address.device_id) if contact else None

    def may_send(self, address: DeviceAddress) -> bool:
        known = self.known_device(address)
        return known is not None and not known.needs_confirmation

    def confirm(self, address: DeviceAddress) -> ContactIdentity:
        """The user accepted a changed or new device; the contact stays unverified."""
        contact = self._require(address.user_id)
        known = contact.devices.get(address.device_id)
        if known is None:
            raise UnknownIdentity("unknown device")
        updated = contact.with_device(address.device_id, replace(known, needs_confirmation=False))
        self.put(updated)
        return updated

    def set_verified(self, user_id: str, verified: bool = True) -> ContactIdentity:
        """The user compared the safety number over the devices currently known."""
        contact = self._require(user_id)
        devices = {
            i: replace(d, needs_confirmation=False) if verified else d
            for i, d in contact.devices.items()
        }
        updated = replace(contact, devices=devices, verified=verified)
        self.put(updated)
        return updated

    def remove_device(self, address: DeviceAddress) -> ContactIdentity | None:
        """A device left the user's list: the safety number changed, so "verified" is cleared."""
        contact = self._contacts.get(address.user_id)
        if contact is None or address.device_id not in contact.devices:
            return contact
        updated = replace(contact.with_device(address.device_id, None), verified=False)
        self.put(updated)
        return updated

    def fingerprint_devices(self, user_id: str) -> list[tuple[SigningPublicKey, DHPublicKey]]:
        contact = self._require(user_id)
        return [(d.isk, d.ik) for d in contact.devices.values()]

    def _require(self, user_id: str) -> ContactIdentity:
        contact = self._contacts.get(user_id)
        if contact is None:
            raise UnknownIdentity("unknown contact")
        return contact
