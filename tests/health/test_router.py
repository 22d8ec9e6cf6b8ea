"""Probes: live answers at once; ready reports the database and the broker, 503 when down."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import SettingsFactory, serving
from tests.helpers import data, error


@pytest.mark.parametrize("path", ["/health", "/api/v1/health", "/health/ready"])
async def test_ready_when_everything_answers(client: httpx.AsyncClient, path: str) -> None:
    body = data(await client.get(path))
    assert body["status"] == "ok"
    assert body["checks"]["database"] == "ok"
    assert body["version"]


async def test_not_ready_when_the_database_is_down(
    settings_factory: SettingsFactory, closed_port: int
) -> None:
    url = f"postgresql://postgres@127.0.0.1:{closed_port}/nothing"
    async with serving(settings_factory(database_url=url)) as (_, client):
        assert data(await client.get("/health/live")) == {"status": "ok"}
        body = error(await client.get("/health/ready"), 503, "not_ready")
        assert body["details"]["checks"]["database"] == "unavailable"


async def test_not_ready_when_redis_is_down(
    settings_factory: SettingsFactory, closed_port: int
) -> None:
    settings = settings_factory(redis_url=f"redis://127.0.0.1:{closed_port}/0")
    async with serving(settings) as (_, client):
        body = error(await client.get("/health/ready"), 503, "not_ready")
        assert body["details"]["checks"]["broker_redis"] == "unavailable"
        assert body["details"]["checks"]["database"] == "ok"
