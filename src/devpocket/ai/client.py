"""OpenRouter, the LLM vendor. Users bring their own key (BYOK): this client sends it, then forgets.

The key travels only in the ``Authorization`` header: it is never stored, logged or put in an
error, and upstream text passed on to callers is scrubbed of anything that looks like a key.
Failures become the ``Ai*`` errors of ``errors.py``. A rejected key is a 400 ``ai_key_invalid``,
never a 401, because the app reads 401 as its own session expiring.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio
import httpx
import structlog
from pydantic import BaseModel, ValidationError

from devpocket.ai.errors import (
    AiBadOutput,
    AiInsufficientCredits,
    AiKeyInvalid,
    AiModelUnknown,
    AiRequestRejected,
    AiUpstreamTimeout,
    AiUpstreamUnavailable,
    _error_for_status,
    _error_from_body,
    _redact,
    _retry_after,
    _upstream_message,
)
from devpocket.ai.wire import (
    KeyInfo,
    ModelInfo,
    StreamEvent,
    Usage,
    _Completion,
    _describe,
    _events,
    _KeyAnswer,
    _ModelsAnswer,
    _price,
    _response_format,
    _strip_fences,
    _usage,
    _Wire,
)
from devpocket.errors import AppError

__all__ = [
    "AiBadOutput",
    "AiInsufficientCredits",
    "AiKeyInvalid",
    "AiModelUnknown",
    "AiRequestRejected",
    "AiUpstreamTimeout",
    "AiUpstreamUnavailable",
    "KeyInfo",
    "ModelInfo",
    "OpenRouterClient",
    "StreamEvent",
    "Usage",
]

log = structlog.stdlib.get_logger(__name__)

T = TypeVar("T", bound=BaseModel)
Sleep = Callable[[float], Awaitable[None]]

CONNECT_TIMEOUT_SECONDS = 5.0
FIRST_BACKOFF_SECONDS = 0.5
# No wait between attempts exceeds this; a longer Retry-After ends the retries instead.
MAX_WAIT_SECONDS = 10.0
JSON_ATTEMPTS = 2

# Printable ASCII only: anything else could not go in a header, and httpx would fail obscurely.
_KEY_SHAPE = re.compile(r"[\x21-\x7e]{1,512}")
_FORMAT_REJECTED = re.compile(
    r"response_format|json_schema|structured output|requested parameters", re.IGNORECASE
)

REPAIR_PROMPT = (
    "Your previous answer was not valid: {problem}. Answer again with only the JSON object, "
    "matching the requested schema exactly, with no other text."
)


@dataclass(frozen=True)
class _Failure:
    error: AppError
    retryable: bool
    retry_after: float | None = None


W = TypeVar("W", bound=_Wire)


def _parse(shape: type[W], data: Any) -> W:
    try:
        if isinstance(data, str):
            return shape.model_validate_json(data)
        return shape.model_validate(data)
    except ValidationError as exc:
        log.warning("openrouter.unexpected_answer", shape=shape.__name__, errors=exc.error_count())
        raise AiUpstreamUnavailable("OpenRouter sent an unexpected answer.") from exc


class OpenRouterClient:
    """One per process, sharing the app's HTTP client; every call takes the user's key."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        base_url: str,
        app_url: str = "https://devpocket.app",
        app_title: str = "DevPocket",
        timeout: float = 30.0,
        max_attempts: int = 3,
        sleep: Sleep = anyio.sleep,
    ) -> None:
        self._http = http
        self._base_url = base_url.rstrip("/")
        self._attribution = {"HTTP-Referer": app_url, "X-Title": app_title}
        self._seconds = timeout
        self._timeout = httpx.Timeout(timeout, connect=min(CONNECT_TIMEOUT_SECONDS, timeout))
        self._max_attempts = max(1, max_attempts)
        self._sleep = sleep

    async def key_info(self, api_key: str) -> KeyInfo:
        data = _parse(_KeyAnswer, await self._call("GET", "/key", api_key)).data
        return KeyInfo(
            label=data.label,
            limit=data.limit,
            usage=data.usage,
            limit_remaining=data.limit_remaining,
            is_free_tier=data.is_free_tier,
        )

    async def models(self) -> list[ModelInfo]:
        answer = _parse(_ModelsAnswer, await self._call("GET", "/models", None))
        return [
            ModelInfo(
                id=model.id,
                name=model.name or model.id,
                context_length=model.context_length,
                prompt_price=_price(model.pricing.prompt),
                completion_price=_price(model.pricing.completion),
            )
            for model in answer.data
        ]

    async def chat_json(
        self,
        api_key: str,
        *,
        model: str,
        messages: list[dict[str, str]],
        schema: type[T],
        max_tokens: int = 800,
    ) -> tuple[T, Usage]:
        """The model's answer validated as ``schema``, and the usage of all attempts.

        An answer that does not validate is sent back once with the validation error. The
        messages should ask for JSON themselves: models that refuse ``response_format`` get
        the request again without it.
        """
        conversation = list(messages)
        response_format: dict[str, Any] | None = _response_format(schema)
        total: Usage | None = None
        for attempt in range(1, JSON_ATTEMPTS + 1):
            body = {"model": model, "messages": conversation, "max_tokens": max_tokens}
            content, usage, response_format = await self._complete(api_key, body, response_format)
            total = usage if total is None else total + usage
            try:
                return schema.model_validate_json(_strip_fences(content)), total
            except ValidationError as exc:
                problem = _describe(exc)
            log.info("openrouter.bad_output", model=model, attempt=attempt, problem=problem)
            conversation = [
                *conversation,
                {"role": "assistant", "content": content},
                {"role": "user", "content": REPAIR_PROMPT.format(problem=problem)},
            ]
        raise AiBadOutput(usage=total)

    async def chat_stream(
        self,
        api_key: str,
        *,
        model: str,
        messages: list[dict[str, str]],
        max_tokens: int = 800,
    ) -> AsyncIterator[StreamEvent]:
        """Text deltas as they come, then the usage if OpenRouter reports it.

        Errors before the first byte raise at the first iteration. A caller that stops early
        should close the iterator (``contextlib.aclosing``): it holds a connection.
        """
        body = {
            "model": model,
            "messages": messages,
            "max_tokens": max_tokens,
            "stream": True,
            "usage": {"include": True},
        }
        response = await self._send("POST", "/chat/completions", api_key, body, stream=True)
        try:
            async with aclosing(self._chunks(response, api_key)) as chunks:
                async for chunk in chunks:
                    for event in _events(chunk):
                        yield event
        finally:
            await response.aclose()

    async def _complete(
        self, api_key: str, body: dict[str, Any], response_format: dict[str, Any] | None
    ) -> tuple[str, Usage, dict[str, Any] | None]:
        """One completion; without ``response_format`` if the model refuses it (which is then
        returned as None so that the repair attempt does not try it again)."""
        body = {**body, "usage": {"include": True}}
        if response_format is not None:
            try:
                content, usage = await self._chat(
                    api_key, {**body, "response_format": response_format}
                )
            except (AiRequestRejected, AiModelUnknown) as exc:
                if not _FORMAT_REJECTED.search(exc.message):
                    raise
                log.info("openrouter.response_format_refused", model=body.get("model"))
            else:
                return content, usage, response_format
        content, usage = await self._chat(api_key, body)
        return content, usage, None

    async def _chat(self, api_key: str, body: dict[str, Any]) -> tuple[str, Usage]:
        completion = _parse(
            _Completion, await self._call("POST", "/chat/completions", api_key, body)
        )
        content = completion.choices[0].message.content if completion.choices else None
        return content or "", _usage(completion.model, completion.usage)

    async def _call(
        self, method: str, path: str, api_key: str | None, body: dict[str, Any] | None = None
    ) -> Any:
        response = await self._send(method, path, api_key, body)
        try:
            data = response.json()
        except ValueError as exc:
            raise AiUpstreamUnavailable("OpenRouter sent an unreadable answer.") from exc
        # Errors that happen while the model works arrive with status 200.
        if isinstance(data, dict) and isinstance(data.get("error"), dict):
            raise _error_from_body(data["error"], api_key)
        return data

    async def _send(
        self,
        method: str,
        path: str,
        api_key: str | None,
        body: dict[str, Any] | None,
        *,
        stream: bool = False,
    ) -> httpx.Response:
        """A successful response, after retrying what is worth retrying."""
        request = self._http.build_request(
            method,
            self._base_url + path,
            headers=self._headers(api_key),
            json=body,
            timeout=self._timeout,
        )
        # A read timeout on a POST may mean the model is still working (and billing): no retry.
        retry_timeouts = method == "GET"
        for attempt in range(1, self._max_attempts + 1):
            outcome = await self._attempt(request, api_key, stream, retry_timeouts)
            if isinstance(outcome, httpx.Response):
                return outcome
            wait = self._wait(outcome, attempt)
            if wait is None:
                upstream_fault = isinstance(outcome.error, AiUpstreamUnavailable)
                (log.warning if upstream_fault else log.info)(
                    "openrouter.failed", path=path, attempt=attempt, code=outcome.error.code
                )
                raise outcome.error
            log.info("openrouter.retrying", path=path, attempt=attempt, wait=wait)
            await self._sleep(wait)
        raise AssertionError("the last attempt returns or raises")  # pragma: no cover

    async def _attempt(
        self, request: httpx.Request, api_key: str | None, stream: bool, retry_timeouts: bool
    ) -> httpx.Response | _Failure:
        try:
            # httpx bounds each network step; this bounds a slow trickle up to the headers (and
            # the whole body unless streaming).
            async with asyncio.timeout(self._seconds + CONNECT_TIMEOUT_SECONDS):
                response = await self._http.send(request, stream=stream)
                if response.is_success:
                    return response
                try:
                    await response.aread()
                finally:
                    await response.aclose()
        except httpx.ConnectTimeout:
            return _Failure(AiUpstreamTimeout(), retryable=True)
        except (httpx.TimeoutException, TimeoutError):
            return _Failure(AiUpstreamTimeout(), retryable=retry_timeouts)
        except httpx.TransportError as exc:
            log.info("openrouter.unreachable", error=type(exc).__name__)
            return _Failure(AiUpstreamUnavailable(), retryable=True)
        status = response.status_code
        retry_after = _retry_after(response.headers)
        error = _error_for_status(
            status, _redact(_upstream_message(response), api_key), retry_after
        )
        return _Failure(error, retryable=status == 429 or status >= 500, retry_after=retry_after)

    def _wait(self, failure: _Failure, attempt: int) -> float | None:
        """Seconds to wait before the next attempt, or None to give up."""
        if not failure.retryable or attempt >= self._max_attempts:
            return None
        if failure.retry_after is not None:
            return failure.retry_after if failure.retry_after <= MAX_WAIT_SECONDS else None
        return min(FIRST_BACKOFF_SECONDS * 2.0 ** (attempt - 1), MAX_WAIT_SECONDS)

    def _headers(self, api_key: str | None) -> dict[str, str]:
        if api_key is None:
            return dict(self._attribution)
        if not _KEY_SHAPE.fullmatch(api_key):
            raise AiKeyInvalid()
        return {**self._attribution, "Authorization": f"Bearer {api_key}"}

    async def _chunks(
        self, response: httpx.Response, api_key: str
    ) -> AsyncGenerator[_Completion, None]:
        """The stream's data events until ``[DONE]``. Keep-alive comments do not count as
        progress: the stream times out when no data came for the timeout."""
        lines = response.aiter_lines()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._seconds
        while (line := await _next_line(lines, deadline)) is not None:
            if not line.startswith("data:"):
                continue  # comments (": OPENROUTER PROCESSING"), blank separators, other fields
            data = line.removeprefix("data:").strip()
            if data == "[DONE]":
                return
            deadline = loop.time() + self._seconds
            chunk = _parse(_Completion, data)
            if chunk.error is not None:
                raise _error_from_body(chunk.error, api_key)
            yield chunk


async def _next_line(lines: AsyncIterator[str], deadline: float) -> str | None:
    try:
        async with asyncio.timeout_at(deadline):
            return await anext(lines)
    except StopAsyncIteration:
        return None
    except (TimeoutError, httpx.TimeoutException) as exc:
        raise AiUpstreamTimeout() from exc
    except httpx.TransportError as exc:
        raise AiUpstreamUnavailable("The connection to OpenRouter broke off.") from exc
