"""The key directory's use cases: pre key upload and rotation, bundles, device lists.

Everything is scoped to the caller's organisation: a member of another organisation, an
unknown member and a device that is not approved all look the same (404). Pending and revoked
devices never appear in a device list or a bundle.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from semafore.config import RelaySettings
from semafore.protocol.address import DeviceAddress
from semafore.protocol.binding import verify_signed_pre_key
from semafore.protocol.bundle import Bundle
from semafore.protocol.constants import DEVICE_ID_MAX, KEY_LEN, SIGNATURE_LEN, U32_MAX
from semafore.protocol.encoding import b64u_decode, b64u_encode
from semafore.protocol.errors import ProtocolError
from semafore.protocol.keys import DHPublicKey, SigningPublicKey
from semafore.services.clock import Clock
from semafore.services.errors import Conflict, InvalidInput, NotFound, RateLimited, TooLarge
from semafore.storage.keydir import KeyDirectory, SignedPreKey, TooManyPreKeys

Address = tuple[str, int]


class KeyDirectoryService:
    def __init__(self, settings: RelaySettings, clock: Clock, store: KeyDirectory) -> None:
        self._settings = settings
        self._clock = clock
        self._store = store
        self._limiter = _RateLimiter(settings.bundle_fetches_per_minute)

    # -- the device's own keys ----------------------------------------------------------------

    async def upload_one_time_pre_keys(
        self, device: Address, body: Mapping[str, Any]
    ) -> dict[str, Any]:
        keys = body.get("keys")
        limit = self._settings.opk_max_per_upload
        if not isinstance(keys, list) or not keys:
            raise InvalidInput("keys must be a non-empty list", code="invalid_pre_keys")
        if len(keys) > limit:
            raise TooLarge(f"at most {limit} one-time pre keys per upload", code="too_many_keys")
        replace = body.get("replace", False)
        if not isinstance(replace, bool):
            raise InvalidInput("replace must be true or false", code="invalid_pre_keys")
        parsed: dict[int, bytes] = {}
        for index, item in enumerate(keys):
            key_id, public = _pre_key(item, f"keys[{index}]")
            if key_id in parsed:
                raise InvalidInput(f"keys[{index}]: id appears twice", code="invalid_pre_keys")
            parsed[key_id] = public
        try:
            count = await self._store.add_one_time_pre_keys(
                device,
                list(parsed.items()),
                replace=replace,
                max_stored=self._settings.opk_max_stored,
            )
        except TooManyPreKeys:
            raise Conflict(
                f"at most {self._settings.opk_max_stored} one-time pre keys may be stored; "
                "upload with replace=true to start a new pool",
                code="too_many_pre_keys",
            ) from None
        return self._status(count)

    async def pre_key_status(self, device: Address) -> dict[str, Any]:
        return self._status(await self._store.one_time_pre_key_count(device))

    def _status(self, count: int) -> dict[str, Any]:
        below = self._settings.opk_refill_below
        return {"count": count, "refill_below": below, "refill": count < below}

    async def rotate_signed_pre_key(
        self, device: Address, body: Mapping[str, Any]
    ) -> dict[str, Any]:
        key_id, public = _pre_key(body, "signed pre key")
        try:
            signature = b64u_decode(body.get("signature"), SIGNATURE_LEN)
        except ProtocolError:
            raise InvalidInput(
                "signature must be a 64-byte base64url value", code="invalid_signed_pre_key"
            ) from None
        keys = await self._store.device_keys(device)
        if keys is None:
            raise NotFound("no such device", code="device_not_found")
        try:
            verify_signed_pre_key(
                SigningPublicKey(keys.identity_signing_key), DHPublicKey(public), signature
            )
        except ProtocolError:
            raise InvalidInput(
                "the signature does not verify under the device's identity signing key",
                code="invalid_signature",
            ) from None
        stored = await self._store.rotate_signed_pre_key(
            device,
            SignedPreKey(key_id, public, signature),
            now_ms=int(self._clock.now() * 1000),
        )
        if not stored:
            raise NotFound("no such device", code="device_not_found")
        return {"signed_pre_key_id": key_id}

    # -- other devices' keys ------------------------------------------------------------------

    async def bundle(
        self, requester: Address, org_id: str, user_id: str, device_id: object
    ) -> dict[str, Any]:
        """One device's bundle with at most one OPK, handed out once (PROTOCOL s4.5)."""
        target = (user_id, _device_id(device_id))
        await self._same_org(org_id, user_id)
        retry_after = self._limiter.take((requester, target))
        if retry_after:
            raise RateLimited(
                "too many bundle fetches for this device; try again later",
                retry_after=retry_after,
                code="bundle_rate_limited",
            )
        record = await self._store.take_bundle(target)
        if record is None:
            raise NotFound("no such device", code="device_not_found")
        device = record.device
        opk = record.one_time_pre_key
        bundle = Bundle(
            address=DeviceAddress(device.user_id, device.device_id),
            identity_key=DHPublicKey(device.identity_key),
            identity_signing_key=SigningPublicKey(device.identity_signing_key),
            identity_binding_signature=device.identity_binding_signature,
            signed_pre_key_id=record.signed_pre_key.key_id,
            signed_pre_key=DHPublicKey(record.signed_pre_key.public_key),
            signed_pre_key_signature=record.signed_pre_key.signature,
            one_time_pre_key_id=opk[0] if opk else None,
            one_time_pre_key=DHPublicKey(opk[1]) if opk else None,
        )
        return bundle.to_dict()

    async def device_list(self, org_id: str, user_id: str) -> dict[str, Any]:
        """A member's approved devices with identity keys and binding signatures."""
        member_org, devices = await self._store.approved_devices(user_id)
        if member_org is None or member_org != org_id:
            raise NotFound("no such member", code="member_not_found")
        return {
            "v": 1,
            "user_id": user_id,
            "devices": [
                {
                    "device_id": d.device_id,
                    "identity_key": b64u_encode(d.identity_key),
                    "identity_signing_key": b64u_encode(d.identity_signing_key),
                    "identity_binding_signature": b64u_encode(d.identity_binding_signature),
                }
                for d in devices
            ],
        }

    async def _same_org(self, org_id: str, user_id: str) -> None:
        if await self._store.member_org(user_id) != org_id:
            raise NotFound("no such device", code="device_not_found")

    async def expire_retired(self) -> int:
        days = self._settings.spk_retention_days
        before = int((self._clock.now() - days * 86_400) * 1000)
        return await self._store.expire_retired_signed_pre_keys(retired_before_ms=before)


