"""``/api/v1/ai`` against a fake OpenRouter on loopback: answers, cache, usage, streams, errors."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from structlog.testing import capture_logs

from devpocket.db.base import Base
from devpocket.db.models import CommandHistory
from tests.conftest import SettingsFactory, serving
from tests.helpers import Account, data, error, register
from tests.openrouter import (
    FakeOpenRouter,
    FakeResponse,
    serving_openrouter,
    stream_chunks,
    stream_error,
)

AI = "/api/v1/ai"
GOOD_KEY = "sk-or-good-0123456789abcdef"
SUGGESTIONS = {
    "commands": [
        {"command": "ls -la", "explanation": "List all files."},
        {"command": "rm -rf /", "explanation": "Delete everything."},
    ]
}
EXPLANATION = {"summary": "Lists files.", "parts": [{"part": "-la", "meaning": "long, all"}]}
ERROR = {
    "cause": "No such directory.",
    "fixes": [{"description": "Create it", "command": "mkdir -p x"}],
}


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenRouter]:
    async with serving_openrouter() as server:
        yield server


@pytest.fixture
async def ai(
    settings_factory: SettingsFactory, fake: FakeOpenRouter
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient, Account]]:
    settings = settings_factory(openrouter_api_base_url=fake.url, ai_requests_per_month_free=3)
    async with serving(settings) as (app, client):
        yield app, client, await register(client)


def _headers(account: Account, key: str = GOOD_KEY, **extra: str) -> dict[str, str]:
    return {**account.headers, "X-OpenRouter-Key": key, **extra}


def _completions(fake: FakeOpenRouter) -> list[Any]:
    return [r for r in fake.requests if r.path.endswith("/chat/completions")]


async def test_suggestions_carry_a_real_risk_classification(
    ai: tuple[FastAPI, httpx.AsyncClient, Account], fake: FakeOpenRouter
) -> None:
    _, client, account = ai
    fake.default_completion(json.dumps(SUGGESTIONS))
    body = {"prompt": "list files", "context": {"shell": "bash", "os": "linux"}}
    answer = data(await client.post(f"{AI}/suggest-command", json=body, headers=_headers(account)))
    risks = {s["command"]: s["risk"] for s in answer["suggestions"]}
    assert risks == {"ls -la": "safe", "rm -rf /": "dangerous"}
    assert answer["suggestions"][1]["risk_reasons"]
    assert answer["tokens_in"] > 0
    assert answer["cached"] is False
    sent = _completions(fake)[0]
    assert sent.headers["authorization"] == f"Bearer {GOOD_KEY}"
    assert sent.json["model"] == "openai/gpt-4o-mini"
    text = (await client.get("/metrics")).text
    assert 'devpocket_ai_calls_total{outcome="success"}' in text
    assert "devpocket_ai_call_duration_seconds_count" in text


async def test_identical_request_is_answered_from_the_cache(
    ai: tuple[FastAPI, httpx.AsyncClient, Account], fake: FakeOpenRouter
) -> None:
    _, client, account = ai
    fake.default_completion(json.dumps(EXPLANATION))
    body = {"command": "ls -la"}
    first = data(await client.post(f"{AI}/explain-command", json=body, headers=_headers(account)))
    second = data(await client.post(f"{AI}/explain-command", json=body, headers=_headers(account)))
    assert (first["cached"], second["cached"]) == (False, True)
    assert second["summary"] == first["summary"]
    assert second["risk"] == "safe"
    assert len(_completions(fake)) == 1
    usage = data(
        await client.get("/api/v1/subscriptions/usage/ai_requests", headers=account.headers)
    )
    assert (usage["feature"], usage["used"], usage["limit"]) == ("ai_requests", 1, 3)
    assert usage["reset_date"]


async def test_monthly_allowance_is_enforced(
    ai: tuple[FastAPI, httpx.AsyncClient, Account], fake: FakeOpenRouter
) -> None:
    _, client, account = ai
    fake.default_completion(json.dumps(EXPLANATION))
    for n in range(3):
        body = {"command": f"echo {n}"}
        data(await client.post(f"{AI}/explain-command", json=body, headers=_headers(account)))
    refused = await client.post(
        f"{AI}/explain-command", json={"command": "echo 9"}, headers=_headers(account)
    )
    answer = error(refused, 403, "ai_quota_exceeded")
    assert answer["details"]["limit"] == 3


async def _ai_requests_used(client: httpx.AsyncClient, account: Account) -> int:
    usage = data(
        await client.get("/api/v1/subscriptions/usage/ai_requests", headers=account.headers)
    )
    used: int = usage["used"]
    return used


async def test_concurrent_requests_beyond_the_allowance_are_refused(
    ai: tuple[FastAPI, httpx.AsyncClient, Account], fake: FakeOpenRouter
) -> None:
    _, client, account = ai  # an allowance of 3
    fake.default_completion(json.dumps(EXPLANATION))
    responses = await asyncio.gather(
        *(
            client.post(f"{AI}/explain-command", json={"command": f"echo {n}"},
                        headers=_headers(account))
            for n in range(6)
        )
    )  # fmt: skip
    answered = [r for r in responses if r.status_code == 200]
    refused = [r for r in responses if r.status_code != 200]
    assert len(answered) == 3
    for response in refused:
        error(response, 403, "ai_quota_exceeded")
    assert len(_completions(fake)) == 3
    assert await _ai_requests_used(client, account) == 3


@pytest.mark.parametrize("accept", ["application/json", "text/event-stream"])
async def test_a_stalled_upstream_call_holds_up_no_other_users_write(
    settings_factory: SettingsFactory, fake: FakeOpenRouter, accept: str
) -> None:
    # Should the login wait for the stalled call (SQLite's writer lock), the call's timeout
    # ends it first and the login finishes second: the test fails instead of hanging.
    settings = settings_factory(openrouter_api_base_url=fake.url, ai_timeout_seconds=10)
    fake.default_completion(json.dumps(EXPLANATION))
    release = asyncio.Event()
    fake.script("/chat/completions", FakeResponse(hold=release))
    async with serving(settings) as (_, client):
        caller, other = await register(client), await register(client)
        headers = _headers(caller, Accept=accept)
        stalled = asyncio.create_task(
            client.post(f"{AI}/explain-command", json={"command": "ls"}, headers=headers)
        )
        await fake.arrived("/chat/completions")
        credentials = {"email": other.email, "password": other.password}
        login = asyncio.create_task(client.post("/api/v1/auth/login", json=credentials))
        finished, _ = await asyncio.wait({stalled, login}, return_when=asyncio.FIRST_COMPLETED)
        assert finished == {login}
        data(login.result())
        release.set()
        answered = await stalled
        assert answered.status_code == 200, answered.text
        assert await _ai_requests_used(client, caller) == 1


@pytest.mark.parametrize("accept", ["application/json", "text/event-stream"])
async def test_a_failed_upstream_call_is_not_counted(
    ai: tuple[FastAPI, httpx.AsyncClient, Account], fake: FakeOpenRouter, accept: str
) -> None:
    _, client, account = ai
    refusal = {"error": {"code": 402, "message": "Insufficient credits"}}
    fake.script("/chat/completions", FakeResponse(status=402, json=refusal))
    response = await client.post(
        f"{AI}/explain-command", json={"command": "ls"}, headers=_headers(account, Accept=accept)
    )
    error(response, 402, "ai_insufficient_credits")
    assert await _ai_requests_used(client, account) == 0


async def test_a_stream_that_breaks_off_midway_is_counted(
    ai: tuple[FastAPI, httpx.AsyncClient, Account], fake: FakeOpenRouter
) -> None:
    _, client, account = ai
    chunks = [*stream_chunks(["It lists"], done=False)[:2], stream_error(502, "Provider died")]
    fake.script("/chat/completions", FakeResponse(stream_chunks=chunks))
    headers = _headers(account, Accept="text/event-stream")
    response = await client.post(f"{AI}/explain-command", json={"command": "ls"}, headers=headers)
    assert response.status_code == 200
    assert "event: error" in response.text
    assert await _ai_requests_used(client, account) == 1


async def test_error_explanation_with_fix_risks(
    ai: tuple[FastAPI, httpx.AsyncClient, Account], fake: FakeOpenRouter
) -> None:
    _, client, account = ai
    fake.default_completion(json.dumps(ERROR))
    body = {"command": "cd x", "output": "bash: cd: x: No such file or directory", "exit_code": 1}
    answer = data(await client.post(f"{AI}/explain-error", json=body, headers=_headers(account)))
    assert answer["cause"] == "No such directory."
    assert answer["fixes"][0]["command"] == "mkdir -p x"
    assert answer["fixes"][0]["risk"] in {"safe", "caution"}


async def _block(app: FastAPI, account: Account, **fields: Any) -> str:
    """A finished command block as the terminal stores it (a command-history entry)."""
    async with app.state.ctx.sessionmaker() as db:
        entry = CommandHistory(
            user_id=uuid.UUID(account.user_id), session_id=str(uuid.uuid4()), **fields
        )
        db.add(entry)
        await db.commit()
        return str(entry.id)


async def test_a_failed_block_is_explained_from_its_stored_output(
    ai: tuple[FastAPI, httpx.AsyncClient, Account], fake: FakeOpenRouter
) -> None:
    app, client, account = ai
    fake.default_completion(json.dumps(ERROR))
    output = "bash: cd: x: No such file or directory\n"
    block_id = await _block(app, account, command="cd x", output=output, exit_code=1)
    answer = data(await client.post(f"{AI}/explain-block/{block_id}", headers=_headers(account)))
    assert answer["cause"] == "No such directory."
    assert answer["fixes"][0]["command"] == "mkdir -p x"
    [call] = _completions(fake)
    asked = json.dumps(call.json["messages"])
    assert "No such file or directory" in asked
    assert "cd x" in asked


async def test_a_block_stream_is_served_as_events(
    ai: tuple[FastAPI, httpx.AsyncClient, Account], fake: FakeOpenRouter
) -> None:
    app, client, account = ai
    block_id = await _block(app, account, command="make", output="make: *** Error 2", exit_code=2)
    headers = _headers(account, Accept="text/event-stream")
    response = await client.post(f"{AI}/explain-block/{block_id}", headers=headers)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert "event: done" in response.text


async def test_another_users_or_an_unknown_block_is_404(
    ai: tuple[FastAPI, httpx.AsyncClient, Account], fake: FakeOpenRouter
) -> None:
    app, client, account = ai
    other = await register(client)
    theirs = await _block(app, other, command="ls /secret", output="", exit_code=2)
    for block_id in (theirs, str(uuid.uuid4())):
        response = await client.post(f"{AI}/explain-block/{block_id}", headers=_headers(account))
        error(response, 404, "block_not_found")
    assert _completions(fake) == []


async def test_a_block_without_a_command_line_is_refused(
    ai: tuple[FastAPI, httpx.AsyncClient, Account],
) -> None:
    app, client, account = ai
    block_id = await _block(app, account, command="", output="x", exit_code=1)
    response = await client.post(f"{AI}/explain-block/{block_id}", headers=_headers(account))
    error(response, 400, "block_without_command")


@pytest.mark.parametrize(
    ("status", "body", "code", "expected"),
    [
        (
            401,
            {"error": {"code": 401, "message": "No auth credentials found"}},
            "ai_key_invalid",
            400,
        ),
        (
            402,
            {"error": {"code": 402, "message": "Insufficient credits"}},
            "ai_insufficient_credits",
            402,
        ),
        (
            429,
            {"error": {"code": 429, "message": "Rate limit exceeded"}},
            "ai_upstream_rate_limited",
            429,
        ),
    ],
)
async def test_upstream_errors_map_to_stable_codes_never_401(
    ai: tuple[FastAPI, httpx.AsyncClient, Account],
    fake: FakeOpenRouter,
    status: int,
    body: dict[str, Any],
    code: str,
    expected: int,
) -> None:
    _, client, account = ai
    answer = FakeResponse(status=status, json=body, headers={"Retry-After": "0"})
    fake.script("/chat/completions", *([answer] * 5))
    response = await client.post(
        f"{AI}/explain-command", json={"command": "ls"}, headers=_headers(account)
    )
    error(response, expected, code)
    text = (await client.get("/metrics")).text
    assert f'devpocket_ai_calls_total{{outcome="{code}"}}' in text
    if expected == 429:
        assert int(response.headers["retry-after"]) >= 1


async def test_missing_key_or_key_in_the_url_is_refused(
    ai: tuple[FastAPI, httpx.AsyncClient, Account], fake: FakeOpenRouter
) -> None:
    _, client, account = ai
    missing = await client.post(
        f"{AI}/explain-command", json={"command": "ls"}, headers=account.headers
    )
    error(missing, 400, "ai_key_invalid")
    in_url = await client.post(
        f"{AI}/explain-command", params={"api_key": GOOD_KEY}, json={"command": "ls"},
        headers=account.headers,
    )  # fmt: skip
    error(in_url, 400, "ai_key_in_query")
    assert _completions(fake) == []


async def test_key_in_the_body_is_accepted(
    ai: tuple[FastAPI, httpx.AsyncClient, Account], fake: FakeOpenRouter
) -> None:
    _, client, account = ai
    fake.default_completion(json.dumps(EXPLANATION))
    body = {"command": "pwd", "api_key": GOOD_KEY}
    data(await client.post(f"{AI}/explain-command", json=body, headers=account.headers))


async def test_explanation_streams_as_server_sent_events(
    ai: tuple[FastAPI, httpx.AsyncClient, Account], fake: FakeOpenRouter
) -> None:
    _, client, account = ai
    fake.default_completion("It lists files, then sorts them.")
    headers = _headers(account, Accept="text/event-stream")
    async with client.stream(
        "POST", f"{AI}/explain-command", json={"command": "ls | sort"}, headers=headers
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        raw = "".join([chunk async for chunk in response.aiter_text()])
    events = [block.split("\n") for block in raw.strip().split("\n\n")]
    names = [lines[0].removeprefix("event: ") for lines in events]
    assert names[-1] == "done"
    assert set(names[:-1]) == {"delta"}
    text_out = "".join(json.loads(lines[1].removeprefix("data: "))["text"] for lines in events[:-1])
    assert text_out == "It lists files, then sorts them."
    done = json.loads(events[-1][1].removeprefix("data: "))
    assert done["risk"] == "safe"


async def test_stream_with_a_bad_key_is_an_ordinary_error(
    ai: tuple[FastAPI, httpx.AsyncClient, Account], fake: FakeOpenRouter
) -> None:
    _, client, account = ai
    headers = _headers(account, key="sk-or-bad", Accept="text/event-stream")
    fake.script(
        "/chat/completions",
        FakeResponse(status=401, json={"error": {"code": 401, "message": "User not found."}}),
    )
    response = await client.post(f"{AI}/explain-command", json={"command": "ls"}, headers=headers)
    error(response, 400, "ai_key_invalid")


async def test_validate_key_and_models(
    ai: tuple[FastAPI, httpx.AsyncClient, Account], fake: FakeOpenRouter
) -> None:
    _, client, account = ai
    good = data(await client.post(f"{AI}/validate-key", headers=_headers(account)))
    assert good["valid"] is True
    bad = data(await client.post(f"{AI}/validate-key", headers=_headers(account, key="sk-or-bad")))
    assert bad == {**bad, "valid": False}
    first = data(await client.get(f"{AI}/models", headers=account.headers))
    second = data(await client.get(f"{AI}/models", headers=account.headers))
    assert first == second
    assert first["total"] >= 1
    assert {"id", "name", "context_length", "prompt_price", "completion_price"} <= set(
        first["models"][0]
    )
    assert len([r for r in fake.requests if r.path.endswith("/models")]) == 1


async def test_the_key_is_never_logged_nor_stored(
    ai: tuple[FastAPI, httpx.AsyncClient, Account], fake: FakeOpenRouter
) -> None:
    app, client, account = ai
    fake.default_completion(json.dumps(SUGGESTIONS))
    with capture_logs() as logs:
        await client.post(f"{AI}/suggest-command", json={"prompt": "x"}, headers=_headers(account))
        await client.post(f"{AI}/validate-key", headers=_headers(account))
        fake.script(
            "/chat/completions",
            FakeResponse(status=402, json={"error": {"code": 402, "message": "no"}}),
        )
        await client.post(f"{AI}/explain-command", json={"command": "y"}, headers=_headers(account))
    assert GOOD_KEY not in repr(logs)
    async with app.state.ctx.sessionmaker() as db:
        for table in Base.metadata.sorted_tables:
            rows = (await db.execute(text(f"SELECT * FROM {table.name}"))).all()  # noqa: S608
            assert GOOD_KEY not in repr(rows), table.name
