"""Identity binding (s4.2) and signed pre key signature (s4.3)."""

from __future__ import annotations

from .address import DeviceAddress
from .constants import CTX_BINDING, CTX_SPK
from .encoding import u32
from .keys import DHPublicKey, IdentityKeyPair, SigningPublicKey


def binding_message(ik: DHPublicKey, address: DeviceAddress) -> bytes:
    """CTX_BINDING || IK || u32(device_id) || user_id; user_id last so it parses one way."""
    return CTX_BINDING + ik.data + u32(address.device_id) + address.user_id_bytes


def sign_identity_binding(identity: IdentityKeyPair, address: DeviceAddress) -> bytes:
    return identity.sign(binding_message(identity.ik, address))


def verify_identity_binding(
    isk: SigningPublicKey, ik: DHPublicKey, address: DeviceAddress, signature: bytes
) -> None:
    """Raises InvalidSignature unless `isk` signed `ik` for this user and device."""
    isk.verify(signature, binding_message(ik, address))


def spk_message(spk: DHPublicKey) -> bytes:
    """CTX_SPK || SPK. The spk_id is deliberately not signed (s4.3)."""
    return CTX_SPK + spk.data


def sign_signed_pre_key(identity: IdentityKeyPair, spk: DHPublicKey) -> bytes:
    return identity.sign(spk_message(spk))


def verify_signed_pre_key(isk: SigningPublicKey, spk: DHPublicKey, signature: bytes) -> None:
    isk.verify(signature, spk_message(spk))
