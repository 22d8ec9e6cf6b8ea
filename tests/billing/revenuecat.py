"""RevenueCat webhook deliveries as RevenueCat sends them, for the billing tests."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx

from tests.helpers import data

WEBHOOK = "/api/v1/subscriptions/webhooks/revenuecat"
AUTHORIZATION = "Bearer rc-webhook-9f0c2b7e41d84a4fa3b1c6d5e8f70a12"
PRODUCT_TIERS = "devpocket_pro_monthly:pro,devpocket_team_monthly:team,pro:pro,team:team"
DAY_MS = 24 * 3600 * 1000


def now_ms() -> int:
    return int(time.time() * 1000)


def event(
    user_id: str, event_type: str, *, at_ms: int | None = None, **fields: Any
) -> dict[str, Any]:
    """A webhook body: a monthly pro subscription bought at ``at_ms`` (default: now)."""
    at = now_ms() if at_ms is None else at_ms
    body: dict[str, Any] = {
        "id": str(uuid.uuid4()).upper(),
        "type": event_type,
        "app_id": "app1234",
        "app_user_id": user_id,
        "original_app_user_id": user_id,
        "aliases": [user_id],
        "product_id": "devpocket_pro_monthly",
        "entitlement_ids": ["pro"],
        "entitlement_id": None,
        "period_type": "NORMAL",
        "purchased_at_ms": at,
        "expiration_at_ms": at + 30 * DAY_MS,
        "price": 9.99,
        "price_in_purchased_currency": 9.99,
        "currency": "USD",
        "store": "APP_STORE",
        "environment": "PRODUCTION",
        "transaction_id": "170000869511114",
        "event_timestamp_ms": at,
        "subscriber_attributes": {"$email": {"updated_at_ms": at, "value": "x@example.com"}},
        **fields,
    }
    return {"api_version": "1.0", "event": body}


async def deliver(client: httpx.AsyncClient, body: dict[str, Any]) -> str:
    """Post an event as RevenueCat does; the outcome the server answers."""
    answer = data(await client.post(WEBHOOK, json=body, headers={"Authorization": AUTHORIZATION}))
    assert answer["event_id"] == body["event"]["id"]
    outcome: str = answer["outcome"]
    return outcome
