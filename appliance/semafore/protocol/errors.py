"""Protocol errors: one base class, a few kinds.

Messages are fixed strings. They never carry key material, plaintext, or anything that would
tell an attacker *why* an authenticated operation failed.
"""


class ProtocolError(Exception):
    """Base class of every error raised by semafore.protocol."""


class DecodeError(ProtocolError):
    """Input is malformed: encoding, length, JSON shape, version or identifier rules."""


class InvalidKey(ProtocolError):
    """A public key is unacceptable (s4.4), or a key agreement produced the all-zero output."""


class InvalidSignature(ProtocolError):
    """An Ed25519 signature (identity binding or signed pre key) does not verify."""


class DecryptionFailed(ProtocolError):
    """Authenticated decryption failed. Deliberately one error, whatever the cause."""


class DuplicateMessage(ProtocolError):
    """The message was already received (or the pre-key message was already processed)."""


class TooManySkipped(ProtocolError):
    """The message would skip more than MAX_SKIP message keys in one chain."""


class UnknownPreKey(ProtocolError):
    """A pre-key message names a signed or one-time pre key this device does not hold."""


class NoSession(ProtocolError):
    """There is no usable session with the remote device."""


class UntrustedIdentity(ProtocolError):
    """Sending is blocked until the user confirms a changed identity of a verified contact."""


class UnknownIdentity(ProtocolError):
    """No identity is recorded for the given contact or device."""


class SessionExhausted(ProtocolError):
    """A message counter is about to overflow; the session must be replaced by a new X3DH."""
