"""How an OpenRouter failure becomes an app error: the ``Ai*`` errors and the status mapping.

A rejected key is a 400 ``ai_key_invalid``, never a 401, because the app reads 401 as its own
session expiring. Upstream text is redacted before it goes into an error. Separate from the
client so that the error vocabulary (which callers catch) reads apart from the HTTP plumbing.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from devpocket.ai.wire import Usage
from devpocket.errors import AppError, RateLimited, UpstreamUnavailable

DEFAULT_RETRY_AFTER_SECONDS = 30
REDACTED = "[redacted]"

_KEY_LIKE = re.compile(r"sk-or-[A-Za-z0-9_\-]+|(?i:bearer)\s+\S+")
_MODEL_UNKNOWN = re.compile(
    r"not a valid model|no endpoints found for|model not found|unknown model|"
    r"model\b.{0,100}\bdoes not exist",
    re.IGNORECASE,
)
# 403 also means "your input was flagged": the key is fine then.
_MODERATION = re.compile(r"flagged|moderation|guardrail", re.IGNORECASE)


class AiKeyInvalid(AppError):
    status_code = 400
    default_code = "ai_key_invalid"
    default_message = "OpenRouter rejected this API key. Check the key in your settings."


class AiInsufficientCredits(AppError):
    status_code = 402
    default_code = "ai_insufficient_credits"
    default_message = "The OpenRouter account has too few credits for this request."


class AiModelUnknown(AppError):
    status_code = 400
    default_code = "ai_model_unknown"
    default_message = "OpenRouter does not offer this model."


class AiRequestRejected(AppError):
    status_code = 400
    default_code = "ai_request_rejected"
    default_message = "OpenRouter rejected the request."


class AiBadOutput(AppError):
    status_code = 502
    default_code = "ai_bad_output"
    default_message = "The model did not answer in the expected format. Try again or another model."

    def __init__(self, message: str | None = None, *, usage: Usage | None = None) -> None:
        # The failed attempts still cost money: callers may want to account for them.
        self.usage = usage
        super().__init__(message)


class AiUpstreamUnavailable(UpstreamUnavailable):
    status_code = 502
    default_code = "ai_upstream_unavailable"
    default_message = "OpenRouter is not reachable right now. Try again shortly."


class AiUpstreamTimeout(AiUpstreamUnavailable):
    status_code = 504
    default_message = "OpenRouter did not answer in time. Try again shortly."


def _error_for_status(status: int, message: str, retry_after: float | None = None) -> AppError:
    """The app's error for an OpenRouter error status; ``message`` must already be redacted."""
    if status == 401 or (status == 403 and not _MODERATION.search(message)):
        return AiKeyInvalid()
    if status == 402:
        return AiInsufficientCredits()
    if status == 429:
        seconds = DEFAULT_RETRY_AFTER_SECONDS if retry_after is None else math.ceil(retry_after)
        return RateLimited(
            "OpenRouter is rate limiting this key. Try again later.",
            code="ai_upstream_rate_limited",
            retry_after=seconds,
        )
    if status in (400, 404) and _MODEL_UNKNOWN.search(message):
        return AiModelUnknown(message or None)
    if status == 408:
        return AiUpstreamTimeout()
    if status >= 500:
        return AiUpstreamUnavailable()
    return AiRequestRejected(message or None)


def _error_from_body(error: Mapping[str, Any], api_key: str | None) -> AppError:
    code = error.get("code")
    message = error.get("message")
    status = code if isinstance(code, int) and 400 <= code <= 599 else 502
    return _error_for_status(status, _redact(message if isinstance(message, str) else "", api_key))


def _upstream_message(response: httpx.Response) -> str:
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        return ""
    message = error.get("message") if isinstance(error, dict) else None
    return message if isinstance(message, str) else ""


def _redact(text: str, api_key: str | None) -> str:
    """Upstream text fit to pass on: no key in it (whole, so shortened only afterwards)."""
    if api_key:
        text = text.replace(api_key, REDACTED)
    return _KEY_LIKE.sub(REDACTED, text)[:500]


def _retry_after(headers: httpx.Headers) -> float | None:
    """``Retry-After`` in seconds from now: a number of seconds or an HTTP date."""
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        # A date without a zone is not an HTTP date; rather no hint than a wrong one.
        seconds = when.timestamp() - time.time() if when.tzinfo else math.nan
    return max(0.0, seconds) if math.isfinite(seconds) else None
