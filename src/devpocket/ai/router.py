"""``/api/v1/ai``: command help with the user's own OpenRouter key (``X-OpenRouter-Key``)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import Header, Request
from fastapi.responses import StreamingResponse

from devpocket.ai import prompts, service
from devpocket.ai.client import StreamEvent
from devpocket.ai.risk import classify
from devpocket.ai.schemas import (
    ErrorAnswer,
    ExplainAnswer,
    ExplainBlockRequest,
    ExplainCommandRequest,
    ExplainErrorRequest,
    KeyCheck,
    ModelList,
    SuggestAnswer,
    SuggestCommandRequest,
    ValidateKeyRequest,
)
from devpocket.ai.streaming import open_stream, sse_body
from devpocket.api import API_PREFIX, make_router
from devpocket.auth.deps import Authenticated, CurrentAuth
from devpocket.db.session import DbSession
from devpocket.deps import Ctx
from devpocket.envelope import Envelope, error_responses, ok
from devpocket.errors import InvalidInput

router = make_router(
    f"{API_PREFIX}/ai", "ai", responses=error_responses(400, 401, 402, 403, 422, 429, 502)
)
OpenRouterKey = Annotated[
    str | None,
    Header(
        alias="X-OpenRouter-Key",
        description="Your OpenRouter key. Never stored, logged or cached.",
    ),
]
_STREAMS = {"text/event-stream": {"schema": {"type": "string"}, "description": "SSE events"}}


def _caller(
    request: Request, auth: Authenticated, header: str | None, body: str | None
) -> service.Caller:
    if "api_key" in request.query_params or "apiKey" in request.query_params:
        # Query strings end up in proxy and server logs; refuse rather than use it.
        raise InvalidInput(
            "Send the OpenRouter key in the X-OpenRouter-Key header, never in the URL.",
            code="ai_key_in_query",
        )
    key = service.require_key(header, body)
    return service.Caller(auth.user_id, auth.profile.subscription_tier, key)


def _wants_stream(request: Request) -> bool:
    return "text/event-stream" in request.headers.get("accept", "")


@router.post("/validate-key", summary="Check an OpenRouter key: valid, label, credit and usage")
async def validate_key(
    request: Request, auth: CurrentAuth, ctx: Ctx, key: OpenRouterKey = None,
    data: ValidateKeyRequest | None = None,
) -> Envelope[KeyCheck]:  # fmt: skip
    caller = _caller(request, auth, key, data.api_key if data else None)
    return ok(await service.check_key(ctx, caller.api_key))


@router.get("/models", summary="OpenRouter's models with context length and prices (1 h cache)")
async def models(auth: CurrentAuth, ctx: Ctx) -> Envelope[ModelList]:
    return ok(await service.list_models(ctx))


@router.post("/suggest-command", summary="Commands for a request in plain language, with risks")
async def suggest_command(
    request: Request, data: SuggestCommandRequest, auth: CurrentAuth, ctx: Ctx,
    key: OpenRouterKey = None,
) -> Envelope[SuggestAnswer]:  # fmt: skip
    caller = _caller(request, auth, key, data.api_key)
    return ok(await service.suggest(ctx, caller, data))


@router.post(
    "/explain-command",
    response_model=Envelope[ExplainAnswer],
    responses={200: {"content": _STREAMS}},
    summary="What a command does, part by part, with its risks (SSE with Accept: event-stream)",
)
async def explain_command(
    request: Request, data: ExplainCommandRequest, auth: CurrentAuth, ctx: Ctx,
    key: OpenRouterKey = None,
) -> Any:  # fmt: skip
    caller = _caller(request, auth, key, data.api_key)
    if not _wants_stream(request):
        return ok(await service.explain(ctx, caller, data))
    risk = classify(data.command)
    messages = prompts.explain_messages(data.command, stream=True)
    extra = {"risk": risk.level.value, "risk_reasons": list(risk.reasons)}
    return await _stream(ctx, caller, data.model, messages, extra)


@router.post(
    "/explain-error",
    response_model=Envelope[ErrorAnswer],
    responses={200: {"content": _STREAMS}},
    summary="Likely cause of a failed command and fixes (SSE with Accept: text/event-stream)",
)
async def explain_error(
    request: Request, data: ExplainErrorRequest, auth: CurrentAuth, ctx: Ctx,
    key: OpenRouterKey = None,
) -> Any:  # fmt: skip
    caller = _caller(request, auth, key, data.api_key)
    return await _explain_failure(request, ctx, caller, data)


async def _explain_failure(
    request: Request, ctx: Ctx, caller: service.Caller, data: ExplainErrorRequest
) -> Any:
    """A failed command's explanation, as one answer or as a stream (explain-error and -block)."""
    if not _wants_stream(request):
        return ok(await service.explain_error(ctx, caller, data))
    messages = prompts.error_messages(data.command, data.output, data.exit_code, stream=True)
    return await _stream(ctx, caller, data.model, messages, {})


@router.post(
    "/explain-block/{block_id}",
    response_model=Envelope[ErrorAnswer],
    responses={200: {"content": _STREAMS}, **error_responses(404)},
    summary="Explain a finished command block of a terminal session (its stored output)",
)
async def explain_block(
    request: Request, block_id: uuid.UUID, auth: CurrentAuth, db: DbSession, ctx: Ctx,
    key: OpenRouterKey = None, data: ExplainBlockRequest | None = None,
) -> Any:  # fmt: skip
    data = data or ExplainBlockRequest()
    caller = _caller(request, auth, key, data.api_key)
    failed = await service.block_as_error(db, auth.user_id, block_id, data.model)
    return await _explain_failure(request, ctx, caller, failed)


async def _stream(
    ctx: Ctx, caller: service.Caller, model: str | None, messages: list[dict[str, str]],
    extra: dict[str, Any],
) -> StreamingResponse:  # fmt: skip
    chosen = model or ctx.settings.ai_default_model
    # Given back if the stream fails before its first event; once it runs, it stays counted.
    async with service.counted(ctx, caller):
        events = await open_stream(
            ctx,
            lambda: ctx.openrouter.chat_stream(caller.api_key, model=chosen, messages=messages),
        )

    def done(usage: StreamEvent | None) -> dict[str, Any]:
        counted = usage.usage if usage else None
        return {
            "model": counted.model if counted else chosen,
            "tokens_in": counted.prompt_tokens if counted else None,
            "tokens_out": counted.completion_tokens if counted else None,
            "cost": counted.cost if counted else None,
            **extra,
        }

    return StreamingResponse(
        sse_body(events, done),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
