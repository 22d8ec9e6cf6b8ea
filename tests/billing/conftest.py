"""The app with RevenueCat's webhook configured."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.billing.revenuecat import AUTHORIZATION, PRODUCT_TIERS
from tests.conftest import SettingsFactory, serving
from tests.helpers import Account, register


@pytest.fixture
async def billing(
    settings_factory: SettingsFactory,
) -> AsyncIterator[tuple[httpx.AsyncClient, Account]]:
    """The app with the webhook configured, and a signed-up (free) user."""
    settings = settings_factory(
        revenuecat_webhook_authorization=AUTHORIZATION, revenuecat_product_tiers=PRODUCT_TIERS
    )
    async with serving(settings) as (_, client):
        yield client, await register(client)
