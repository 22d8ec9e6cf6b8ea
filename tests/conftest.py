"""Shared fixtures: real services, a database per test, the app with its lifespan.

The backend is chosen with ``--backend`` (or ``DEVPOCKET_TEST_BACKEND``): ``sqlite`` (default,
in-process broker) or ``postgres`` (PostgreSQL and Redis). Services come from
``DEVPOCKET_TEST_POSTGRES_URL`` (an admin URL; each test gets its own database made from a migrated
template) and ``DEVPOCKET_TEST_REDIS_URL`` (each test gets its own key prefix). When a service is
unreachable, the tests that need it are skipped naming it, unless
``DEVPOCKET_TEST_REQUIRE_SERVICES=1`` (CI), which turns that into a failure.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from urllib.parse import urlsplit

import pytest

POSTGRES_URL = os.environ.get(
    "DEVPOCKET_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("DEVPOCKET_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
REQUIRE_SERVICES = os.environ.get("DEVPOCKET_TEST_REQUIRE_SERVICES", "") in {"1", "true", "yes"}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--backend",
        choices=("sqlite", "postgres"),
        default=os.environ.get("DEVPOCKET_TEST_BACKEND", "sqlite"),
        help="sqlite with the in-process broker, or postgres with Redis",
    )


def _reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or default_port), 1):
            return True
    except OSError:
        return False


def require_service(name: str, url: str, default_port: int) -> None:
    """Skip (locally) or fail (CI) when a service a test needs is not reachable."""
    if _reachable(url, default_port):
        return
    message = f"{name} is not reachable at {urlsplit(url).netloc}; start it to run this test"
    if REQUIRE_SERVICES:
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.config.getoption("--backend"))


@pytest.fixture(scope="session")
def redis_server_url() -> str:
    require_service("Redis", REDIS_URL, 6379)
    return REDIS_URL


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    require_service("PostgreSQL", POSTGRES_URL, 5432)
    return POSTGRES_URL


@pytest.fixture
async def redis_prefix(redis_server_url: str) -> AsyncIterator[str]:
    """A key prefix of this test's own; its keys are deleted afterwards."""
    from redis.asyncio import Redis

    prefix = f"devpocket-test-{uuid.uuid4().hex[:12]}:"
    yield prefix
    client = Redis.from_url(redis_server_url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=500)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@pytest.fixture
def unique() -> Iterator[str]:
    """A short unique token for names and emails."""
    yield uuid.uuid4().hex[:10]
