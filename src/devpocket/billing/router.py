"""``/api/v1/subscriptions``: what the user's plan allows and how much of it is used."""

from __future__ import annotations

from typing import Literal

from devpocket.api import API_PREFIX, make_router
from devpocket.auth.deps import CurrentAuth
from devpocket.billing import usage
from devpocket.billing.schemas import UsageOut
from devpocket.db.session import DbSession
from devpocket.deps import Ctx
from devpocket.envelope import Envelope, error_responses, ok
from devpocket.ssh import repository as ssh_repository

router = make_router(f"{API_PREFIX}/subscriptions", "subscriptions", responses=error_responses(401))


@router.get(
    "/usage/{feature}",
    responses=error_responses(422),
    summary="Use of a metered feature in the current period, and the plan's limit",
)
async def get_usage(
    feature: Literal["ai_requests", "ssh_connections"], auth: CurrentAuth, db: DbSession, ctx: Ctx
) -> Envelope[UsageOut]:
    if feature == "ai_requests":
        report = await usage.ai_usage(
            db, ctx.settings, auth.user_id, auth.profile.subscription_tier
        )
        return ok(
            UsageOut(
                feature=report.feature,
                used=report.used,
                limit=report.limit,
                reset_date=report.reset_date,
            )
        )
    saved = await ssh_repository.count_profiles(db, auth.user_id)
    return ok(
        UsageOut(feature=feature, used=saved, limit=ctx.settings.ssh_profiles_max, reset_date=None)
    )
