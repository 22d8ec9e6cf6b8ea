"""SQLite writers queue in the event loop; reads never wait; PostgreSQL takes no lock."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import httpx
import pytest
from fastapi import FastAPI

from devpocket.db.models import User
from tests.helpers import register


def _user() -> User:
    name = f"w_{uuid.uuid4().hex[:10]}"
    now = datetime.now(UTC)
    return User(
        email=f"{name}@example.com",
        username=name,
        username_key=name,
        created_at=now,
        updated_at=now,
        preferences={},
    )


async def test_second_writer_waits_for_the_first_to_commit(
    app_client: tuple[FastAPI, httpx.AsyncClient], backend: str
) -> None:
    app, _ = app_client
    sessionmaker = app.state.ctx.sessionmaker
    if backend != "sqlite":
        assert sessionmaker.class_.write_lock is None
        return
    order: list[str] = []
    async with sessionmaker() as first, sessionmaker() as second:
        first.add(_user())
        await first.flush()  # takes the lock
        second.add(_user())
        waiting = asyncio.create_task(second.flush())
        await asyncio.sleep(0.05)
        assert not waiting.done()
        # Reads are not held up by a writer.
        assert await second.get(User, uuid.uuid4()) is None
        order.append("first commits")
        await first.commit()
        await asyncio.wait_for(waiting, 5)
        order.append("second flushed")
        await second.commit()
    assert order == ["first commits", "second flushed"]


async def test_lock_is_released_when_a_transaction_rolls_back(
    app_client: tuple[FastAPI, httpx.AsyncClient], backend: str
) -> None:
    app, _ = app_client
    sessionmaker = app.state.ctx.sessionmaker
    async with sessionmaker() as session:
        session.add(_user())
        await session.flush()
        await session.rollback()
    lock = sessionmaker.class_.write_lock
    assert lock is None or not lock.locked()


@pytest.mark.parametrize("concurrency", [12])
async def test_concurrent_registrations_all_succeed(
    client: httpx.AsyncClient, concurrency: int
) -> None:
    accounts = await asyncio.gather(*(register(client) for _ in range(concurrency)))
    assert len({a.user_id for a in accounts}) == concurrency
