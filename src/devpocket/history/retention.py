"""Keeping command history only as long as the user's plan allows (``cloud_history`` days).

Runs in every server process a minute after start, then once an hour; the deletes are
idempotent, so several processes doing the same work do no harm. Entries removed this way leave
no sync tombstones: each device applies the same retention to its own copy.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import structlog
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from devpocket.billing.plans import TIERS, UNLIMITED, plan_for
from devpocket.db import maintenance
from devpocket.db.models import CommandHistory, User
from devpocket.settings import Settings

log = structlog.get_logger(__name__)

PRUNE_EVERY_SECONDS = 3600.0


async def prune_expired(db: AsyncSession, settings: Settings, now: datetime) -> int:
    """Delete entries older than each plan's retention; answers how many went."""
    removed = 0
    for tier in TIERS:
        days = plan_for(settings, tier).limits.cloud_history
        if days == UNLIMITED:
            continue
        users = select(User.id).where(User.subscription_tier == tier)
        result = await db.execute(
            delete(CommandHistory).where(
                CommandHistory.user_id.in_(users),
                CommandHistory.executed_at < now - timedelta(days=days),
            )
        )
        removed += int(result.rowcount or 0)  # type: ignore[attr-defined]
    return removed


async def run(sessionmaker: async_sessionmaker[AsyncSession], settings: Settings) -> None:
    """Prune a minute after start, then every hour, for as long as the server runs."""

    async def prune(db: AsyncSession, now: datetime) -> None:
        if removed := await prune_expired(db, settings, now):
            log.info("history.pruned", entries=removed)

    await maintenance.every(PRUNE_EVERY_SECONDS, "history_retention", sessionmaker, prune)
