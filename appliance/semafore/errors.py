"""The root of every error SemaFore raises on purpose.

Each layer has one base derived from :class:`SemaforeError` (``StorageError``,
``ServiceError``, ``ConfigError``, ...). Every error carries a stable machine-readable
``code``; only the web error middleware turns errors into HTTP responses. Messages must never
contain secrets, codes, tokens, keys, phone numbers or message content.
"""

from __future__ import annotations


class SemaforeError(Exception):
    """Base of all deliberate SemaFore errors."""

    code: str = "error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code

    @property
    def message(self) -> str:
        return str(self)
