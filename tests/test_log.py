"""Logs: one JSON-able line per request with its id and the user; secrets never appear."""

from __future__ import annotations

import json
import logging

import httpx
import pytest
import structlog
from structlog.testing import capture_logs

from devpocket.log import REDACTED, configure_logging, redact_secrets
from tests.conftest import SettingsFactory, serving
from tests.helpers import PASSWORD, register


async def test_access_log_names_request_and_user(client: httpx.AsyncClient) -> None:
    account = await register(client)
    with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
        await client.get(
            "/api/v1/auth/me", headers={**account.headers, "X-Request-ID": "trace-me-1"}
        )
    [line] = [entry for entry in logs if entry["event"] == "request"]
    assert line["route"] == "/api/v1/auth/me"
    assert line["status"] == 200
    assert line["user_id"] == account.user_id
    assert line["request_id"] == "trace-me-1"
    assert line["duration_ms"] >= 0


async def test_no_secret_reaches_the_log(client: httpx.AsyncClient) -> None:
    with capture_logs() as logs:
        account = await register(client)
        await client.post("/api/v1/auth/login", json={"email": account.email, "password": PASSWORD})
        await client.post("/api/v1/auth/refresh", json={"refresh_token": account.refresh_token})
        await client.get("/api/v1/auth/me", headers=account.headers)
    text = repr(logs)
    for secret in (PASSWORD, account.refresh_token, account.access_token):
        assert secret not in text


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        ({"password": "hunter22"}, {"password": REDACTED}),
        ({"new_password": "x"}, {"new_password": REDACTED}),
        ({"api_key": "sk-or-1"}, {"api_key": REDACTED}),
        ({"refresh_token": "abc"}, {"refresh_token": REDACTED}),
        ({"header": "Bearer abc.def.ghi"}, {"header": f"Bearer {REDACTED}"}),
        ({"path": "/api/v1/auth/me", "status": 200}, {"path": "/api/v1/auth/me", "status": 200}),
    ],
)
def test_redaction(event: dict[str, object], expected: dict[str, object]) -> None:
    assert dict(redact_secrets(None, "info", {"event": "x", **event})) == {"event": "x", **expected}


async def test_log_lines_are_json_with_the_request_id(
    settings_factory: SettingsFactory, capfd: pytest.CaptureFixture[str]
) -> None:
    async with serving(settings_factory(log_format="json")) as (_, client):
        await client.get("/api/v1/health", headers={"X-Request-ID": "json-line-1"})
    lines = [
        json.loads(line) for line in capfd.readouterr().err.splitlines() if line.startswith("{")
    ]
    [access] = [line for line in lines if line.get("request_id") == "json-line-1"]
    assert access["event"] == "request"
    assert access["level"] == "info"
    assert access["timestamp"].endswith("Z")


@pytest.mark.parametrize(
    "path",
    ["/ws/terminal?token=eyJ.secret.sig", "/ws/terminal?x=1&access_token=eyJ.secret.sig&y=2"],
)
def test_tokens_in_urls_logged_by_libraries_are_redacted(
    settings_factory: SettingsFactory, capfd: pytest.CaptureFixture[str], path: str
) -> None:
    configure_logging(settings_factory(log_format="json"))
    # uvicorn's own line for every WebSocket, query string included.
    logging.getLogger("uvicorn.error").info('%s - "WebSocket %s" [accepted]', "127.0.0.1:1", path)
    err = capfd.readouterr().err
    assert "eyJ.secret.sig" not in err
    assert "token=[redacted]" in err


async def test_debug_logs_carry_no_sql_parameters(
    settings_factory: SettingsFactory, capfd: pytest.CaptureFixture[str]
) -> None:
    """aiosqlite logs every statement with its values at DEBUG: password hashes, token hashes."""
    async with serving(settings_factory(log_level="DEBUG", log_format="json")) as (_, client):
        await register(client)
    err = capfd.readouterr().err
    assert "$argon2id$" not in err
    assert "INSERT INTO users" not in err
