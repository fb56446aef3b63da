"""What the device needs from the appliance's relay, as a Python interface.

`semafore.client.api.ApiClient` implements it over HTTPS and the WebSocket; unit tests may use
an in-memory relay. Values are plain data so either side stays small.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from semafore.protocol import DeviceAddress, OneTimePreKey, SignedPreKey


@dataclass(frozen=True)
class ListedDevice:
    """One entry of a user's device list, with the identity the server holds for it."""

    device_id: int
    identity_key: bytes
    identity_signing_key: bytes
    identity_binding_signature: bytes


@dataclass(frozen=True)
class Delivery:
    """One queued envelope for this device; `server_id` is what the ack names."""

    server_id: str
    envelope: Mapping[str, Any]


class Relay(Protocol):
    async def devices(self, user_id: str) -> Sequence[ListedDevice]:
        """The user's approved devices. Raises NotFound for an unknown user."""
        ...

    async def bundle(self, address: DeviceAddress) -> Mapping[str, Any]:
        """One bundle (claims one OPK, if any are left)."""
        ...

    async def send(self, request: Mapping[str, Any]) -> None:
        """Submit a fan-out; raises StaleDevices (409) when the device set is not current."""
        ...

    async def fetch(self) -> Sequence[Delivery]:
        """Envelopes queued for this device (not yet acked)."""
        ...

    async def ack(self, server_ids: Sequence[str]) -> None: ...

    async def one_time_pre_key_count(self) -> int: ...

    async def upload_pre_keys(
        self, signed_pre_key: SignedPreKey | None, one_time_pre_keys: Sequence[OneTimePreKey]
    ) -> None: ...
