"""Errors of the bundled client. Each has a stable `code` and a one-line message for the CLI.

Messages never carry secrets, tokens, phone numbers, codes or message content.
"""

from __future__ import annotations

from semafore.errors import SemaforeError


class ClientError(SemaforeError):
    """Base of every error the client raises on purpose."""

    code = "client_error"
    exit_code = 1


class KeystoreError(ClientError):
    code = "keystore_error"


class WrongPassphrase(KeystoreError):
    code = "wrong_passphrase"
    exit_code = 3


class KeystoreMissing(KeystoreError):
    code = "not_enrolled"


class KeystoreExists(KeystoreError):
    code = "already_enrolled"


class UntrustedIdentity(ClientError):
    """A verified contact's identity changed (or gained an unverified device): confirm first."""

    code = "identity_changed"
    exit_code = 5


class UnknownContact(ClientError):
    code = "unknown_user"


class UnknownGroup(ClientError):
    code = "unknown_group"


class UploadInProgress(ClientError):
    """Another `send-file` of the same file to the same destination is running."""

    code = "upload_in_progress"


class ServerUnreachable(ClientError):
    code = "network_down"
    exit_code = 6


class ServerError(ClientError):
    """The server refused a request; `code` is the problem document's stable code."""

    code = "server_refused"
    exit_code = 7

    def __init__(
        self,
        message: str,
        *,
        status: int = 0,
        code: str | None = None,
        details: dict[str, object] | None = None,
    ) -> None:
        super().__init__(message, code=code)
        self.status = status
        self.details = details or {}


class NotApproved(ServerError):
    code = "device_pending"
    exit_code = 4


class Unauthorised(ServerError):
    code = "unauthenticated"


class Revoked(ServerError):
    code = "device_revoked"
    exit_code = 8


class StaleDevices(ServerError):
    """409: the set of target devices differs from the server's device lists."""

    code = "stale_devices"


class NotFound(ServerError):
    code = "not_found"


class RateLimited(ServerError):
    code = "rate_limited"


class AttachmentRejected(ClientError):
    code = "attachment_rejected"
