"""SemaFore protocol v1 (PROTOCOL.md): sans-IO X3DH, Double Ratchet, envelopes, attachments.

Bytes and state in, bytes and new state out: no I/O, no asyncio, and clocks and randomness only
as parameters. Every state object serialises to bytes so a keystore can persist it atomically.
"""

from .address import DeviceAddress
from .attachment import (
    AttachmentDecryptor,
    AttachmentEncryptor,
    AttachmentSecrets,
    decrypt_attachment,
    encrypt_attachment,
)
from .binding import verify_identity_binding, verify_signed_pre_key
from .bundle import Bundle
from .content import AttachmentPointer, Content, GroupRef
from .encoding import b64u_decode, b64u_encode
from .envelope import Envelope, PreKeyBlock, SendRequest
from .errors import (
    DecodeError,
    DecryptionFailed,
    DuplicateMessage,
    InvalidKey,
    InvalidSignature,
    NoSession,
    ProtocolError,
    SessionExhausted,
    TooManySkipped,
    UnknownIdentity,
    UnknownPreKey,
    UntrustedIdentity,
)
from .fingerprint import SafetyNumber, fingerprint_digits, safety_number, user_fingerprint
from .identity import ContactIdentity, IdentityStatus, IdentityStore, KnownDevice
from .keys import DHKeyPair, DHPublicKey, IdentityKeyPair, SigningPublicKey
from .padding import pad, unpad
from .prekeys import DeviceKeys, OneTimePreKey, SignedPreKey
from .ratchet import Header, RatchetState
from .session import Session, SessionRecord
from .session_manager import ReceivedMessage, SessionManager, StateChanges

__all__ = [
    "AttachmentDecryptor",
    "AttachmentEncryptor",
    "AttachmentPointer",
    "AttachmentSecrets",
    "Bundle",
    "ContactIdentity",
    "Content",
    "DHKeyPair",
    "DHPublicKey",
    "DecodeError",
    "DecryptionFailed",
    "DeviceAddress",
    "DeviceKeys",
    "DuplicateMessage",
    "Envelope",
    "GroupRef",
    "Header",
    "IdentityKeyPair",
    "IdentityStatus",
    "IdentityStore",
    "InvalidKey",
    "InvalidSignature",
    "KnownDevice",
    "NoSession",
    "OneTimePreKey",
    "PreKeyBlock",
    "ProtocolError",
    "RatchetState",
    "ReceivedMessage",
    "SafetyNumber",
    "SendRequest",
    "Session",
    "SessionExhausted",
    "SessionManager",
    "SessionRecord",
    "SignedPreKey",
    "SigningPublicKey",
    "StateChanges",
    "TooManySkipped",
    "UnknownIdentity",
    "UnknownPreKey",
    "UntrustedIdentity",
    "b64u_decode",
    "b64u_encode",
    "decrypt_attachment",
    "encrypt_attachment",
    "fingerprint_digits",
    "pad",
    "safety_number",
    "unpad",
    "user_fingerprint",
    "verify_identity_binding",
    "verify_signed_pre_key",
]
