"""The application's error tree. Each error has an HTTP status and a stable snake_case code.

Services raise these; one handler in ``app.py`` renders them in the envelope. No web imports here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar


class AppError(Exception):
    status_code: ClassVar[int] = 400
    default_code: ClassVar[str] = "bad_request"
    default_message: ClassVar[str] = "The request could not be processed."
    # Commit the transaction's changes even though the request fails.
    keep_changes: ClassVar[bool] = False

    def __init__(
        self,
        message: str | None = None,
        *,
        code: str | None = None,
        details: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.message = message or self.default_message
        self.code = code or self.default_code
        self.details = details
        self.headers = dict(headers or {})
        super().__init__(self.message)


class InvalidInput(AppError):
    status_code = 400
    default_code = "invalid_input"
    default_message = "The request is not valid."


class Unauthenticated(AppError):
    status_code = 401
    default_code = "unauthenticated"
    default_message = "Authentication is required."

    def __init__(self, message: str | None = None, *, code: str | None = None) -> None:
        super().__init__(message, code=code, headers={"WWW-Authenticate": "Bearer"})


class PermissionDenied(AppError):
    status_code = 403
    default_code = "forbidden"
    default_message = "You are not allowed to do this."


class NotFound(AppError):
    status_code = 404
    default_code = "not_found"
    default_message = "Not found."


class Conflict(AppError):
    status_code = 409
    default_code = "conflict"
    default_message = "This conflicts with the current state."


class PayloadTooLarge(AppError):
    status_code = 413
    default_code = "payload_too_large"
    default_message = "The request body is too large."


class RateLimited(AppError):
    status_code = 429
    default_code = "rate_limited"
    default_message = "Too many requests. Try again later."

    def __init__(
        self, message: str | None = None, *, retry_after: int, code: str | None = None
    ) -> None:
        self.retry_after = max(1, retry_after)
        super().__init__(
            message,
            code=code,
            details={"retry_after": self.retry_after},
            headers={"Retry-After": str(self.retry_after)},
        )


class UpstreamUnavailable(AppError):
    status_code = 502
    default_code = "upstream_unavailable"
    default_message = "A service this server depends on is unavailable."


class ServiceUnavailable(AppError):
    status_code = 503
    default_code = "service_unavailable"
    default_message = "The service is not available right now."
