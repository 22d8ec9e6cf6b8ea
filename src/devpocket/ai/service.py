"""AI command help: suggestions, explanations and failure analysis with the user's own key."""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from devpocket import metrics
from devpocket.ai import prompts
from devpocket.ai.cache import AnswerCache, cache_key
from devpocket.ai.client import AiKeyInvalid, Usage
from devpocket.ai.risk import classify
from devpocket.ai.schemas import (
    CommandPart,
    ErrorAnswer,
    ExplainAnswer,
    ExplainCommandRequest,
    ExplainErrorRequest,
    Fix,
    KeyCheck,
    ModelErrorExplanation,
    ModelExplanation,
    ModelList,
    ModelOut,
    ModelSuggestions,
    SuggestAnswer,
    SuggestCommandRequest,
    Suggestion,
)
from devpocket.billing.usage import counted_ai_request
from devpocket.context import AppContext
from devpocket.errors import AppError, InvalidInput, NotFound
from devpocket.terminal.repository import get_block

_MODELS_CACHE_KEY = "ai-models"
_MODELS_SECONDS = 3600


@dataclass(frozen=True, slots=True)
class Caller:
    user_id: uuid.UUID
    tier: str
    api_key: str


def require_key(header: str | None, body: str | None) -> str:
    key = (header or body or "").strip()
    if not key:
        raise AiKeyInvalid("Send your OpenRouter key in the X-OpenRouter-Key header.")
    return key


def _accounting(usage: Usage, cached: bool) -> dict[str, Any]:
    return {
        "model": usage.model,
        "tokens_in": usage.prompt_tokens,
        "tokens_out": usage.completion_tokens,
        "cost": usage.cost,
        "cached": cached,
    }


def counted(ctx: AppContext, caller: Caller) -> AbstractAsyncContextManager[None]:
    """One request against the caller's monthly allowance, given back if the work inside fails."""
    return counted_ai_request(ctx.sessionmaker, ctx.settings, caller.user_id, caller.tier)


async def _answer(
    ctx: AppContext,
    caller: Caller,
    key: str,
    produce: Callable[[], Awaitable[dict[str, Any]]],
) -> dict[str, Any]:
    """The remembered answer, or a new one (counted against the month's allowance)."""
    cache = AnswerCache(ctx.broker, ctx.settings.ai_cache_seconds)
    remembered = await cache.get(key)
    if remembered is not None:
        return {**remembered, "cached": True}
    async with counted(ctx, caller):
        started = time.perf_counter()
        try:
            answer: dict[str, Any] = await produce()
        except AppError as error:
            metrics.observe_ai_call(error.code, time.perf_counter() - started)
            raise
    metrics.observe_ai_call("success", time.perf_counter() - started)
    await cache.put(key, answer)
    return answer


async def suggest(ctx: AppContext, caller: Caller, data: SuggestCommandRequest) -> SuggestAnswer:
    model = data.model or ctx.settings.ai_default_model
    context = data.context.model_dump() if data.context else None
    personal = caller.user_id if context else None
    key = cache_key("suggest", model, {"prompt": data.prompt, "context": context}, personal)

    async def produce() -> dict[str, Any]:
        messages = prompts.suggest_messages(data.prompt, data.context)
        parsed, usage = await ctx.openrouter.chat_json(
            caller.api_key, model=model, messages=messages, schema=ModelSuggestions
        )
        suggestions = []
        for item in parsed.commands:
            risk = classify(item.command)
            suggestions.append(
                Suggestion(
                    command=item.command,
                    explanation=item.explanation,
                    risk=risk.level.value,
                    risk_reasons=list(risk.reasons),
                ).model_dump()
            )
        return {"suggestions": suggestions, **_accounting(usage, cached=False)}

    return SuggestAnswer.model_validate(await _answer(ctx, caller, key, produce))


async def explain(ctx: AppContext, caller: Caller, data: ExplainCommandRequest) -> ExplainAnswer:
    model = data.model or ctx.settings.ai_default_model
    key = cache_key("explain", model, {"command": data.command}, None)

    async def produce() -> dict[str, Any]:
        parsed, usage = await ctx.openrouter.chat_json(
            caller.api_key,
            model=model,
            messages=prompts.explain_messages(data.command),
            schema=ModelExplanation,
        )
        risk = classify(data.command)
        return {
            "summary": parsed.summary,
            "parts": [
                CommandPart(part=p.part, meaning=p.meaning).model_dump() for p in parsed.parts
            ],
            "risk": risk.level.value,
            "risk_reasons": list(risk.reasons),
            **_accounting(usage, cached=False),
        }

    return ExplainAnswer.model_validate(await _answer(ctx, caller, key, produce))


async def block_as_error(
    db: AsyncSession, user_id: uuid.UUID, block_id: uuid.UUID, model: str | None
) -> ExplainErrorRequest:
    """A finished command block (a command-history entry) as an error to explain."""
    entry = await get_block(db, user_id, block_id)
    if entry is None:
        raise NotFound("No such command block.", code="block_not_found")
    if not entry.command.strip():
        raise InvalidInput(
            "This block has no command line to explain.", code="block_without_command"
        )
    return ExplainErrorRequest(
        command=entry.command[:4000],
        output=(entry.output or "")[-100_000:],
        exit_code=entry.exit_code,
        model=model,
    )


async def explain_error(ctx: AppContext, caller: Caller, data: ExplainErrorRequest) -> ErrorAnswer:
    model = data.model or ctx.settings.ai_default_model
    inputs = {"command": data.command, "output": data.output, "exit_code": data.exit_code}
    key = cache_key("explain-error", model, inputs, caller.user_id)

    async def produce() -> dict[str, Any]:
        messages = prompts.error_messages(data.command, data.output, data.exit_code)
        parsed, usage = await ctx.openrouter.chat_json(
            caller.api_key, model=model, messages=messages, schema=ModelErrorExplanation
        )
        return {
            "cause": parsed.cause,
            "fixes": [_fix(f.description, f.command).model_dump() for f in parsed.fixes],
            **_accounting(usage, cached=False),
        }

    return ErrorAnswer.model_validate(await _answer(ctx, caller, key, produce))


def _fix(description: str, command: str | None) -> Fix:
    if not command:
        return Fix(description=description, command=None, risk=None, risk_reasons=[])
    risk = classify(command)
    return Fix(
        description=description,
        command=command,
        risk=risk.level.value,
        risk_reasons=list(risk.reasons),
    )


async def check_key(ctx: AppContext, api_key: str) -> KeyCheck:
    try:
        info = await ctx.openrouter.key_info(api_key)
    except AiKeyInvalid:
        return KeyCheck(valid=False)
    return KeyCheck(
        valid=True,
        label=info.label,
        limit=info.limit,
        usage=info.usage,
        limit_remaining=info.limit_remaining,
        is_free_tier=info.is_free_tier,
    )


async def list_models(ctx: AppContext) -> ModelList:
    """OpenRouter's models, remembered for an hour (the same for everyone)."""
    cache = AnswerCache(ctx.broker, _MODELS_SECONDS)
    remembered = await cache.get(_MODELS_CACHE_KEY)
    if remembered is not None:
        return ModelList.model_validate(remembered)
    models = [
        ModelOut(
            id=m.id,
            name=m.name,
            context_length=m.context_length,
            prompt_price=m.prompt_price,
            completion_price=m.completion_price,
        )
        for m in await ctx.openrouter.models()
    ]
    answer = ModelList(models=models, total=len(models))
    await cache.put(_MODELS_CACHE_KEY, answer.model_dump())
    return answer
