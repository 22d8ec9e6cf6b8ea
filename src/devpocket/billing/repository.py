"""Queries of the billing domain: users' subscriptions, payments, providers' events."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from devpocket.db.models import BillingEvent, Payment, User


async def get_user(db: AsyncSession, user_id: uuid.UUID) -> User | None:
    return await db.get(User, user_id)


async def user_tier(db: AsyncSession, user_id: uuid.UUID) -> str:
    tier = await db.scalar(select(User.subscription_tier).where(User.id == user_id))
    return tier or "free"


async def lock_first_user(db: AsyncSession, candidates: Sequence[uuid.UUID]) -> User | None:
    """The first of ``candidates`` that is a user, locked until the transaction ends.

    The lock (PostgreSQL; SQLite has one writer at a time) keeps two events of one user from
    being applied at once, each unaware of the other.
    """
    if not candidates:
        return None
    found = await db.scalars(select(User).where(User.id.in_(candidates)).with_for_update())
    users = {user.id: user for user in found}
    return next((users[c] for c in candidates if c in users), None)


async def record_event(
    db: AsyncSession,
    *,
    provider: str,
    event_id: str,
    event_type: str,
    event_at: datetime,
    received_at: datetime,
) -> uuid.UUID | None:
    """Note an event as received; None when it was already (a redelivery).

    One statement against the unique constraint: of two deliveries racing, the second waits for
    the first's transaction and then inserts nothing.
    """
    insert = postgresql_insert if db.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = (
        insert(BillingEvent)
        .values(
            id=uuid.uuid4(),
            provider=provider,
            event_id=event_id,
            event_type=event_type,
            event_at=event_at,
            received_at=received_at,
            outcome="received",
        )
        .on_conflict_do_nothing(index_elements=["provider", "event_id"])
        .returning(BillingEvent.id)
    )
    row_id: uuid.UUID | None = (await db.execute(statement)).scalar_one_or_none()
    return row_id


async def finish_event(
    db: AsyncSession,
    row_id: uuid.UUID,
    *,
    user_id: uuid.UUID | None,
    outcome: str,
    applied_at: datetime | None,
) -> None:
    await db.execute(
        update(BillingEvent)
        .where(BillingEvent.id == row_id)
        .values(user_id=user_id, outcome=outcome, applied_at=applied_at)
    )


async def list_payments(
    db: AsyncSession, user_id: uuid.UUID, *, limit: int, offset: int
) -> Sequence[Payment]:
    found = await db.scalars(
        select(Payment)
        .where(Payment.user_id == user_id)
        .order_by(Payment.created_at.desc(), Payment.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return found.all()
