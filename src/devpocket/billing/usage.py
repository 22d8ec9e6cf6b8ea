"""Metered features: counting use per period and enforcing the tier's limit."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

import anyio
import structlog
from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from devpocket.billing.plans import UNLIMITED, Feature, limit_reached, plan_for
from devpocket.db.models import UsageCounter
from devpocket.errors import PermissionDenied
from devpocket.settings import Settings

log = structlog.stdlib.get_logger(__name__)

AI_REQUESTS: Feature = "ai_requests"


@dataclass(frozen=True, slots=True)
class UsageReport:
    feature: str
    used: int
    limit: int  # -1: unlimited; 0: the feature is off for this tier
    reset_date: datetime | None


def month_period(now: datetime) -> str:
    return f"{now.year:04d}-{now.month:02d}"


def next_month(now: datetime) -> datetime:
    year, month = (now.year + 1, 1) if now.month == 12 else (now.year, now.month + 1)
    return datetime(year, month, 1, tzinfo=UTC)


def ai_limit(settings: Settings, tier: str) -> int:
    return plan_for(settings, tier).limits.ai_requests


async def used_in_period(db: AsyncSession, user_id: uuid.UUID, feature: str, period: str) -> int:
    used = await db.scalar(
        select(UsageCounter.used).where(
            UsageCounter.user_id == user_id,
            UsageCounter.feature == feature,
            UsageCounter.period == period,
        )
    )
    return int(used or 0)


async def ai_usage(
    db: AsyncSession, settings: Settings, user_id: uuid.UUID, tier: str
) -> UsageReport:
    now = datetime.now(UTC)
    used = await used_in_period(db, user_id, AI_REQUESTS, month_period(now))
    return UsageReport(AI_REQUESTS, used, ai_limit(settings, tier), next_month(now))


@asynccontextmanager
async def counted_ai_request(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, user_id: uuid.UUID, tier: str
) -> AsyncIterator[None]:
    """Count one AI request for the work inside; give the count back if that work fails.

    The count is committed at once in a session of its own, never in the request's: on SQLite
    the request would otherwise hold the process's writer lock for the whole upstream call.
    """
    period = await count_ai_request(sessions, settings, user_id, tier)
    answered = False
    try:
        yield
        answered = True
    finally:
        if not answered:
            # Shielded: a cancelled request is not charged either.
            with anyio.CancelScope(shield=True):
                await give_back_ai_request(sessions, user_id, period)


async def count_ai_request(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, user_id: uuid.UUID, tier: str
) -> str:
    """Count one AI request and commit; the period counted. Refused when the month is spent."""
    now = datetime.now(UTC)
    period = month_period(now)
    limit = ai_limit(settings, tier)
    async with sessions() as db:
        if limit != 0 and await _count_within(db, user_id, AI_REQUESTS, period, limit):
            await db.commit()
            return period
        used = await used_in_period(db, user_id, AI_REQUESTS, period)
    raise _quota_exceeded(settings, tier, used, next_month(now))


async def give_back_ai_request(
    sessions: async_sessionmaker[AsyncSession], user_id: uuid.UUID, period: str
) -> None:
    """Undo one count of ``period`` (never below zero). A failure is logged, not raised: the
    caller is already failing with the error that matters."""
    try:
        async with sessions() as db:
            await db.execute(
                update(UsageCounter)
                .where(
                    UsageCounter.user_id == user_id,
                    UsageCounter.feature == AI_REQUESTS,
                    UsageCounter.period == period,
                    UsageCounter.used > 0,
                )
                .values(used=UsageCounter.used - 1)
            )
            await db.commit()
    except (SQLAlchemyError, OSError):
        log.exception("ai_request_give_back_failed", user_id=str(user_id), period=period)


def _quota_exceeded(settings: Settings, tier: str, used: int, reset: datetime) -> PermissionDenied:
    plan = plan_for(settings, tier)
    limit = plan.limits.ai_requests
    message = (
        f"The {plan.name} plan includes {limit} AI requests a month (ai_requests); "
        f"they are used up until {reset:%Y-%m-%d}."
        if limit
        else f"AI requests (ai_requests) are not part of the {plan.name} plan."
    )
    return limit_reached(
        plan, AI_REQUESTS, used, code="ai_quota_exceeded", message=message, reset_date=str(reset)
    )


async def _count_within(
    db: AsyncSession, user_id: uuid.UUID, feature: str, period: str, limit: int
) -> bool:
    """Add one use unless ``limit`` are taken: whether it was added.

    One conditional upsert, so concurrent requests, on this server or another, cannot together
    pass the limit: PostgreSQL re-checks the condition on the row it locks, SQLite writes one at
    a time.
    """
    insert = postgresql_insert if db.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = insert(UsageCounter).values(
        id=uuid.uuid4(), user_id=user_id, feature=feature, period=period, used=1
    )
    statement = statement.on_conflict_do_update(
        index_elements=["user_id", "feature", "period"],
        set_={"used": UsageCounter.used + 1},
        where=None if limit == UNLIMITED else UsageCounter.used < limit,
    )
    counted = await db.scalar(statement.returning(UsageCounter.used))
    return counted is not None
