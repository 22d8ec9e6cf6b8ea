"""The OpenRouter client against a fake OpenRouter on loopback: answers, retries, errors, streams,
and the user's key never showing up in an error or a log line."""

from __future__ import annotations

import json
import socket
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
from pydantic import BaseModel, ConfigDict
from structlog.testing import capture_logs

from devpocket.ai.client import (
    AiBadOutput,
    AiInsufficientCredits,
    AiKeyInvalid,
    AiModelUnknown,
    AiRequestRejected,
    AiUpstreamTimeout,
    AiUpstreamUnavailable,
    OpenRouterClient,
    StreamEvent,
    Usage,
)
from devpocket.errors import AppError, RateLimited
from tests.openrouter import (
    BAD_KEY,
    DEFAULT_MODEL,
    GOOD_KEY,
    FakeOpenRouter,
    FakeResponse,
    completion,
    error_body,
    serving_openrouter,
    stream_chunks,
    stream_error,
)

ClientFactory = Callable[..., OpenRouterClient]
CHAT = "/chat/completions"
MESSAGES = [{"role": "user", "content": "What is the answer? Reply with JSON only."}]


class Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    answer: str


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenRouter]:
    async with serving_openrouter() as server:
        yield server


@pytest.fixture
def waits() -> list[float]:
    return []


@pytest.fixture
async def make_client(fake: FakeOpenRouter, waits: list[float]) -> AsyncIterator[ClientFactory]:
    async def record(seconds: float) -> None:
        waits.append(seconds)

    async with httpx.AsyncClient(trust_env=False) as http:

        def make(**overrides: Any) -> OpenRouterClient:
            options: dict[str, Any] = {"base_url": fake.url, "timeout": 2.0, "sleep": record}
            return OpenRouterClient(http, **{**options, **overrides})

        yield make


@pytest.fixture
def ai(make_client: ClientFactory) -> OpenRouterClient:
    return make_client()


async def _chat(ai: OpenRouterClient, key: str = GOOD_KEY) -> tuple[Answer, Usage]:
    return await ai.chat_json(key, model=DEFAULT_MODEL, messages=MESSAGES, schema=Answer)


async def _events(ai: OpenRouterClient, key: str = GOOD_KEY) -> list[StreamEvent]:
    return [event async for event in ai.chat_stream(key, model=DEFAULT_MODEL, messages=MESSAGES)]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_key_info_reads_a_valid_key(ai: OpenRouterClient) -> None:
    info = await ai.key_info(GOOD_KEY)
    assert (info.limit, info.usage, info.limit_remaining) == (10.0, 1.25, 8.75)
    assert info.is_free_tier is False
    assert info.label.startswith("sk-or-good")


async def test_key_info_rejects_an_invalid_key_as_400_not_401(ai: OpenRouterClient) -> None:
    with pytest.raises(AiKeyInvalid) as raised:
        await ai.key_info(BAD_KEY)
    assert (raised.value.status_code, raised.value.code) == (400, "ai_key_invalid")


async def test_key_that_cannot_be_a_header_is_refused_without_a_request(
    ai: OpenRouterClient, fake: FakeOpenRouter
) -> None:
    with pytest.raises(AiKeyInvalid):
        await ai.key_info("sk-or-good\r\nX-Injected: 1")
    assert fake.requests == []


async def test_models_are_parsed_with_prices_per_token(
    ai: OpenRouterClient, fake: FakeOpenRouter
) -> None:
    models = {model.id: model for model in await ai.models()}
    mini = models[DEFAULT_MODEL]
    assert (mini.name, mini.context_length) == ("OpenAI: GPT-4o-mini", 128000)
    assert (mini.prompt_price, mini.completion_price) == (0.00000015, 0.0000006)
    assert models["meta-llama/llama-3.1-8b-instruct:free"].prompt_price == 0.0
    router = models["openrouter/auto"]
    assert (router.prompt_price, router.context_length) == (None, None)
    assert "authorization" not in fake.requests[0].headers


async def test_chat_json_asks_for_the_schema_and_returns_answer_and_usage(
    ai: OpenRouterClient, fake: FakeOpenRouter
) -> None:
    answer, usage = await _chat(ai)
    assert answer == Answer(answer="42")
    assert usage == Usage(
        model=DEFAULT_MODEL, prompt_tokens=21, completion_tokens=9, cost=0.0000126
    )
    sent = fake.requests_to(CHAT)[0].json
    assert sent["response_format"]["type"] == "json_schema"
    assert sent["response_format"]["json_schema"]["strict"] is True
    assert sent["response_format"]["json_schema"]["schema"] == Answer.model_json_schema()
    assert (sent["usage"], sent["max_tokens"], sent["messages"]) == (
        {"include": True},
        800,
        MESSAGES,
    )


@pytest.mark.parametrize(
    "content",
    ['```json\n{"answer": "42"}\n```', 'Here it is:\n```\n{"answer": "42"}\n```\n'],
    ids=["json-fence", "prose-and-fence"],
)
async def test_chat_json_accepts_a_fenced_answer(
    ai: OpenRouterClient, fake: FakeOpenRouter, content: str
) -> None:
    fake.default_completion(content)
    answer, _ = await _chat(ai)
    assert answer.answer == "42"


async def test_invalid_answer_is_repaired_with_the_validation_error(
    ai: OpenRouterClient, fake: FakeOpenRouter
) -> None:
    fake.script(CHAT, FakeResponse(json=completion('{"answer": 42, "extra": true}')))
    answer, usage = await _chat(ai)
    assert answer.answer == "42"
    calls = fake.requests_to(CHAT)
    assert len(calls) == 2
    *start, assistant, repair = calls[1].json["messages"]
    assert start == MESSAGES
    assert assistant == {"role": "assistant", "content": '{"answer": 42, "extra": true}'}
    assert repair["role"] == "user"
    assert "answer: Input should be a valid string" in repair["content"]
    assert "extra: Extra inputs are not permitted" in repair["content"]
    assert (usage.prompt_tokens, usage.completion_tokens) == (42, 18)
    assert usage.cost == pytest.approx(2 * 0.0000126)


async def test_answer_still_invalid_after_repair_is_ai_bad_output(
    ai: OpenRouterClient, fake: FakeOpenRouter
) -> None:
    fake.default_completion("I cannot answer in JSON, sorry.")
    with pytest.raises(AiBadOutput) as raised:
        await _chat(ai)
    assert (raised.value.status_code, raised.value.code) == (502, "ai_bad_output")
    assert "Invalid JSON" in fake.requests_to(CHAT)[1].json["messages"][-1]["content"]
    assert len(fake.requests_to(CHAT)) == 2
    assert raised.value.usage is not None
    assert raised.value.usage.prompt_tokens == 42


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (400, "Provider returned error: response_format json_schema is not supported"),
        (404, "No endpoints found that can handle the requested parameters."),
    ],
)
async def test_refused_response_format_is_retried_without_it(
    ai: OpenRouterClient, fake: FakeOpenRouter, status: int, message: str
) -> None:
    fake.script(CHAT, FakeResponse(status, json=error_body(status, message)))
    answer, _ = await _chat(ai)
    assert answer.answer == "42"
    first, second = (request.json for request in fake.requests_to(CHAT))
    assert "response_format" in first
    assert "response_format" not in second
    assert second["messages"] == MESSAGES


@pytest.mark.parametrize(
    ("response", "error", "status", "code"),
    [
        (
            FakeResponse(401, json=error_body(401, "User not found.")),
            AiKeyInvalid,
            400,
            "ai_key_invalid",
        ),
        (
            FakeResponse(403, json=error_body(403, "Key disabled")),
            AiKeyInvalid,
            400,
            "ai_key_invalid",
        ),
        (
            FakeResponse(403, json=error_body(403, "Input was flagged", reasons=["violence"])),
            AiRequestRejected,
            400,
            "ai_request_rejected",
        ),
        (
            FakeResponse(402, json=error_body(402, "Insufficient credits")),
            AiInsufficientCredits,
            402,
            "ai_insufficient_credits",
        ),
        (
            FakeResponse(400, json=error_body(400, "acme/nope is not a valid model ID")),
            AiModelUnknown,
            400,
            "ai_model_unknown",
        ),
        (
            FakeResponse(404, json=error_body(404, "No endpoints found for acme/nope.")),
            AiModelUnknown,
            400,
            "ai_model_unknown",
        ),
        (
            FakeResponse(400, json=error_body(400, "messages: role must be user or system")),
            AiRequestRejected,
            400,
            "ai_request_rejected",
        ),
        (FakeResponse(408), AiUpstreamTimeout, 504, "ai_upstream_unavailable"),
        (
            FakeResponse(json={"error": {"code": 502, "message": "Provider returned error"}}),
            AiUpstreamUnavailable,
            502,
            "ai_upstream_unavailable",
        ),
    ],
    ids=[
        "401",
        "403-key",
        "403-moderation",
        "402",
        "400-model",
        "404-model",
        "400-other",
        "408",
        "200-with-error",
    ],
)
async def test_upstream_errors_map_to_stable_codes_without_retry(
    ai: OpenRouterClient,
    fake: FakeOpenRouter,
    waits: list[float],
    response: FakeResponse,
    error: type[AppError],
    status: int,
    code: str,
) -> None:
    fake.script(CHAT, response)
    with pytest.raises(error) as raised:
        await _chat(ai)
    assert (raised.value.status_code, raised.value.code) == (status, code)
    assert len(fake.requests_to(CHAT)) == 1
    assert waits == []


