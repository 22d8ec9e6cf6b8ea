"""API rate limits: per user and tier, per address when anonymous, stricter on sign-in."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy import update

from devpocket.db.models import User
from tests.conftest import SettingsFactory, serving
from tests.helpers import data, error, register

ME = "/api/v1/auth/me"


async def test_limit_headers_on_every_api_answer(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/health")
    assert response.headers["ratelimit-policy"] == '"anonymous";q=60;w=60'
    assert response.headers["ratelimit"].startswith('"anonymous";r=59;t=')
    missing = await client.get("/api/v1/nothing-here")
    assert missing.status_code == 404
    assert "ratelimit" in missing.headers
    # Probes and metrics are not limited.
    assert "ratelimit" not in (await client.get("/health/live")).headers


async def test_anonymous_callers_are_limited_per_address(
    settings_factory: SettingsFactory,
) -> None:
    async with serving(settings_factory(api_rate_limit_anonymous="3/minute")) as (_, client):
        here = {"X-Forwarded-For": "203.0.113.9"}
        for _ in range(3):
            assert (await client.get("/api/v1/health", headers=here)).status_code == 200
        refused = await client.get("/api/v1/health", headers=here)
        body = error(refused, 429, "rate_limited")
        assert body["details"]["limit"] == "anonymous"
        assert 0 < int(refused.headers["retry-after"]) <= 61
        assert refused.headers["ratelimit"].startswith('"anonymous";r=0;')
        elsewhere = {"X-Forwarded-For": "198.51.100.20"}
        assert (await client.get("/api/v1/health", headers=elsewhere)).status_code == 200


async def test_signed_in_users_have_their_own_budget(settings_factory: SettingsFactory) -> None:
    settings = settings_factory(api_rate_limit_free="4/minute")
    async with serving(settings) as (_, client):
        alice = await register(client)
        bob = await register(client)
        for _ in range(4):
            data(await client.get(ME, headers=alice.headers))
        error(await client.get(ME, headers=alice.headers), 429, "rate_limited")
        # Same address, another user: unaffected.
        data(await client.get(ME, headers=bob.headers))


async def test_tier_sets_the_rate(settings_factory: SettingsFactory) -> None:
    settings = settings_factory(api_rate_limit_free="2/minute", api_rate_limit_pro="50/minute")
    async with serving(settings) as (app, client):
        account = await register(client)
        async with app.state.ctx.sessionmaker() as db:
            await db.execute(
                update(User)
                .where(User.id == uuid.UUID(account.user_id))
                .values(subscription_tier="pro")
            )
            await db.commit()
        await app.state.ctx.auth_cache.invalidate(uuid.UUID(account.user_id))
        response = await client.get(ME, headers=account.headers)
        assert data(response)["subscription_tier"] == "pro"
        for _ in range(5):
            response = await client.get(ME, headers=account.headers)
            assert response.status_code == 200
        assert response.headers["ratelimit-policy"] == '"pro";q=50;w=60'


async def test_sign_in_endpoints_are_stricter(settings_factory: SettingsFactory) -> None:
    async with serving(settings_factory(auth_rate_limit="2/minute")) as (_, client):
        body = {"email": "nobody@example.com", "password": "Wrong-pass-123"}
        for _ in range(2):
            error(await client.post("/api/v1/auth/login", json=body), 401)
        refused = error(await client.post("/api/v1/auth/login", json=body), 429, "rate_limited")
        assert refused["details"]["limit"] == "auth"


async def test_limits_can_be_switched_off(settings_factory: SettingsFactory) -> None:
    settings = settings_factory(rate_limit_enabled=False, api_rate_limit_anonymous="1/minute")
    async with serving(settings) as (_, client):
        for _ in range(3):
            response = await client.get("/api/v1/health")
            assert response.status_code == 200
            assert "ratelimit" not in response.headers


async def test_rate_limited_requests_are_counted(settings_factory: SettingsFactory) -> None:
    async with serving(settings_factory(api_rate_limit_anonymous="1/minute")) as (_, client):
        await client.get("/api/v1/health")
        await client.get("/api/v1/health")
        text = (await client.get("/metrics")).text
    assert 'devpocket_rate_limit_rejections_total{limit="anonymous"}' in text
