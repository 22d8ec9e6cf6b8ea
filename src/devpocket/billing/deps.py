"""The RevenueCat webhook's own authentication (it carries no user's token)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Header

from devpocket.billing import revenuecat
from devpocket.deps import Ctx


async def require_revenuecat(
    ctx: Ctx,
    authorization: Annotated[
        str | None,
        Header(description="The value set in RevenueCat's dashboard for this webhook."),
    ] = None,
) -> None:
    """Checked as a dependency, before the body: a stranger learns nothing from validation."""
    revenuecat.check_authorization(ctx.settings, authorization)
