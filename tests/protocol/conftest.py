"""Shared fixtures: the known-answer vectors and devices built from their fixed keys."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from semafore.protocol import DeviceAddress, DeviceKeys, DHKeyPair, IdentityKeyPair
from semafore.protocol.binding import sign_signed_pre_key
from semafore.protocol.prekeys import OneTimePreKey, SignedPreKey
from semafore.protocol.ratchet import RatchetState

VECTORS_PATH = Path(__file__).resolve().parents[1] / "vectors" / "protocol-v1.json"


@pytest.fixture(scope="session")
def vectors() -> dict[str, Any]:
    return json.loads(VECTORS_PATH.read_text(encoding="utf-8"))


class KeyQueue:
    """A GENERATE_DH replacement handing out fixed keys in order (PROTOCOL.md s11)."""

    def __init__(self, hex_keys: Iterable[str]) -> None:
        self._keys = [bytes.fromhex(h) for h in hex_keys]
        self.used = 0

    def __call__(self) -> X25519PrivateKey:
        if self.used >= len(self._keys):
            raise AssertionError("fixed key queue exhausted")
        key = X25519PrivateKey.from_private_bytes(self._keys[self.used])
        self.used += 1
        return key


@pytest.fixture
def key_queue() -> Callable[[Iterable[str]], KeyQueue]:
    return KeyQueue


def _identity(party: dict[str, Any]) -> IdentityKeyPair:
    return IdentityKeyPair(
        DHKeyPair(bytes.fromhex(party["ik_priv"])), bytes.fromhex(party["isk_seed"])
    )


def _bob_device(vectors: dict[str, Any]) -> DeviceKeys:
    bob = vectors["bob"]
    identity = _identity(bob)
    spk = DHKeyPair(bytes.fromhex(bob["spk_priv"]))
    opk = OneTimePreKey(bob["opk_id"], DHKeyPair(bytes.fromhex(bob["opk_priv"])))
    return DeviceKeys(
        DeviceAddress(bob["user_id"], bob["device_id"]),
        identity,
        (SignedPreKey(bob["spk_id"], spk, sign_signed_pre_key(identity, spk.public), 0),),
        (opk,),
        next_spk_id=bob["spk_id"] + 1,
        next_opk_id=bob["opk_id"] + 1,
    )


def _other_device(party: dict[str, Any]) -> DeviceKeys:
    # Alice needs a signed pre key of her own only to be a complete device; the vectors do
    # not use it, so it is derived from a label like the vectors' other fixed keys.
    identity = _identity(party)
    spk = DHKeyPair(
        hashlib.sha256(f"{party['user_id']}/{party['device_id']} spk".encode()).digest()
    )
    return DeviceKeys(
        DeviceAddress(party["user_id"], party["device_id"]),
        identity,
        (SignedPreKey(1, spk, sign_signed_pre_key(identity, spk.public), 0),),
        next_spk_id=2,
    )


@pytest.fixture
def bob_device(vectors: dict[str, Any]) -> DeviceKeys:
    return _bob_device(vectors)


@pytest.fixture
def alice_device(vectors: dict[str, Any]) -> DeviceKeys:
    return _other_device(vectors["alice"])


@pytest.fixture
def alice2_device(vectors: dict[str, Any]) -> DeviceKeys:
    return _other_device(vectors["alice_second_device"])


def _snapshot(state: RatchetState) -> dict[str, Any]:
    """A ratchet state in the vectors' `state_after` form."""
    return {
        "RK": state.rk.hex(),
        "CKs": state.cks.hex() if state.cks is not None else None,
        "CKr": state.ckr.hex() if state.ckr is not None else None,
        "DHs_pub": state.dhs.public.data.hex(),
        "DHr": state.dhr.data.hex() if state.dhr is not None else None,
        "Ns": state.ns,
        "Nr": state.nr,
        "PN": state.pn,
        "skipped": [[s.dh.data.hex(), s.n, s.mk.hex()] for s in state.skipped],
    }


@pytest.fixture
def snapshot() -> Callable[[RatchetState], dict[str, Any]]:
    return _snapshot


class Clock:
    def __init__(self, start_ms: int = 1_700_000_000_000) -> None:
        self.now = start_ms

    def __call__(self) -> int:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()
