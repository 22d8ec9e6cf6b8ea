"""The one place that renders response bodies, per ``CONTRACT.md``.

Success: ``{"success": true, "data": ..., "message": ...}``.
Error: ``{"success": false, "message": str, "code": str, "details"?: ..., "request_id"?: str}``.
Never an ``errors`` key: the app crashes on it.
"""

from __future__ import annotations

from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, Field

T = TypeVar("T")


class Envelope(BaseModel, Generic[T]):
    """A successful answer."""

    success: Literal[True] = True
    data: T
    message: str | None = None


class ErrorBody(BaseModel):
    """Every error answer, whatever its status."""

    success: Literal[False] = False
    message: str = Field(description="Human text, safe to show to the user.")
    code: str = Field(description="Stable snake_case code for programs to branch on.")
    details: Any = Field(default=None, description="Field errors or other structured detail.")
    request_id: str | None = Field(default=None, description="Quote it when reporting a problem.")


def ok(data: T, message: str | None = None) -> Envelope[T]:
    # Not Envelope[T](...): subscripting a generic model costs a lookup on every call, and the
    # route's response model checks the answer anyway.
    return Envelope(data=data, message=message)


def error_body(
    message: str, code: str, *, details: Any = None, request_id: str | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {"success": False, "message": message, "code": code}
    if details is not None:
        body["details"] = details
    if request_id is not None:
        body["request_id"] = request_id
    return body


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries documenting error answers in the envelope."""
    descriptions = {
        400: "Invalid input",
        401: "Missing, malformed, expired or revoked credentials",
        403: "Authenticated but not allowed",
        404: "Not found (another user's object is also a 404)",
        409: "Conflict with the current state",
        413: "Request body too large",
        422: "Request validation failed; field errors under `details`",
        429: "Rate limited; see `Retry-After`",
        502: "An upstream service failed",
        503: "Not ready",
    }
    return {
        status: {"model": ErrorBody, "description": descriptions.get(status, "Error")}
        for status in statuses
    }