async def test_rejected_request_passes_the_message_on_with_keys_redacted(
    ai: OpenRouterClient, fake: FakeOpenRouter
) -> None:
    message = f"Bad request from {GOOD_KEY}; also sk-or-v1-someone-else: max_tokens too large"
    fake.script(CHAT, FakeResponse(400, json=error_body(400, message)))
    with pytest.raises(AiRequestRejected) as raised:
        await _chat(ai)
    assert raised.value.message == (
        "Bad request from [redacted]; also [redacted]: max_tokens too large"
    )


async def test_rate_limit_waits_as_retry_after_says_then_succeeds(
    ai: OpenRouterClient, fake: FakeOpenRouter, waits: list[float]
) -> None:
    fake.script(CHAT, FakeResponse(429, headers={"Retry-After": "2"}))
    answer, _ = await _chat(ai)
    assert answer.answer == "42"
    assert waits == [2.0]
    assert len(fake.requests_to(CHAT)) == 2


async def test_retry_after_as_an_http_date_is_honoured(
    ai: OpenRouterClient, fake: FakeOpenRouter, waits: list[float]
) -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=4), usegmt=True)
    fake.script(CHAT, FakeResponse(429, headers={"Retry-After": when}))
    await _chat(ai)
    assert len(waits) == 1
    assert 2.0 <= waits[0] <= 4.0


@pytest.mark.parametrize(
    ("headers", "expected_waits", "retry_after"),
    [({"Retry-After": "1"}, [1.0, 1.0], 1), ({}, [0.5, 1.0], 30)],
    ids=["with-retry-after", "without"],
)
async def test_rate_limit_exhausted_is_ai_upstream_rate_limited(
    ai: OpenRouterClient,
    fake: FakeOpenRouter,
    waits: list[float],
    headers: dict[str, str],
    expected_waits: list[float],
    retry_after: int,
) -> None:
    fake.script(CHAT, *[FakeResponse(429, headers=headers)] * 3)
    with pytest.raises(RateLimited) as raised:
        await _chat(ai)
    assert (raised.value.status_code, raised.value.code) == (429, "ai_upstream_rate_limited")
    assert raised.value.retry_after == retry_after
    assert raised.value.headers == {"Retry-After": str(retry_after)}
    assert waits == expected_waits
    assert len(fake.requests_to(CHAT)) == 3


async def test_retry_after_beyond_the_cap_ends_the_retries_at_once(
    ai: OpenRouterClient, fake: FakeOpenRouter, waits: list[float]
) -> None:
    fake.script(CHAT, FakeResponse(429, headers={"Retry-After": "120"}))
    with pytest.raises(RateLimited) as raised:
        await _chat(ai)
    assert raised.value.retry_after == 120
    assert waits == []


async def test_server_error_is_retried_with_backoff_then_succeeds(
    ai: OpenRouterClient, fake: FakeOpenRouter, waits: list[float]
) -> None:
    fake.script(CHAT, FakeResponse(500), FakeResponse(503))
    answer, _ = await _chat(ai)
    assert answer.answer == "42"
    assert waits == [0.5, 1.0]


