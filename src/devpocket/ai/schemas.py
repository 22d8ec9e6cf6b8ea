"""Bodies of ``/api/v1/ai`` and the JSON shapes the model must answer in."""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

RiskLevel = Literal["safe", "caution", "dangerous"]


class _Input(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True, populate_by_name=True)

    model: str | None = Field(
        default=None,
        max_length=200,
        description="OpenRouter model id; the server's default if absent.",
    )
    # Accepted in the body for clients that cannot set headers; the header is preferred.
    api_key: str | None = Field(
        default=None,
        max_length=500,
        validation_alias=AliasChoices("api_key", "apiKey"),
        description="Your OpenRouter key, if not sent as X-OpenRouter-Key. Never stored.",
    )


class ShellContext(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    shell: str | None = Field(default=None, max_length=50)
    os: str | None = Field(default=None, max_length=100)
    cwd: str | None = Field(default=None, max_length=1000)
    recent_commands: list[str] = Field(
        default_factory=list,
        max_length=20,
        validation_alias=AliasChoices("recent_commands", "recentCommands"),
    )


class SuggestCommandRequest(_Input):
    prompt: str = Field(min_length=1, max_length=2000)
    context: ShellContext | None = None


class ExplainCommandRequest(_Input):
    command: str = Field(min_length=1, max_length=4000)


class ExplainErrorRequest(_Input):
    command: str = Field(min_length=1, max_length=4000)
    output: str = Field(default="", max_length=100_000)
    exit_code: int | None = Field(
        default=None, validation_alias=AliasChoices("exit_code", "exitCode")
    )


class ExplainBlockRequest(_Input):
    """Only the model and key: the command, output and exit code come from the stored block."""


class ValidateKeyRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    api_key: str | None = Field(
        default=None, max_length=500, validation_alias=AliasChoices("api_key", "apiKey")
    )


# --- What the model is asked to answer (validated; repaired once when malformed) --------------


class _ModelSuggestion(BaseModel):
    command: str = Field(min_length=1, max_length=4000)
    explanation: str = Field(max_length=2000)


class ModelSuggestions(BaseModel):
    commands: list[_ModelSuggestion] = Field(min_length=1, max_length=5)


class _ModelPart(BaseModel):
    part: str = Field(max_length=1000)
    meaning: str = Field(max_length=2000)


class ModelExplanation(BaseModel):
    summary: str = Field(max_length=4000)
    parts: list[_ModelPart] = Field(default_factory=list, max_length=30)


class _ModelFix(BaseModel):
    description: str = Field(max_length=2000)
    command: str | None = Field(default=None, max_length=4000)


class ModelErrorExplanation(BaseModel):
    cause: str = Field(max_length=4000)
    fixes: list[_ModelFix] = Field(default_factory=list, max_length=10)


# --- Answers -----------------------------------------------------------------------------------


class Accounting(BaseModel):
    model: str
    tokens_in: int
    tokens_out: int
    cost: float | None = Field(description="USD, when OpenRouter reports it.")
    cached: bool


class Suggestion(BaseModel):
    command: str
    explanation: str
    risk: RiskLevel
    risk_reasons: list[str]


class SuggestAnswer(Accounting):
    suggestions: list[Suggestion]


class CommandPart(BaseModel):
    part: str
    meaning: str


class ExplainAnswer(Accounting):
    summary: str
    parts: list[CommandPart]
    risk: RiskLevel
    risk_reasons: list[str]


class Fix(BaseModel):
    description: str
    command: str | None
    risk: RiskLevel | None
    risk_reasons: list[str]


class ErrorAnswer(Accounting):
    cause: str
    fixes: list[Fix]


class KeyCheck(BaseModel):
    valid: bool
    label: str | None = None
    limit: float | None = None
    usage: float | None = None
    limit_remaining: float | None = None
    is_free_tier: bool | None = None


class ModelOut(BaseModel):
    id: str
    name: str
    context_length: int | None
    prompt_price: float | None = Field(description="USD per input token.")
    completion_price: float | None = Field(description="USD per output token.")


class ModelList(BaseModel):
    models: list[ModelOut]
    total: int
