"""Keeping the change feed from growing for ever (``SYNC_FEED_RETENTION_DAYS``).

Every change is a row of ``sync_changes`` with the entity's full synced fields, so an entity's
latest change alone says all a device needs; older ones serve as merge bases of pushes based on
them (``repository.snapshot_at``). Runs in every server process once an hour (the deletes are
idempotent), and removes:

- a change that a later change of the same entity supersedes, once it is older than the window:
  a push based on a version older than that merges as if its base were unknown (every field it
  sends counts as changed by it; see docs/sync.md);
- the feed entries of history entries that the plan's retention removed (``history/retention.py``
  leaves no tombstones: each device applies the same retention to its copy);
- stored push answers older than the window: a device repeating a push after that long gets it
  applied again rather than answered as a duplicate.

A reader paging through the feed meanwhile loses nothing it needs: a removed change is superseded
by a later one, which it reads further on. Tombstones stay: a device that has been away for any
time still learns of every delete.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from sqlalchemy import delete, exists
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased

from devpocket.db import maintenance
from devpocket.db.models import CommandHistory, SyncAppliedChange, SyncChange
from devpocket.settings import Settings

log = structlog.get_logger(__name__)

PRUNE_EVERY_SECONDS = 3600.0


@dataclass(frozen=True, slots=True)
class Pruned:
    superseded: int
    expired_history: int
    push_answers: int

    def __bool__(self) -> bool:
        return bool(self.superseded or self.expired_history or self.push_answers)


def _count(result: object) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


async def prune_feed(db: AsyncSession, settings: Settings, now: datetime) -> Pruned:
    horizon = now - timedelta(days=settings.sync_feed_retention_days)
    later = aliased(SyncChange)
    superseded_by_later = exists().where(
        later.user_id == SyncChange.user_id,
        later.entity == SyncChange.entity,
        later.entity_id == SyncChange.entity_id,
        later.cursor > SyncChange.cursor,
    )
    superseded = await db.execute(
        delete(SyncChange).where(SyncChange.changed_at < horizon, superseded_by_later)
    )
    entry_exists = exists().where(CommandHistory.id == SyncChange.entity_id)
    expired = await db.execute(
        delete(SyncChange).where(
            SyncChange.entity == "history",
            SyncChange.op == "upsert",
            ~entry_exists,
            ~superseded_by_later,
        )
    )
    answers = await db.execute(
        delete(SyncAppliedChange).where(SyncAppliedChange.applied_at < horizon)
    )
    return Pruned(_count(superseded), _count(expired), _count(answers))


async def run(sessionmaker: async_sessionmaker[AsyncSession], settings: Settings) -> None:
    """Prune a minute after start, then every hour, for as long as the server runs."""

    async def prune(db: AsyncSession, now: datetime) -> None:
        if pruned := await prune_feed(db, settings, now):
            log.info(
                "sync.feed_pruned",
                superseded=pruned.superseded,
                expired_history=pruned.expired_history,
                push_answers=pruned.push_answers,
            )

    await maintenance.every(PRUNE_EVERY_SECONDS, "sync_feed_retention", sessionmaker, prune)
