"""What a user's plan is, allows, and how much of it is used; their payment history."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession

from devpocket.billing import repository, usage
from devpocket.billing.plans import as_tier, plan_for
from devpocket.billing.schemas import CurrentOut, LimitsOut, PaymentOut, UsageOut
from devpocket.context import AppContext
from devpocket.db.models import Payment
from devpocket.errors import NotFound
from devpocket.ssh import repository as ssh_repository

MeteredFeature = Literal["ai_requests", "ssh_connections", "terminal_sessions"]
_MICROS = Decimal(1_000_000)


async def current(db: AsyncSession, ctx: AppContext, user_id: uuid.UUID) -> CurrentOut:
    user = await repository.get_user(db, user_id)
    if user is None:
        raise NotFound("No such user.", code="user_not_found")
    now = datetime.now(UTC)
    tier = as_tier(user.subscription_tier)
    ends = user.subscription_ends_at
    trial = user.trial_ends_at
    return CurrentOut(
        is_active=tier != "free" and (ends is None or ends > now),
        tier=tier,
        expires_at=ends,
        will_renew=user.subscription_will_renew,
        is_in_trial=trial is not None and trial > now,
        trial_ends_at=trial,
        store=user.subscription_store,
        billing_issue=user.subscription_billing_issue_at is not None,
        limits=LimitsOut.of(plan_for(ctx.settings, tier).limits),
    )


async def usage_of(
    db: AsyncSession, ctx: AppContext, user_id: uuid.UUID, tier: str, feature: MeteredFeature
) -> UsageOut:
    if feature == "ai_requests":
        report = await usage.ai_usage(db, ctx.settings, user_id, tier)
        return UsageOut(
            feature=report.feature,
            used=report.used,
            limit=report.limit,
            reset_date=report.reset_date,
        )
    limits = plan_for(ctx.settings, tier).limits
    if feature == "terminal_sessions":
        # The sessions this server process runs, which is what its limit counts.
        running = len(ctx.terminals.sessions_of(user_id))
        return UsageOut(
            feature=feature, used=running, limit=limits.terminal_sessions, reset_date=None
        )
    saved = await ssh_repository.count_profiles(db, user_id)
    return UsageOut(feature=feature, used=saved, limit=limits.ssh_connections, reset_date=None)


def _payment_out(payment: Payment) -> PaymentOut:
    return PaymentOut(
        id=payment.id,
        amount=Decimal(payment.amount_micros) / _MICROS,
        currency=payment.currency,
        tier=as_tier(payment.tier) if payment.tier else None,
        product_id=payment.product_id,
        store=payment.store,
        environment=payment.environment,
        event_type=payment.event_type,
        period_type=payment.period_type,
        period_start=payment.period_start,
        period_end=payment.period_end,
        created_at=payment.created_at,
    )


async def history(
    db: AsyncSession, user_id: uuid.UUID, *, limit: int, offset: int
) -> list[PaymentOut]:
    """The user's payments, newest first."""
    payments = await repository.list_payments(db, user_id, limit=limit, offset=offset)
    return [_payment_out(payment) for payment in payments]