async def test_server_errors_exhausted_are_502(
    ai: OpenRouterClient, fake: FakeOpenRouter, waits: list[float]
) -> None:
    fake.script(CHAT, *[FakeResponse(502)] * 3)
    with pytest.raises(AiUpstreamUnavailable) as raised:
        await _chat(ai)
    assert (raised.value.status_code, raised.value.code) == (502, "ai_upstream_unavailable")
    assert len(fake.requests_to(CHAT)) == 3
    assert waits == [0.5, 1.0]


async def test_unreachable_openrouter_is_retried_then_502(
    make_client: ClientFactory, waits: list[float]
) -> None:
    ai = make_client(base_url=f"http://127.0.0.1:{_closed_port()}/api/v1")
    with pytest.raises(AiUpstreamUnavailable) as raised:
        await ai.models()
    assert raised.value.status_code == 502
    assert waits == [0.5, 1.0]


async def test_answer_slower_than_the_timeout_is_504_and_not_resent(
    make_client: ClientFactory, fake: FakeOpenRouter
) -> None:
    fake.script(CHAT, FakeResponse(delay=2.0))
    with pytest.raises(AiUpstreamTimeout) as raised:
        await _chat(make_client(timeout=0.2))
    assert (raised.value.status_code, raised.value.code) == (504, "ai_upstream_unavailable")
    # The model may be working (and billing) still: a completion is not sent twice.
    assert len(fake.requests_to(CHAT)) == 1


async def test_slow_read_only_request_is_retried_before_504(
    make_client: ClientFactory, fake: FakeOpenRouter, waits: list[float]
) -> None:
    fake.script("/models", *[FakeResponse(delay=2.0)] * 3)
    with pytest.raises(AiUpstreamTimeout):
        await make_client(timeout=0.1).models()
    assert len(fake.requests_to("/models")) == 3
    assert waits == [0.5, 1.0]


async def test_stream_yields_deltas_in_order_then_usage(
    ai: OpenRouterClient, fake: FakeOpenRouter
) -> None:
    fake.default_completion("It lists files, then sorts them.")
    events = await _events(ai)
    *deltas, last = events
    assert {event.kind for event in deltas} == {"delta"}
    assert "".join(event.text for event in deltas) == "It lists files, then sorts them."
    assert len(deltas) == 3
    assert last.kind == "usage"
    assert last.usage == Usage(DEFAULT_MODEL, 21, 9, 0.0000126)
    sent = fake.requests_to(CHAT)[0].json
    assert (sent["stream"], sent["usage"]) == (True, {"include": True})


async def test_stream_ends_at_done(ai: OpenRouterClient, fake: FakeOpenRouter) -> None:
    chunks = [*stream_chunks(["one", " two"]), *stream_chunks(["never"])]
    fake.script(CHAT, FakeResponse(stream_chunks=chunks))
    events = await _events(ai)
    assert [event.text for event in events if event.kind == "delta"] == ["one", " two"]
    assert [event.kind for event in events].count("usage") == 1


@pytest.mark.parametrize(
    ("code", "error", "status"),
    [
        ("server_error", AiUpstreamUnavailable, 502),
        (502, AiUpstreamUnavailable, 502),
        (402, AiInsufficientCredits, 402),
    ],
)
async def test_error_chunk_mid_stream_raises_the_mapped_error(
    ai: OpenRouterClient,
    fake: FakeOpenRouter,
    code: int | str,
    error: type[AppError],
    status: int,
) -> None:
    chunks = [*stream_chunks(["It lists"], done=False)[:2], stream_error(code, "Provider died")]
    fake.script(CHAT, FakeResponse(stream_chunks=chunks))
    received: list[str] = []

    async def read() -> None:
        async for event in ai.chat_stream(GOOD_KEY, model=DEFAULT_MODEL, messages=MESSAGES):
            received.append(event.text)

    with pytest.raises(error) as raised:
        await read()
    assert received == ["It lists"]
    assert raised.value.status_code == status


async def test_stream_error_before_the_first_byte_raises_at_once(
    ai: OpenRouterClient, fake: FakeOpenRouter
) -> None:
    with pytest.raises(AiKeyInvalid):
        await _events(ai, key=BAD_KEY)
    fake.script(CHAT, FakeResponse(402, json=error_body(402, "Insufficient credits")))
    with pytest.raises(AiInsufficientCredits):
        await _events(ai)


