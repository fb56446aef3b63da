"""An in-memory stand-in for the appliance relay, for unit tests of the client's own code.

It keeps what the real relay keeps (device identities, SPKs, OPKs claimed once, one queue per
device) and enforces the 409 rule of PROTOCOL s7.2. End-to-end tests use the real server.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from semafore.client.device import Device
from semafore.client.device_state import DeviceState, new_device_keys
from semafore.client.errors import NotFound, StaleDevices
from semafore.client.keysource import RawKey
from semafore.client.keystore import Keystore
from semafore.client.relay import Delivery, ListedDevice
from semafore.protocol import DeviceAddress, OneTimePreKey, SignedPreKey
from semafore.protocol.encoding import b64u_encode

TEST_KEK = RawKey(b"k" * 32)


@dataclass
class _ServerDevice:
    identity_key: bytes
    identity_signing_key: bytes
    binding_signature: bytes
    spk: tuple[int, bytes, bytes] | None = None  # id, public, signature
    opks: dict[int, bytes] = field(default_factory=dict)
    queue: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


class MemoryRelay:
    def __init__(self) -> None:
        self.devices: dict[DeviceAddress, _ServerDevice] = {}
        self._ids = itertools.count(1)
        self.requests: list[dict[str, Any]] = []  # every accepted request, as sent

    def register(self, device: Device) -> None:
        keys = device.state.manager.device
        self.devices[keys.address] = _ServerDevice(
            keys.identity.ik.data, keys.identity.isk.data, keys.binding_signature
        )

    def remove(self, address: DeviceAddress) -> None:
        del self.devices[address]

    def view(self, address: DeviceAddress) -> MemoryRelayView:
        return MemoryRelayView(self, address)

    def listed(self, user_id: str) -> list[DeviceAddress]:
        return sorted(a for a in self.devices if a.user_id == user_id)

    def accept(self, sender: DeviceAddress, request: Mapping[str, Any]) -> None:
        envelopes = request["envelopes"]
        targets = {DeviceAddress.from_dict(e["to"]) for e in envelopes}
        users = {a.user_id for a in targets} | {sender.user_id}
        expected = {a for u in users for a in self.listed(u)} - {sender}
        missing, extra = expected - targets, targets - expected
        if missing or extra:
            raise StaleDevices(
                "device lists changed",
                status=409,
                details={
                    "missing_devices": [a.to_dict() for a in sorted(missing)],
                    "extra_devices": [a.to_dict() for a in sorted(extra)],
                },
            )
        self.requests.append(dict(request))
        for e in envelopes:
            self.devices[DeviceAddress.from_dict(e["to"])].queue.append(
                (f"m{next(self._ids)}", dict(e))
            )


class MemoryRelayView:
    """The Relay interface as one device sees it."""

    def __init__(self, relay: MemoryRelay, address: DeviceAddress) -> None:
        self.relay = relay
        self.address = address
        self.hold = False  # when set, fetch() returns nothing (device "offline")

    async def devices(self, user_id: str) -> Sequence[ListedDevice]:
        listed = self.relay.listed(user_id)
        if not listed and not any(a.user_id == user_id for a in self.relay.devices):
            raise NotFound("unknown user", status=404)
        out = []
        for a in listed:
            d = self.relay.devices[a]
            out.append(
                ListedDevice(
                    a.device_id, d.identity_key, d.identity_signing_key, d.binding_signature
                )
            )
        return out

    async def bundle(self, address: DeviceAddress) -> Mapping[str, Any]:
        d = self.relay.devices[address]
        assert d.spk is not None
        out: dict[str, Any] = {
            "v": 1,
            **address.to_dict(),
            "identity_key": b64u_encode(d.identity_key),
            "identity_signing_key": b64u_encode(d.identity_signing_key),
            "identity_binding_signature": b64u_encode(d.binding_signature),
            "signed_pre_key_id": d.spk[0],
            "signed_pre_key": b64u_encode(d.spk[1]),
            "signed_pre_key_signature": b64u_encode(d.spk[2]),
        }
        if d.opks:
            opk_id = min(d.opks)
            out["one_time_pre_key_id"] = opk_id
            out["one_time_pre_key"] = b64u_encode(d.opks.pop(opk_id))
        return out

    async def send(self, request: Mapping[str, Any]) -> None:
        self.relay.accept(self.address, request)

    async def fetch(self) -> Sequence[Delivery]:
        if self.hold:
            return []
        return [Delivery(i, e) for i, e in self.relay.devices[self.address].queue]

    async def ack(self, server_ids: Sequence[str]) -> None:
        d = self.relay.devices[self.address]
        d.queue = [(i, e) for i, e in d.queue if i not in set(server_ids)]

    async def one_time_pre_key_count(self) -> int:
        return len(self.relay.devices[self.address].opks)

    async def upload_pre_keys(
        self, signed_pre_key: SignedPreKey | None, one_time_pre_keys: Sequence[OneTimePreKey]
    ) -> None:
        d = self.relay.devices[self.address]
        if signed_pre_key is not None:
            k = signed_pre_key
            d.spk = (k.key_id, k.key_pair.public.data, k.signature)
        for k in one_time_pre_keys:
            d.opks[k.key_id] = k.key_pair.public.data


async def make_device(
    relay: MemoryRelay, home: Path, user_id: str, device_id: int, **keystore_args: Any
) -> Device:
    """A registered, approved device with a keystore in `home` and keys on the relay."""
    address = DeviceAddress(user_id, device_id)
    ks = Keystore.create(home, TEST_KEK, server_url="https://relay.test", **keystore_args)
    with ks.transaction():
        ks.put_device_keys(new_device_keys(address, ks.clock()))
        ks.set_status("approved")
    device = Device(DeviceState(ks), relay.view(address))
    relay.register(device)
    await device.maintain_pre_keys()
    return device


def reopen(device: Device, relay: MemoryRelay) -> Device:
    """The same device after a restart: a fresh process state from its keystore file."""
    home = device.state.ks.path.parent
    device.state.ks.close()
    ks = Keystore.open(home, TEST_KEK)
    return Device(DeviceState(ks), relay.view(device.address))
