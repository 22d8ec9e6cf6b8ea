"""Command history is kept as long as the user's plan says (``cloud_history`` days)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
from fastapi import FastAPI
from sqlalchemy import select, update

from devpocket.db.models import CommandHistory, User
from devpocket.history.retention import prune_expired
from tests.helpers import register
from tests.history.conftest import InsertRows, history_rows

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


async def test_entries_older_than_the_plans_retention_are_removed(
    app_client: tuple[FastAPI, httpx.AsyncClient], insert_rows: InsertRows
) -> None:
    app, client = app_client
    free, team = await register(client), await register(client)
    ages = {"free-old": 40, "free-new": 10, "team-old": 400}
    rows = []
    for label, days in ages.items():
        owner = free if label.startswith("free") else team
        [row] = history_rows(owner.user_id, 1)
        rows.append({**row, "command": label, "executed_at": NOW - timedelta(days=days)})
    await insert_rows(rows)
    async with app.state.ctx.sessionmaker() as db:
        await db.execute(
            update(User).where(User.id == uuid.UUID(team.user_id)).values(subscription_tier="team")
        )
        removed = await prune_expired(db, app.state.settings, NOW)
        await db.commit()
        owners = [uuid.UUID(free.user_id), uuid.UUID(team.user_id)]
        left = await db.scalars(
            select(CommandHistory.command)
            .where(CommandHistory.user_id.in_(owners))
            .order_by(CommandHistory.command)
        )
        kept = list(left)
    assert kept == ["free-new", "team-old"]  # free keeps 30 days; team keeps everything
    assert removed >= 1
