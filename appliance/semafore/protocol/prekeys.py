"""The local device's own keys (s4): identity, signed and one-time pre keys, replay records.

`DeviceKeys` is an immutable value; every change returns a new one, so a caller can compute a
change, persist it, and only then make it current.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from .address import DeviceAddress
from .binding import sign_identity_binding, sign_signed_pre_key
from .bundle import Bundle
from .constants import KEY_LEN, OPK_BATCH, SIGNATURE_LEN, SPK_RETENTION_MS, SPK_ROTATION_MS, U32_MAX
from .encoding import b64u_encode, dump_json, get_bytes, get_int, load_json_object, require_object
from .errors import DecodeError, UnknownPreKey
from .keys import DHKeyPair, DHPublicKey, GenerateDH, GenerateSigning, IdentityKeyPair

_MAX_MS = 2**63 - 1


@dataclass(frozen=True)
class SignedPreKey:
    key_id: int
    key_pair: DHKeyPair
    signature: bytes
    created_ms: int
    retired_ms: int | None = None  # set when a newer SPK replaced it (kept SPK_RETENTION)


@dataclass(frozen=True)
class OneTimePreKey:
    key_id: int
    key_pair: DHKeyPair


@dataclass(frozen=True)
class DeviceKeys:
    """Private key material of this device. Exactly one signed pre key is current."""

    address: DeviceAddress
    identity: IdentityKeyPair
    signed_pre_keys: tuple[SignedPreKey, ...]
    one_time_pre_keys: tuple[OneTimePreKey, ...] = ()
    # (spk_id, ek) of every processed pre-key message, kept until that SPK is deleted (s7.4).
    seen_prekeys: frozenset[tuple[int, bytes]] = field(default=frozenset(), repr=False)
    next_spk_id: int = 1
    next_opk_id: int = 1

    def __post_init__(self) -> None:
        current = [k for k in self.signed_pre_keys if k.retired_ms is None]
        spk_ids = [k.key_id for k in self.signed_pre_keys]
        opk_ids = [k.key_id for k in self.one_time_pre_keys]
        if (
            len(current) != 1
            or len(set(spk_ids)) != len(spk_ids)
            or len(set(opk_ids)) != len(opk_ids)
            or any(i >= self.next_spk_id for i in spk_ids)
            or any(i >= self.next_opk_id for i in opk_ids)
        ):
            raise DecodeError("inconsistent device keys")

    @classmethod
    def generate(
        cls,
        address: DeviceAddress,
        now_ms: int,
        *,
        generate_dh: GenerateDH = X25519PrivateKey.generate,
        generate_signing: GenerateSigning = Ed25519PrivateKey.generate,
    ) -> DeviceKeys:
        """A new device: fresh IK and ISK (independent), first SPK, no OPKs yet."""
        identity = IdentityKeyPair.generate(generate_dh, generate_signing)
        spk = DHKeyPair.generate(generate_dh)
        first = SignedPreKey(1, spk, sign_signed_pre_key(identity, spk.public), now_ms)
        return cls(address, identity, (first,), next_spk_id=2)

    @property
    def binding_signature(self) -> bytes:
        return sign_identity_binding(self.identity, self.address)

    @property
    def current_signed_pre_key(self) -> SignedPreKey:
        return next(k for k in self.signed_pre_keys if k.retired_ms is None)

    def signed_pre_key(self, key_id: int) -> SignedPreKey:
        for key in self.signed_pre_keys:
            if key.key_id == key_id:
                return key
        raise UnknownPreKey("unknown pre key")

    def one_time_pre_key(self, key_id: int) -> OneTimePreKey:
        for key in self.one_time_pre_keys:
            if key.key_id == key_id:
                return key
        raise UnknownPreKey("unknown pre key")

    def bundle(self, one_time_pre_key_id: int | None = None) -> Bundle:
        """This device's bundle as the server hands it out (with at most one OPK)."""
        spk = self.current_signed_pre_key
        opk = (
            self.one_time_pre_key(one_time_pre_key_id) if one_time_pre_key_id is not None else None
        )
        return Bundle(
            address=self.address,
            identity_key=self.identity.ik,
            identity_signing_key=self.identity.isk,
            identity_binding_signature=self.binding_signature,
            signed_pre_key_id=spk.key_id,
            signed_pre_key=spk.key_pair.public,
            signed_pre_key_signature=spk.signature,
            one_time_pre_key_id=opk.key_id if opk else None,
            one_time_pre_key=opk.key_pair.public if opk else None,
        )

    # --- changes (each returns a new value) ----------------------------------------------

    def with_new_one_time_pre_keys(
        self, count: int = OPK_BATCH, generate_dh: GenerateDH = X25519PrivateKey.generate
    ) -> tuple[DeviceKeys, tuple[OneTimePreKey, ...]]:
        """Add `count` OPKs with fresh ids; returns the new value and the keys to upload."""
        if self.next_opk_id + count - 1 > U32_MAX:
            raise DecodeError("one-time pre key ids exhausted")
        new = tuple(
            OneTimePreKey(self.next_opk_id + i, DHKeyPair.generate(generate_dh))
            for i in range(count)
        )
        updated = replace(
            self,
            one_time_pre_keys=self.one_time_pre_keys + new,
            next_opk_id=self.next_opk_id + count,
        )
        return updated, new

    def needs_rotation(self, now_ms: int) -> bool:
        return now_ms - self.current_signed_pre_key.created_ms >= SPK_ROTATION_MS

    def with_rotated_signed_pre_key(
        self, now_ms: int, generate_dh: GenerateDH = X25519PrivateKey.generate
    ) -> tuple[DeviceKeys, SignedPreKey]:
        """New current SPK; the old one is retired and kept for SPK_RETENTION (s4.5)."""
        if self.next_spk_id > U32_MAX:
            raise DecodeError("signed pre key ids exhausted")
        pair = DHKeyPair.generate(generate_dh)
        new = SignedPreKey(
            self.next_spk_id, pair, sign_signed_pre_key(self.identity, pair.public), now_ms
        )
        retired = tuple(
            replace(k, retired_ms=now_ms) if k.retired_ms is None else k
            for k in self.signed_pre_keys
        )
        return replace(self, signed_pre_keys=(*retired, new), next_spk_id=new.key_id + 1), new

    def after_prekey_message(self, spk_id: int, ek: DHPublicKey, opk_id: int | None) -> DeviceKeys:
        """s7.4 step 7: delete the used OPK and record (spk_id, ek)."""
        opks = self.one_time_pre_keys
        if opk_id is not None:
            opks = tuple(k for k in opks if k.key_id != opk_id)
        return replace(
            self, one_time_pre_keys=opks, seen_prekeys=self.seen_prekeys | {(spk_id, ek.data)}
        )

    def expired(self, now_ms: int) -> DeviceKeys:
        """Delete SPKs retired longer than SPK_RETENTION ago, with their replay records."""
        keep = tuple(
            k
            for k in self.signed_pre_keys
            if k.retired_ms is None or now_ms - k.retired_ms < SPK_RETENTION_MS
        )
        ids = {k.key_id for k in keep}
        seen = frozenset(s for s in self.seen_prekeys if s[0] in ids)
        if len(keep) == len(self.signed_pre_keys) and seen == self.seen_prekeys:
            return self
        return replace(self, signed_pre_keys=keep, seen_prekeys=seen)

    # --- serialisation -------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "v": 1,
            "address": self.address.to_dict(),
            "identity": b64u_encode(self.identity.to_bytes()),
            "signed_pre_keys": [
                {
                    "id": k.key_id,
                    "priv": b64u_encode(k.key_pair.private),
                    "sig": b64u_encode(k.signature),
                    "created_ms": k.created_ms,
                    **({"retired_ms": k.retired_ms} if k.retired_ms is not None else {}),
                }
                for k in self.signed_pre_keys
            ],
            "one_time_pre_keys": [
                {"id": k.key_id, "priv": b64u_encode(k.key_pair.private)}
                for k in self.one_time_pre_keys
            ],
            "seen_prekeys": [[i, b64u_encode(ek)] for i, ek in sorted(self.seen_prekeys)],
            "next_spk_id": self.next_spk_id,
            "next_opk_id": self.next_opk_id,
        }

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any]) -> DeviceKeys:
        obj = require_object(obj, "device keys")
        if obj.get("v") != 1:
            raise DecodeError("unsupported device keys version")
        lists = [obj.get(k) for k in ("signed_pre_keys", "one_time_pre_keys", "seen_prekeys")]
        if not all(isinstance(x, list) for x in lists):
            raise DecodeError("invalid device keys")
        spks, opks, seen = lists
        seen_set = set()
        for entry in seen:
            if not isinstance(entry, list) or len(entry) != 2:
                raise DecodeError("invalid replay record")
            ek = DHPublicKey(get_bytes({"ek": entry[1]}, "ek", KEY_LEN))
            seen_set.add((get_int({"id": entry[0]}, "id"), ek.data))
        return cls(
            address=DeviceAddress.from_dict(obj.get("address")),
            identity=IdentityKeyPair.from_bytes(get_bytes(obj, "identity", 2 * KEY_LEN)),
            signed_pre_keys=tuple(
                SignedPreKey(
                    get_int(k, "id"),
                    DHKeyPair(get_bytes(k, "priv", KEY_LEN)),
                    get_bytes(k, "sig", SIGNATURE_LEN),
                    get_int(k, "created_ms", hi=_MAX_MS),
                    get_int(k, "retired_ms", hi=_MAX_MS, optional=True),
                )
                for k in map(require_object, spks)
            ),
            one_time_pre_keys=tuple(
                OneTimePreKey(get_int(k, "id"), DHKeyPair(get_bytes(k, "priv", KEY_LEN)))
                for k in map(require_object, opks)
            ),
            seen_prekeys=frozenset(seen_set),
            next_spk_id=get_int(obj, "next_spk_id", hi=U32_MAX + 1),
            next_opk_id=get_int(obj, "next_opk_id", hi=U32_MAX + 1),
        )

    def to_bytes(self) -> bytes:
        return dump_json(self.to_dict())

    @classmethod
    def from_bytes(cls, data: bytes) -> DeviceKeys:
        return cls.from_dict(load_json_object(data))
