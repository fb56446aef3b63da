"""X3DH as fixed by the product specification (PROTOCOL.md s5).

No `F` prefix on the IKM (s5 step 5 deviation), empty salt, info `X3DH session`, and a 72-byte
AD = IK_A || IK_B || u32(dev_A) || u32(dev_B) with the initiator's values first.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .constants import KEY_LEN, X3DH_INFO
from .encoding import u32
from .keys import DHKeyPair, DHPublicKey
from .primitives import hkdf_sha256


def initiator_ikm(
    ik: DHKeyPair,
    ek: DHKeyPair,
    remote_ik: DHPublicKey,
    remote_spk: DHPublicKey,
    remote_opk: DHPublicKey | None,
) -> bytes:
    """DH1 || DH2 || DH3 [|| DH4] from the initiator's side."""
    ikm = ik.exchange(remote_spk) + ek.exchange(remote_ik) + ek.exchange(remote_spk)
    if remote_opk is not None:
        ikm += ek.exchange(remote_opk)
    return ikm


def responder_ikm(
    ik: DHKeyPair,
    spk: DHKeyPair,
    opk: DHKeyPair | None,
    remote_ik: DHPublicKey,
    remote_ek: DHPublicKey,
) -> bytes:
    """The same DH1 || DH2 || DH3 [|| DH4] computed from the responder's private keys."""
    ikm = spk.exchange(remote_ik) + ik.exchange(remote_ek) + spk.exchange(remote_ek)
    if opk is not None:
        ikm += opk.exchange(remote_ek)
    return ikm


def derive_session_secret(ikm: bytes) -> bytes:
    return hkdf_sha256(salt=b"", ikm=ikm, info=X3DH_INFO, length=KEY_LEN)


def associated_data(
    initiator_ik: DHPublicKey,
    responder_ik: DHPublicKey,
    initiator_device_id: int,
    responder_device_id: int,
) -> bytes:
    return (
        initiator_ik.data + responder_ik.data + u32(initiator_device_id) + u32(responder_device_id)
    )


@dataclass(frozen=True)
class X3DHResult:
    session_secret: bytes = field(repr=False)
    associated_data: bytes


def initiate(
    ik: DHKeyPair,
    ek: DHKeyPair,
    own_device_id: int,
    remote_ik: DHPublicKey,
    remote_spk: DHPublicKey,
    remote_opk: DHPublicKey | None,
    remote_device_id: int,
) -> X3DHResult:
    """Initiator computation (s5 steps 4-6). The caller generates `ek` and forgets it after."""
    ikm = initiator_ikm(ik, ek, remote_ik, remote_spk, remote_opk)
    ad = associated_data(ik.public, remote_ik, own_device_id, remote_device_id)
    return X3DHResult(derive_session_secret(ikm), ad)


def respond(
    ik: DHKeyPair,
    spk: DHKeyPair,
    opk: DHKeyPair | None,
    own_device_id: int,
    remote_ik: DHPublicKey,
    remote_ek: DHPublicKey,
    remote_device_id: int,
) -> X3DHResult:
    """Responder computation (s5, responder paragraph)."""
    ikm = responder_ikm(ik, spk, opk, remote_ik, remote_ek)
    ad = associated_data(remote_ik, ik.public, remote_device_id, own_device_id)
    return X3DHResult(derive_session_secret(ikm), ad)
