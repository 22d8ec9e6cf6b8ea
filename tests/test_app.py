"""The envelope for every answer, routing without redirects, the catch-all."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from structlog.testing import capture_logs

from tests.helpers import data, error


async def test_unknown_route_is_an_enveloped_404(client: httpx.AsyncClient) -> None:
    body = error(await client.get("/api/v1/nowhere"), 404, "not_found")
    assert body["request_id"]


async def test_wrong_method_is_an_enveloped_405(client: httpx.AsyncClient) -> None:
    error(await client.delete("/health/live"), 405, "method_not_allowed")


@pytest.mark.parametrize("path", ["/health/live", "/health/live/", "/api/v1/health/"])
async def test_trailing_slash_answers_without_redirect(
    client: httpx.AsyncClient, path: str
) -> None:
    response = await client.get(path)
    assert response.status_code == 200
    assert response.json()["success"] is True


async def test_validation_error_uses_envelope_with_details(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/auth/register", json={"email": "not-an-email"})
    body = error(response, 422, "validation_error")
    fields = {d["field"] for d in body["details"]}
    assert {"email", "username", "password"} <= fields


async def test_malformed_json_is_a_validation_error(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/auth/login", content=b"{not json", headers={"content-type": "application/json"}
    )
    error(response, 422, "validation_error")


async def test_validation_error_never_echoes_the_password(client: httpx.AsyncClient) -> None:
    secret = "a-very-secret-password-" * 10
    response = await client.post(
        "/api/v1/auth/register",
        json={"email": "x@example.com", "username": "ab", "password": secret},
    )
    error(response, 422, "validation_error")
    assert "a-very-secret-password" not in response.text


async def test_oversized_body_is_an_enveloped_413(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/auth/login",
        content=b"x" * (2 * 1024 * 1024),
        headers={"content-type": "application/json"},
    )
    error(response, 413, "payload_too_large")


async def test_request_id_is_taken_from_the_client_and_returned(client: httpx.AsyncClient) -> None:
    response = await client.get("/health/live", headers={"X-Request-ID": "req-123"})
    assert response.headers["x-request-id"] == "req-123"
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_unexpected_failure_is_a_500_with_request_id_logged_once(
    app_client: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, client = app_client

    async def explode() -> None:
        raise RuntimeError("boom")

    app.add_api_route("/explode", explode)
    with capture_logs() as logs:
        response = await client.get("/explode", headers={"X-Request-ID": "abc-1"})
    body = error(response, 500, "internal_error")
    assert body["request_id"] == "abc-1"
    assert "boom" not in body["message"]
    tracebacks = [entry for entry in logs if entry.get("exc_info")]
    assert len(tracebacks) == 1
    assert tracebacks[0]["event"] == "request.failed"


async def test_openapi_has_stable_operation_ids(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    ids = [op["operationId"] for path in schema["paths"].values() for op in path.values()]
    assert len(ids) == len(set(ids))
    assert "auth_login" in ids
    assert "users_get_preferences" in ids


async def test_health_probes(client: httpx.AsyncClient) -> None:
    assert data(await client.get("/health/live")) == {"status": "ok"}
    ready = data(await client.get("/health/ready"))
    assert ready["status"] == "ok"
    assert all(v == "ok" for v in ready["checks"].values())
