"""``/api/v1/subscriptions``: plans, the user's plan and its use, payments, and RevenueCat."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query

from devpocket.api import API_PREFIX, make_router
from devpocket.auth.deps import CurrentAuth
from devpocket.billing import revenuecat, service
from devpocket.billing.deps import require_revenuecat
from devpocket.billing.plans import all_plans
from devpocket.billing.schemas import (
    CurrentOut,
    PaymentOut,
    PlanOut,
    RevenueCatWebhook,
    UsageOut,
    WebhookOut,
)
from devpocket.billing.service import MeteredFeature
from devpocket.db.session import DbSession
from devpocket.deps import Ctx
from devpocket.envelope import Envelope, error_responses, ok

router = make_router(f"{API_PREFIX}/subscriptions", "subscriptions")


@router.get("/plans", summary="The plans on offer, with their prices and limits")
async def list_plans(ctx: Ctx) -> Envelope[list[PlanOut]]:
    return ok([PlanOut.of(plan) for plan in all_plans(ctx.settings)])


@router.get(
    "/current",
    responses=error_responses(401),
    summary="The user's plan: whether it is in force, until when, and its limits",
)
async def get_current(auth: CurrentAuth, db: DbSession, ctx: Ctx) -> Envelope[CurrentOut]:
    return ok(await service.current(db, ctx, auth.user_id))


@router.get(
    "/usage/{feature}",
    responses=error_responses(401, 422),
    summary="Use of a metered feature in the current period, and the plan's limit",
)
async def get_usage(
    feature: MeteredFeature, auth: CurrentAuth, db: DbSession, ctx: Ctx
) -> Envelope[UsageOut]:
    tier = auth.profile.subscription_tier
    return ok(await service.usage_of(db, ctx, auth.user_id, tier, feature))


@router.get(
    "/history",
    responses=error_responses(401, 422),
    summary="The user's payments (and refunds, negative), newest first",
)
async def get_history(
    auth: CurrentAuth,
    db: DbSession,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Envelope[list[PaymentOut]]:
    return ok(await service.history(db, auth.user_id, limit=limit, offset=offset))


@router.post(
    "/webhooks/revenuecat",
    dependencies=[Depends(require_revenuecat)],
    responses=error_responses(401, 422, 503),
    summary="RevenueCat's webhook: purchases, renewals, cancellations, expirations",
    description="Authenticated by the Authorization value set in RevenueCat's dashboard "
    "(`REVENUECAT_WEBHOOK_AUTHORIZATION`), not by a user's token. Idempotent by event id; "
    "answers 200 for every event it accepts, including ones it ignores. See "
    "docs/subscriptions.md.",
)
async def revenuecat_webhook(
    body: RevenueCatWebhook, db: DbSession, ctx: Ctx
) -> Envelope[WebhookOut]:
    return ok(await revenuecat.receive(db, ctx, body.event))
