"""What OpenRouter answers, as the client reads it, and the results the client hands back.

The pydantic models are lenient readers of OpenRouter's JSON (extra fields ignored, missing ones
defaulted); the frozen dataclasses are what callers get, free of the vendor's shapes. Last, the
structured-output plumbing: the schema sent as ``response_format``, the JSON taken out of a
model's answer, and validation errors described back to the model. Separate from the client so
that the data reads apart from the HTTP and retry logic.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError


@dataclass(frozen=True)
class KeyInfo:
    label: str
    limit: float | None
    usage: float
    limit_remaining: float | None
    is_free_tier: bool


@dataclass(frozen=True)
class ModelInfo:
    id: str
    name: str
    context_length: int | None
    # USD per token; None when unknown or variable (routers such as openrouter/auto).
    prompt_price: float | None
    completion_price: float | None


@dataclass(frozen=True)
class Usage:
    model: str
    prompt_tokens: int
    completion_tokens: int
    cost: float | None

    def __add__(self, later: Usage) -> Usage:
        costs = [c for c in (self.cost, later.cost) if c is not None]
        return Usage(
            model=later.model or self.model,
            prompt_tokens=self.prompt_tokens + later.prompt_tokens,
            completion_tokens=self.completion_tokens + later.completion_tokens,
            cost=sum(costs) if costs else None,
        )


@dataclass(frozen=True)
class StreamEvent:
    kind: Literal["delta", "usage"]
    text: str = ""
    usage: Usage | None = None


# What OpenRouter sends, as far as this client reads it; extra fields are ignored.
class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore")


class _KeyData(_Wire):
    label: str = ""
    limit: float | None = None
    usage: float = 0.0
    limit_remaining: float | None = None
    is_free_tier: bool = False


class _KeyAnswer(_Wire):
    data: _KeyData


class _Pricing(_Wire):
    prompt: float | None = None  # sent as decimal strings, e.g. "0.00000015"
    completion: float | None = None


class _Model(_Wire):
    id: str
    name: str = ""
    context_length: int | None = None
    pricing: _Pricing = Field(default_factory=_Pricing)


class _ModelsAnswer(_Wire):
    data: list[_Model]


class _UsageWire(_Wire):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float | None = None


class _Text(_Wire):
    content: str | None = None


class _Choice(_Wire):
    message: _Text = Field(default_factory=_Text)  # a completion's
    delta: _Text = Field(default_factory=_Text)  # a stream chunk's


class _Completion(_Wire):
    """A completion, or one chunk of a streamed one."""

    model: str = ""
    choices: list[_Choice] = Field(default_factory=list)
    usage: _UsageWire | None = None
    error: dict[str, Any] | None = None


def _price(value: float | None) -> float | None:
    # OpenRouter marks variable prices (routers) with -1.
    return value if value is not None and value >= 0 else None


def _usage(model: str, usage: _UsageWire | None) -> Usage:
    if usage is None:
        return Usage(model=model, prompt_tokens=0, completion_tokens=0, cost=None)
    return Usage(model, usage.prompt_tokens, usage.completion_tokens, usage.cost)


def _events(chunk: _Completion) -> list[StreamEvent]:
    events = []
    text = chunk.choices[0].delta.content if chunk.choices else None
    if text:
        events.append(StreamEvent(kind="delta", text=text))
    if chunk.usage is not None:
        events.append(StreamEvent(kind="usage", usage=_usage(chunk.model, chunk.usage)))
    return events


_FENCED = re.compile(r"```[A-Za-z]*\s*(.*?)\s*```", re.DOTALL)


def _response_format(schema: type[BaseModel]) -> dict[str, Any]:
    name = re.sub(r"[^A-Za-z0-9_-]", "_", schema.__name__)[:64]
    return {
        "type": "json_schema",
        "json_schema": {"name": name, "strict": True, "schema": schema.model_json_schema()},
    }


def _strip_fences(content: str) -> str:
    """The JSON inside a Markdown code fence, as some models wrap it despite instructions."""
    stripped = content.strip()
    if stripped.startswith(("{", "[")):
        return stripped
    fenced = _FENCED.search(stripped)
    return fenced.group(1) if fenced else stripped


def _describe(error: ValidationError) -> str:
    """The validation errors without the input values (they would repeat the whole answer)."""
    problems = []
    for item in error.errors(include_url=False, include_input=False)[:5]:
        where = ".".join(str(part) for part in item["loc"]) or "answer"
        problems.append(f"{where}: {item['msg']}")
    return "; ".join(problems)
