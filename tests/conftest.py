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

from tests.smtp import SmtpServer, running_smtp_server

POSTGRES_URL = os.environ.get(
    "DEVPOCKET_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("DEVPOCKET_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
pytest_plugins = ["tests.ssh_servers"]

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
        with socket.create_connection(
            (parts.hostname or "127.0.0.1", parts.port or default_port), 1
        ):
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


async def forget_redis_keys(url: str, prefix: str) -> None:
    """Delete every key under ``prefix``."""
    from redis.asyncio import Redis

    client = Redis.from_url(url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=500)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@pytest.fixture
async def redis_prefix(redis_server_url: str) -> AsyncIterator[str]:
    """A key prefix of this test's own; its keys are deleted afterwards."""
    prefix = f"devpocket-test-{uuid.uuid4().hex[:12]}:"
    yield prefix
    await forget_redis_keys(redis_server_url, prefix)


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """A real SMTP server on loopback that keeps what it receives."""
    with running_smtp_server() as server:
        yield server


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port that refuses connections: bound (so nothing takes it), not listening."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        yield port


@pytest.fixture
def unique() -> str:
    """A short unique token for names and emails."""
    return uuid.uuid4().hex[:10]


# --- The application on a database of its own -------------------------------------------------

import asyncio  # noqa: E402
from concurrent.futures import Future, ThreadPoolExecutor  # noqa: E402
from contextlib import asynccontextmanager  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, Protocol  # noqa: E402

import anyio  # noqa: E402
import httpx  # noqa: E402
from fastapi import FastAPI  # noqa: E402
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource  # noqa: E402

from devpocket.app import create_app  # noqa: E402
from devpocket.db import migrate  # noqa: E402
from devpocket.settings import Settings  # noqa: E402

TEST_SECRET = "test-secret-" + "x" * 40


class IsolatedSettings(Settings):
    """Settings from the arguments only: the runner's environment never leaks into a test."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


def _database_name(admin_url: str, name: str) -> str:
    scheme, _, rest = admin_url.partition("://")
    base = rest.rsplit("/", 1)[0]
    return f"{scheme}://{base}/{name}"


async def _admin_execute(admin_url: str, statement: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(admin_url.replace("postgresql+asyncpg", "postgresql"))
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


# Copies of the template are made one test ahead and dropped after their test by a thread of its
# own: creating and dropping a database takes a third of a second that no test need wait for.
# The run drops what is left before it ends (pytest_sessionfinish), so nothing is left behind.
_ADMIN = ThreadPoolExecutor(max_workers=1, thread_name_prefix="test-databases")
_AHEAD: dict[tuple[str, str], list[Future[str]]] = {}


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _ADMIN.shutdown(wait=True)


def _release(admin_url: str, template: str) -> None:
    """Drop the copies made ahead of ``template`` (run on the admin thread, after them)."""
    for future in _AHEAD.pop((admin_url, template), []):
        _drop(admin_url, future.result())


def _drop(admin_url: str, name: str) -> None:
    asyncio.run(_admin_execute(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _copy(admin_url: str, template: str) -> str:
    name = f"devpocket_test_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin_execute(admin_url, f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    return name


async def _template_copy(admin_url: str, template: str) -> str:
    made = _AHEAD.setdefault((admin_url, template), [])
    if not made:
        made.append(_ADMIN.submit(_copy, admin_url, template))
    future = made.pop(0)
    made.append(_ADMIN.submit(_copy, admin_url, template))
    return await asyncio.wrap_future(future)


@asynccontextmanager
async def template_copy(admin_url: str, template: str) -> AsyncIterator[str]:
    """A copy of the migrated template for one test, made ahead and dropped behind."""
    name = await _template_copy(admin_url, template)
    try:
        yield _database_name(admin_url, name)
    finally:
        _ADMIN.submit(_drop, admin_url, name)


@asynccontextmanager
async def postgres_database(
    admin_url: str, kind: str, template: str | None = None
) -> AsyncIterator[str]:
    """A PostgreSQL database of this test run's own (a copy of ``template``), dropped after."""
    name = f"devpocket_{kind}_{uuid.uuid4().hex[:12]}"
    copy = f' TEMPLATE "{template}"' if template else ""
    await _admin_execute(admin_url, f'CREATE DATABASE "{name}"{copy}')
    try:
        yield _database_name(admin_url, name)
    finally:
        await _admin_execute(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
async def template_database(
    backend: str, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> AsyncIterator[str]:
    """A database migrated once per run; each test gets a copy of it."""
    if backend == "sqlite":
        path = tmp_path_factory.mktemp("template") / "template.sqlite3"
        url = f"sqlite:///{path}"
        await anyio.to_thread.run_sync(
            migrate.upgrade, IsolatedSettings(database_url=url, data_dir=path.parent)
        )
        yield url
        return
    admin = request.getfixturevalue("postgres_admin_url")
    async with postgres_database(admin, "tpl") as url:
        await anyio.to_thread.run_sync(
            migrate.upgrade,
            IsolatedSettings(database_url=url, data_dir=tmp_path_factory.mktemp("pg")),
        )
        yield url
        # No copy may be in the making while the template is dropped.
        await asyncio.wrap_future(_ADMIN.submit(_release, admin, url.rsplit("/", 1)[1]))


@pytest.fixture
async def database_url(
    backend: str, template_database: str, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[str]:
    if backend == "sqlite":
        import shutil

        target = tmp_path / "db.sqlite3"
        shutil.copyfile(template_database.removeprefix("sqlite:///"), target)
        yield f"sqlite:///{target}"
        return
    admin = request.getfixturevalue("postgres_admin_url")
    template = template_database.rsplit("/", 1)[1]
    async with template_copy(admin, template) as url:
        yield url


@pytest.fixture
async def empty_database_url(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[str]:
    """A database with no schema at all, for migration tests."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.sqlite3'}"
        return
    async with postgres_database(request.getfixturevalue("postgres_admin_url"), "empty") as url:
        yield url


class SettingsFactory(Protocol):
    def __call__(self, **overrides: Any) -> Settings: ...


@pytest.fixture
def settings_factory(
    backend: str, database_url: str, tmp_path: Path, request: pytest.FixtureRequest
) -> SettingsFactory:
    base: dict[str, Any] = {
        "environment": "testing",
        "testing": True,
        "data_dir": tmp_path / "data",
        "database_url": database_url,
        "jwt_secret_key": TEST_SECRET,
        "auto_migrate": False,
        "public_base_url": "http://testserver",
        "trusted_proxies": ["127.0.0.1/32"],
    }
    if backend == "postgres":
        base["redis_url"] = request.getfixturevalue("redis_server_url")
        base["redis_key_prefix"] = request.getfixturevalue("redis_prefix")

    def make(**overrides: Any) -> Settings:
        return IsolatedSettings(**{**base, **overrides})

    return make


@pytest.fixture
def settings(settings_factory: SettingsFactory) -> Settings:
    return settings_factory()


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[FastAPI]:
    """Run the app's lifespan in a task of its own.

    pytest-asyncio may set a fixture up and tear it down in different tasks; the lifespan owns
    a task group, which must be entered and left in one task.
    """
    import asyncio

    started = asyncio.Event()
    stop = asyncio.Event()

    async def lifespan() -> None:
        async with app.router.lifespan_context(app):
            started.set()
            await stop.wait()

    task = asyncio.create_task(lifespan())
    waiter = asyncio.create_task(started.wait())
    await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        waiter.cancel()
        await task  # raises the startup failure
    try:
        yield app
    finally:
        stop.set()
        await task


@asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The app with its lifespan running, and an HTTP client talking to it in-process."""
    async with running(create_app(settings)) as app:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield app, client


@pytest.fixture
async def app_client(settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    async with serving(settings) as pair:
        yield pair


@pytest.fixture
def client(app_client: tuple[FastAPI, httpx.AsyncClient]) -> httpx.AsyncClient:
    return app_client[1]
