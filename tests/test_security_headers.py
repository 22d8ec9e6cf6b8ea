"""Security headers on every answer (errors too), HSTS behind TLS, host checks, CORS."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import SettingsFactory, serving
from tests.helpers import error

BASELINE = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cache-control": "no-store",
}


def _has_baseline(response: httpx.Response) -> None:
    for name, value in BASELINE.items():
        assert response.headers[name] == value, name
    assert "content-security-policy" in response.headers


async def test_headers_on_successes_and_errors(
    app_client: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, client = app_client

    async def explode() -> None:
        raise RuntimeError("boom")

    app.add_api_route("/explode", explode)
    answers = [
        await client.get("/health/live"),
        await client.get("/api/v1/no-such-thing"),
        await client.post(
            "/api/v1/auth/login",
            content=b"x" * (2 * 1024 * 1024),
            headers={"content-type": "application/json"},
        ),
        await client.get("/explode"),
        await client.post("/api/v1/auth/login", json={}),
    ]
    assert [a.status_code for a in answers] == [200, 404, 413, 500, 422]
    for answer in answers:
        _has_baseline(answer)
        assert answer.headers["content-security-policy"].startswith("default-src 'none'")
        assert "strict-transport-security" not in answer.headers


async def test_docs_page_gets_a_policy_it_can_run_under(client: httpx.AsyncClient) -> None:
    docs = await client.get("/docs")
    assert docs.status_code == 200
    assert "https://cdn.jsdelivr.net" in docs.headers["content-security-policy"]


@pytest.mark.parametrize(
    ("trusted", "expected"),
    [(["127.0.0.1/32"], True), ([], False)],
)
async def test_hsts_when_a_trusted_proxy_says_tls(
    settings_factory: SettingsFactory, trusted: list[str], expected: bool
) -> None:
    async with serving(settings_factory(trusted_proxies=trusted)) as (_, client):
        response = await client.get("/health/live", headers={"X-Forwarded-Proto": "https"})
    assert ("strict-transport-security" in response.headers) is expected


async def test_hsts_over_tls(
    settings: object, app_client: tuple[FastAPI, httpx.AsyncClient]
) -> None:
    app, _ = app_client
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as client:
        response = await client.get("/health/live")
    assert response.headers["strict-transport-security"].startswith("max-age=")


async def test_unknown_host_is_refused_but_probes_answer(settings_factory: SettingsFactory) -> None:
    settings = settings_factory(allowed_hosts=["api.devpocket.example"])
    async with serving(settings) as (_, client):
        refused = await client.get("/api/v1/health", headers={"Host": "evil.example"})
        error(refused, 400, "invalid_host")
        _has_baseline(refused)
        served = await client.get("/api/v1/health", headers={"Host": "api.devpocket.example:443"})
        assert served.status_code == 200
        probe = await client.get("/health/live", headers={"Host": "10.0.0.7:8000"})
        assert probe.status_code == 200


async def test_cors_allows_only_configured_origins(settings_factory: SettingsFactory) -> None:
    settings = settings_factory(cors_origins=["https://app.devpocket.example"])
    async with serving(settings) as (_, client):
        allowed = await client.get(
            "/api/v1/health", headers={"Origin": "https://app.devpocket.example"}
        )
        assert allowed.headers["access-control-allow-origin"] == "https://app.devpocket.example"
        other = await client.get("/api/v1/health", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers
