"""Who is calling an admin route: :class:`AdminPrincipal`, and the scopes API tokens can carry.

An admin session (phone OTP + TOTP) may do everything an admin may do in their organisation;
an API token only what its scopes allow, and never manage tokens or sign-in itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# What API tokens may be granted. Admin routes name one of these in admin_principal().
SCOPES: frozenset[str] = frozenset({
    "org:read",
    "members:read",
    "members:write",
    "devices:read",
    "devices:write",
    "audit:read",
})

Via = Literal["session", "api_token"]


@dataclass(frozen=True, slots=True)
class AdminPrincipal:
    """An admin of ``org_id`` (member ``member_id``), by session or API token."""

    org_id: str
    member_id: str
    via: Via
    scopes: frozenset[str]
    credential_id: str  # the session id or the API token id (never the secret)
    reauthenticated_at: int | None = None  # last second-factor proof (sessions only)

    @property
    def actor(self) -> str:
        """How the audit log names this caller."""
        if self.via == "session":
            return f"member:{self.member_id}"
        return f"token:{self.credential_id}"

    def has_scope(self, scope: str) -> bool:
        if scope not in SCOPES:
            raise ValueError(f"unknown admin scope {scope!r}")  # a programming error
        return scope in self.scopes

    def signed_in_recently(self, now: float, within_seconds: int) -> bool:
        """True for a session whose second factor was proven in the last ``within_seconds``."""
        return self.reauthenticated_at is not None and now - self.reauthenticated_at < (
            within_seconds
        )