async def test_stream_with_keep_alives_but_no_data_times_out(
    make_client: ClientFactory, fake: FakeOpenRouter
) -> None:
    chunks = [": OPENROUTER PROCESSING"] * 20
    fake.script(CHAT, FakeResponse(stream_chunks=chunks, chunk_delay=0.05))
    with pytest.raises(AiUpstreamTimeout):
        await _events(make_client(timeout=0.3))


async def test_requests_carry_the_key_and_identify_the_app(
    make_client: ClientFactory, fake: FakeOpenRouter
) -> None:
    ai = make_client(app_url="https://example.test/app", app_title="DevPocket Test")
    await ai.key_info(GOOD_KEY)
    await _chat(ai)
    await _events(ai)
    await ai.models()
    assert len(fake.requests) == 4
    for request in fake.requests:
        assert request.headers["http-referer"] == "https://example.test/app"
        assert request.headers["x-title"] == "DevPocket Test"
    assert {request.api_key for request in fake.requests[:3]} == {GOOD_KEY}


SECRET = f"{GOOD_KEY}-do-not-leak"
UNKNOWN_SECRET = "sk-or-v1-not-good-do-not-leak"
Scenario = Callable[[ClientFactory, FakeOpenRouter], Awaitable[object]]


async def _unknown_key(make: ClientFactory, fake: FakeOpenRouter) -> object:
    return await make().key_info(UNKNOWN_SECRET)


async def _echoed_key(make: ClientFactory, fake: FakeOpenRouter) -> object:
    fake.script(CHAT, FakeResponse(400, json=error_body(400, f"Bad key {SECRET}: Bearer {SECRET}")))
    return await _chat(make(), SECRET)


async def _echoed_key_as_model(make: ClientFactory, fake: FakeOpenRouter) -> object:
    fake.script(CHAT, FakeResponse(404, json=error_body(404, f"No endpoints found for {SECRET}")))
    return await _chat(make(), SECRET)


async def _echoed_key_mid_stream(make: ClientFactory, fake: FakeOpenRouter) -> object:
    fake.script(CHAT, FakeResponse(stream_chunks=[stream_error(400, f"bad: {SECRET}")]))
    return await _events(make(), SECRET)


def _failing_chat(*responses: FakeResponse, timeout: float = 2.0) -> Scenario:
    async def scenario(make: ClientFactory, fake: FakeOpenRouter) -> object:
        fake.script(CHAT, *responses)
        return await _chat(make(timeout=timeout), SECRET)

    return scenario


async def _unreachable(make: ClientFactory, fake: FakeOpenRouter) -> object:
    return await make(base_url=f"http://127.0.0.1:{_closed_port()}/api/v1").key_info(SECRET)


async def _bad_output(make: ClientFactory, fake: FakeOpenRouter) -> object:
    fake.default_completion(f"not JSON, but the key: {SECRET}")
    return await _chat(make(), SECRET)


async def _malformed_key(make: ClientFactory, fake: FakeOpenRouter) -> object:
    return await make().key_info(f"{SECRET}\n")


@pytest.mark.parametrize(
    "scenario",
    [
        _unknown_key,
        _echoed_key,
        _echoed_key_as_model,
        _echoed_key_mid_stream,
        _failing_chat(FakeResponse(402)),
        _failing_chat(*[FakeResponse(429, headers={"Retry-After": "1"})] * 3),
        _failing_chat(*[FakeResponse(500)] * 3),
        _failing_chat(FakeResponse(delay=1.0), timeout=0.2),
        _unreachable,
        _bad_output,
        _malformed_key,
    ],
    ids=[
        "unknown-key",
        "echoed-key",
        "echoed-key-as-model",
        "echoed-key-mid-stream",
        "402",
        "429",
        "500",
        "timeout",
        "unreachable",
        "bad-output",
        "malformed-key",
    ],
)
async def test_the_key_never_appears_in_errors_or_logs(
    make_client: ClientFactory, fake: FakeOpenRouter, scenario: Scenario
) -> None:
    with capture_logs() as logs, pytest.raises(AppError) as raised:
        await scenario(make_client, fake)
    error = raised.value
    shown = [
        str(error),
        repr(error),
        error.message,
        json.dumps(error.details, default=str),
        json.dumps(error.headers),
        "".join(traceback.format_exception(error)),
        repr(logs),
    ]
    for text in shown:
        assert SECRET not in text
        assert "do-not-leak" not in text