def _pre_key(item: object, where: str) -> tuple[int, bytes]:
    if not isinstance(item, dict):
        raise InvalidInput(f"{where} must be an object with id and key", code="invalid_pre_keys")
    key_id = item.get("id")
    if type(key_id) is not int or not 0 <= key_id <= U32_MAX:
        raise InvalidInput(f"{where}: id must be an integer 0..2^32-1", code="invalid_pre_keys")
    try:
        public = DHPublicKey(b64u_decode(item.get("key"), KEY_LEN)).data
    except ProtocolError:
        raise InvalidInput(
            f"{where}: key must be a canonical X25519 public key in base64url",
            code="invalid_pre_keys",
        ) from None
    return key_id, public


def _device_id(value: object) -> int:
    if isinstance(value, str) and value.isdigit() and len(value) <= 10:
        value = int(value)
    if type(value) is not int or not 1 <= value <= DEVICE_ID_MAX:
        raise NotFound("no such device", code="device_not_found")
    return value


class _RateLimiter:
    """Token buckets per key: ``per_minute`` tokens, refilled continuously; bounded memory."""

    MAX_KEYS = 100_000

    def __init__(self, per_minute: int) -> None:
        self._rate = per_minute / 60.0
        self._burst = float(per_minute)
        self._buckets: dict[object, tuple[float, float]] = {}

    def take(self, key: object) -> int:
        """0 when allowed; else seconds to wait."""
        now = time.monotonic()
        tokens, stamp = self._buckets.get(key, (self._burst, now))
        tokens = min(self._burst, tokens + (now - stamp) * self._rate)
        if tokens < 1:
            self._buckets[key] = (tokens, now)
            return max(1, int((1 - tokens) / self._rate + 0.999))
        if len(self._buckets) >= self.MAX_KEYS and key not in self._buckets:
            self._prune(now)
        self._buckets[key] = (tokens - 1, now)
        return 0

    def _prune(self, now: float) -> None:
        full = [
            k for k, (t, s) in self._buckets.items() if t + (now - s) * self._rate >= self._burst
        ]
        for key in full:
            del self._buckets[key]
        if len(self._buckets) >= self.MAX_KEYS:
            self._buckets.clear()
