"""Errors the use cases raise. Each has a stable ``code`` and an HTTP-agnostic ``kind``;
the web layer maps kinds to status codes (see semafore.web.problems)."""

from __future__ import annotations

from semafore.errors import SemaforeError


class ServiceError(SemaforeError):
    """Base of every error a service raises on purpose."""

    kind: str = "invalid"
    code = "invalid_request"

    def __init__(
        self, message: str, *, code: str | None = None, details: dict[str, object] | None = None
    ) -> None:
        super().__init__(message, code=code)
        # Extra machine-readable members for the problem document (never secrets).
        self.details = details or {}


class InvalidInput(ServiceError):
    kind = "invalid"
    code = "invalid_request"


class Unauthenticated(ServiceError):
    kind = "unauthenticated"
    code = "unauthenticated"


class Forbidden(ServiceError):
    kind = "forbidden"
    code = "forbidden"


class NotFound(ServiceError):
    kind = "not_found"
    code = "not_found"


class Conflict(ServiceError):
    kind = "conflict"
    code = "conflict"


class LimitReached(ServiceError):
    """A quota or cap (member limit, device cap, queue cap): retrying will not help."""

    kind = "limit"
    code = "limit_reached"


class TooLarge(ServiceError):
    kind = "too_large"
    code = "too_large"


class RateLimited(ServiceError):
    kind = "rate_limited"
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int, code: str | None = None) -> None:
        super().__init__(message, code=code, details={"retry_after": retry_after})
        self.retry_after = retry_after


class Unavailable(ServiceError):
    kind = "unavailable"
    code = "unavailable"
