"""Recording changes: cursors gap-free and in commit order under concurrent writers; the notice
goes out after commit, never for a rollback."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import httpx
import orjson
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from devpocket.db.hooks import run_after_commit
from devpocket.sync import repository
from devpocket.sync.changes import channel, record_change
from tests.helpers import register


async def _record(db: AsyncSession, user_id: uuid.UUID, device_id: uuid.UUID | None = None) -> int:
    return await record_change(
        db,
        user_id,
        "ssh_profile",
        uuid.uuid4(),
        "upsert",
        {"name": "x"},
        fields=["name"],
        device_id=device_id,
        changed_at=datetime.now(UTC),
    )


async def _user(app_client: tuple[FastAPI, httpx.AsyncClient]) -> uuid.UUID:
    return uuid.UUID((await register(app_client[1])).user_id)


async def test_a_second_writer_waits_and_numbers_after_the_first_commits(
    app_client: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app = app_client[0]
    user_id = await _user(app_client)
    maker = app.state.ctx.sessionmaker
    async with maker() as first, maker() as second, maker() as reader:
        assert await _record(first, user_id) == 1
        waiting = asyncio.create_task(_record(second, user_id))
        await asyncio.sleep(0.2)
        assert not waiting.done()  # the first holds the user's feed
        # A reader meanwhile sees neither: the head and the changes agree.
        assert await repository.feed_head(reader, user_id) == 0
        await first.commit()
        assert await asyncio.wait_for(waiting, 5) == 2
        await second.commit()
        assert await repository.feed_head(reader, user_id) == 2


async def test_concurrent_and_rolled_back_writers_leave_no_gap(
    app_client: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app = app_client[0]
    user_id = await _user(app_client)

    async def write(keep: bool) -> int | None:
        async with app.state.ctx.sessionmaker() as db:
            cursor = await _record(db, user_id)
            await asyncio.sleep(0.01)
            if not keep:
                await db.rollback()  # its cursor goes back to the next writer
                return None
            await db.commit()
            return cursor

    cursors = await asyncio.gather(*(write(keep=n % 3 != 0) for n in range(21)))
    assert sorted(c for c in cursors if c is not None) == list(range(1, 15))
    async with app.state.ctx.sessionmaker() as db:
        changes = await repository.changes_between(db, user_id, after=0, upto=99, limit=100)
    assert [c.cursor for c in changes] == list(range(1, 15))


async def test_the_notice_goes_out_after_commit_only(
    app_client: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app = app_client[0]
    user_id = await _user(app_client)
    device_id = uuid.uuid4()
    ctx = app.state.ctx
    async with ctx.broker.subscribe(channel(user_id)) as notices:
        async with ctx.sessionmaker() as db:
            await _record(db, user_id, device_id)
            await db.rollback()
        async with ctx.sessionmaker() as db:
            await _record(db, user_id, device_id)
            await _record(db, user_id, device_id)
            assert await notices.get(timeout=0.2) is None
            await db.commit()
            await run_after_commit(db)  # what the request's unit of work does
        message = await notices.get(timeout=2.0)
        assert message is not None
        assert orjson.loads(message.data) == {"cursor": 2, "device_id": str(device_id)}
        assert await notices.get(timeout=0.2) is None  # one notice per transaction
