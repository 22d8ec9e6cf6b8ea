"""Metered features: counting use per period and enforcing the tier's limit."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from devpocket.billing.plans import Feature, limit_reached, plan_for, within
from devpocket.db.models import UsageCounter
from devpocket.settings import Settings

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


async def consume_ai_request(
    db: AsyncSession, settings: Settings, user_id: uuid.UUID, tier: str
) -> None:
    """Count one AI request, refusing it when the month's allowance is spent."""
    report = await ai_usage(db, settings, user_id, tier)
    if not within(report.limit, report.used):
        plan = plan_for(settings, tier)
        message = (
            f"The {plan.name} plan includes {report.limit} AI requests a month (ai_requests); "
            f"they are used up until {report.reset_date:%Y-%m-%d}."
            if report.limit
            else f"AI requests (ai_requests) are not part of the {plan.name} plan."
        )
        raise limit_reached(
            plan,
            AI_REQUESTS,
            report.used,
            code="ai_quota_exceeded",
            message=message,
            reset_date=str(report.reset_date),
        )
    await _increment(db, user_id, AI_REQUESTS, month_period(datetime.now(UTC)))


async def _increment(db: AsyncSession, user_id: uuid.UUID, feature: str, period: str) -> None:
    # One atomic statement: concurrent requests of one user cannot lose a count.
    insert = postgresql_insert if db.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = insert(UsageCounter).values(
        id=uuid.uuid4(), user_id=user_id, feature=feature, period=period, used=1
    )
    statement = statement.on_conflict_do_update(
        index_elements=["user_id", "feature", "period"],
        set_={"used": UsageCounter.used + 1},
    )
    await db.execute(statement)
