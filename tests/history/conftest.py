"""One app and database for the tests of this package; each test keeps to accounts of its own.

History is per user, so accounts keep tests apart as well as databases would, and a database per
test (or per module) costs about a second on PostgreSQL (a copy of the template, a dropped one, a
Redis prefix) for some fifty tests here. Rate limits are off and password hashing is cheap: these
tests register many users from one address, and test neither.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import insert

from devpocket.db.models import CommandHistory
from tests.conftest import (
    REDIS_URL,
    TEST_SECRET,
    IsolatedSettings,
    forget_redis_keys,
    postgres_database,
    require_service,
    serving,
)
from tests.helpers import Account, data, register

COMMANDS = "/api/v1/history/commands"

Record = Callable[..., Awaitable[dict[str, Any]]]
InsertRows = Callable[[list[dict[str, Any]]], Awaitable[None]]

# Variable parts are lowercase words, so that sorting by command is the same in every collation.
TEMPLATES = (
    "git commit -m 'fix {w}'", "git status", "docker compose up -d {w}", "docker ps -a",
    "kubectl get pods -n {w}", "ls -la /var/log/{w}", "vim /etc/nginx/sites-available/{w}.conf",
    "npm run build", "python manage.py migrate {w}", "ssh deploy@{w}.example.com",
    "tail -f /var/log/nginx/access.log", "grep -r {w} src", "make test",
    "terraform plan -var env={w}",
)  # fmt: skip
WORDS = ("alpha", "beta", "gamma", "delta", "omega", "prod", "stage", "api", "web", "worker")
DIRECTORIES = ("/srv/app", "/home/dev/projects/api", "/etc/nginx", "/tmp", None)
TAGS = ("deploy", "prod", "debug", "git", "db")
RESULTS = ("success", "success", "success", "error", "warning", "info")
START = datetime(2025, 1, 1, tzinfo=UTC)


def history_rows(
    user_id: str,
    count: int,
    *,
    devices: Sequence[uuid.UUID | None] = (None,),
    profiles: Sequence[uuid.UUID | None] = (None,),
    seed: int = 7,
) -> list[dict[str, Any]]:
    """``count`` varied entries of one user over 60 days: the same for the same seed, ids aside."""
    rng = random.Random(seed)
    rows = []
    for n in range(count):
        result = rng.choice(RESULTS)
        timed = rng.random() < 0.8
        rows.append(
            {
                "id": uuid.uuid4(),
                "user_id": uuid.UUID(user_id),
                "command": rng.choice(TEMPLATES).format(w=rng.choice(WORDS)),
                "output": f"line {n}",
                "result_type": result,
                "exit_code": {"success": 0, "error": 1}.get(result),
                "execution_time_ms": rng.randrange(5000) if timed else None,
                "session_id": f"s-{rng.randrange(20)}",
                "working_directory": rng.choice(DIRECTORIES),
                "shell_type": "bash",
                # Half hours over 60 days: many entries share one, and ties are ordered by id.
                "executed_at": START + timedelta(minutes=30 * rng.randrange(2880)),
                "ssh_profile_id": rng.choice(profiles),
                "device_id": rng.choice(devices),
                "is_favorite": rng.random() < 0.05,
                "tags": rng.sample(TAGS, rng.randrange(3)),
                "output_start": None,
                "output_end": None,
                "created_at": START,
                "updated_at": START,
            }
        )
    return rows


@asynccontextmanager
async def _module_database(
    backend: str, template: str, tmp_path_factory: pytest.TempPathFactory, admin_url: str | None
) -> AsyncIterator[str]:
    if backend == "sqlite":
        import shutil

        target = tmp_path_factory.mktemp("history") / "db.sqlite3"
        shutil.copyfile(template.removeprefix("sqlite:///"), target)
        yield f"sqlite:///{target}"
        return
    assert admin_url is not None
    async with postgres_database(admin_url, "history", template.rsplit("/", 1)[1]) as url:
        yield url


@pytest.fixture(scope="package")
async def app_client(
    backend: str,
    template_database: str,
    tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    admin = request.getfixturevalue("postgres_admin_url") if backend == "postgres" else None
    options: dict[str, Any] = {}
    if backend == "postgres":
        require_service("Redis", REDIS_URL, 6379)
        options = {
            "redis_url": REDIS_URL,
            "redis_key_prefix": f"devpocket-test-{uuid.uuid4().hex[:12]}:",
        }
    async with _module_database(backend, template_database, tmp_path_factory, admin) as url:
        settings = IsolatedSettings(
            environment="testing",
            testing=True,
            data_dir=tmp_path_factory.mktemp("history-data"),
            database_url=url,
            jwt_secret_key=TEST_SECRET,
            auto_migrate=False,
            public_base_url="http://testserver",
            rate_limit_enabled=False,
            password_hash_time_cost=1,
            password_hash_memory_kib=1024,
            **options,
        )
        try:
            async with serving(settings) as pair:
                yield pair
        finally:
            if options:
                await forget_redis_keys(REDIS_URL, options["redis_key_prefix"])


@pytest.fixture
async def account(client: httpx.AsyncClient) -> Account:
    return await register(client)


@pytest.fixture
def record(client: httpx.AsyncClient, account: Account) -> Record:
    """``POST /history/commands`` as ``account``; answers the created entry."""

    async def create(**fields: Any) -> dict[str, Any]:
        body = {"command": "ls", **fields}
        created: dict[str, Any] = data(
            await client.post(COMMANDS, json=body, headers=account.headers), 201
        )
        return created

    return create


@pytest.fixture
def insert_rows(app_client: tuple[FastAPI, httpx.AsyncClient]) -> InsertRows:
    """Rows straight into ``command_history`` through the app's engine, in one statement
    (the search triggers on SQLite and the generated column on PostgreSQL still apply)."""

    async def insert_all(rows: list[dict[str, Any]]) -> None:
        async with app_client[0].state.ctx.engine.begin() as connection:
            await connection.execute(insert(CommandHistory), rows)

    return insert_all
