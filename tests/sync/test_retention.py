"""Feed retention: superseded changes and stored push answers go after the window; the latest
change of every entity, tombstones, and what a device still needs stay."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from devpocket.db.models import SyncAppliedChange, SyncChange
from devpocket.sync.changes import Entity, Op, record_change
from devpocket.sync.retention import prune_feed
from tests.helpers import Account, data, register

NOW = datetime.now(UTC)
OLD = NOW - timedelta(days=91)  # beyond the default window of 90 days
RECENT = NOW - timedelta(days=89)


async def _change(
    db: AsyncSession,
    user_id: uuid.UUID,
    entity_id: uuid.UUID,
    op: Op,
    data: dict[str, Any] | None,
    at: datetime,
    entity: Entity = "ssh_profile",
) -> int:
    return await record_change(
        db, user_id, entity, entity_id, op, data, fields=list(data or {}), device_id=None,
        changed_at=at,
    )  # fmt: skip


async def _feed(db: AsyncSession, user_id: uuid.UUID) -> list[tuple[int, str, str | None]]:
    rows = await db.execute(
        select(SyncChange.cursor, SyncChange.op, SyncChange.data)
        .where(SyncChange.user_id == user_id)
        .order_by(SyncChange.cursor)
    )
    return [(cursor, op, (value or {}).get("name")) for cursor, op, value in rows]


async def test_old_superseded_changes_go_and_the_latest_of_each_entity_stays(
    app_client: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, client = app_client
    user_id = uuid.UUID((await register(client)).user_id)
    kept, deleted, recent = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    async with app.state.ctx.sessionmaker() as db:
        await _change(db, user_id, kept, "upsert", {"name": "a1"}, OLD)  # 1: superseded, old
        await _change(db, user_id, kept, "upsert", {"name": "a2"}, OLD)  # 2: the latest
        await _change(db, user_id, deleted, "upsert", {"name": "b1"}, OLD)  # 3: superseded, old
        await _change(db, user_id, deleted, "delete", None, OLD)  # 4: a tombstone stays
        await _change(db, user_id, recent, "upsert", {"name": "c1"}, RECENT)  # 5: a merge base
        await _change(db, user_id, recent, "upsert", {"name": "c2"}, NOW)  # 6
        await db.commit()
        pruned = await prune_feed(db, app.state.settings, NOW)
        await db.commit()
        assert pruned.superseded == 2
        assert await _feed(db, user_id) == [
            (2, "upsert", "a2"),
            (4, "delete", None),
            (5, "upsert", "c1"),
            (6, "upsert", "c2"),
        ]
        # Again: nothing more to do.
        assert not await prune_feed(db, app.state.settings, NOW)


async def test_a_device_reading_from_the_start_after_pruning_gets_every_entity_as_it_is(
    app_client: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, client = app_client
    account = await register(client)
    profiles = "/api/v1/ssh/profiles"
    body = {"name": "web", "host": "web.example.com", "username": "deploy", "password": "pw-1"}
    created = data(await client.post(profiles, json=body, headers=account.headers), 201)
    for name in ("web-2", "web-3"):
        await client.put(
            f"{profiles}/{created['id']}", json={"name": name}, headers=account.headers
        )
    async with app.state.ctx.sessionmaker() as db:
        # As if it all happened long ago.
        await db.execute(
            update(SyncChange)
            .where(SyncChange.user_id == uuid.UUID(account.user_id))
            .values(changed_at=OLD)
        )
        await db.commit()
        assert (await prune_feed(db, app.state.settings, NOW)).superseded == 2
        await db.commit()
    feed = data(await client.get("/api/v1/sync/changes?since=0", headers=account.headers))
    [change] = feed["changes"]
    assert (change["entity_id"], change["data"]["name"]) == (created["id"], "web-3")


async def test_feed_entries_of_history_the_plan_retention_removed_go(
    app_client: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, client = app_client
    account: Account = await register(client)
    user_id = uuid.UUID(account.user_id)
    commands = "/api/v1/history/commands"
    alive = data(await client.post(commands, json={"command": "ls"}, headers=account.headers), 201)
    gone = uuid.uuid4()  # an entry removed by retention: no row, no tombstone
    async with app.state.ctx.sessionmaker() as db:
        await _change(db, user_id, gone, "upsert", {"name": "x"}, NOW, entity="history")
        await db.commit()
        pruned = await prune_feed(db, app.state.settings, NOW)
        await db.commit()
        assert pruned.expired_history == 1
        left = await db.scalars(select(SyncChange.entity_id).where(SyncChange.user_id == user_id))
        assert list(left) == [uuid.UUID(alive["id"])]


async def test_stored_push_answers_go_after_the_window(
    app_client: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, client = app_client
    user_id = uuid.UUID((await register(client)).user_id)
    old, recent = uuid.uuid4(), uuid.uuid4()
    async with app.state.ctx.sessionmaker() as db:
        db.add_all(
            [
                SyncAppliedChange(user_id=user_id, change_id=old, result={}, applied_at=OLD),
                SyncAppliedChange(user_id=user_id, change_id=recent, result={}, applied_at=RECENT),
            ]
        )
        await db.commit()
        assert (await prune_feed(db, app.state.settings, NOW)).push_answers == 1
        await db.commit()
        left = await db.scalars(
            select(SyncAppliedChange.change_id).where(SyncAppliedChange.user_id == user_id)
        )
        assert list(left) == [recent]
