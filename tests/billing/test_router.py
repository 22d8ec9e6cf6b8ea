"""``/api/v1/subscriptions``: plans, the current plan, usage and payment history."""

from __future__ import annotations

import httpx

from tests.billing.revenuecat import DAY_MS, deliver, event, now_ms
from tests.helpers import Account, data, error, register

SUBSCRIPTIONS = "/api/v1/subscriptions"
PLAN_KEYS = {
    "id", "name", "description", "tier", "price", "currency", "interval", "features", "limits",
    "isPopular",
}  # fmt: skip
LIMIT_KEYS = {
    "ssh_connections",
    "ai_requests",
    "terminal_sessions",
    "cloud_history",
    "multi_device",
}
Billing = tuple[httpx.AsyncClient, Account]


async def test_plans_are_public_with_the_contract_keys(client: httpx.AsyncClient) -> None:
    stale = {"Authorization": "Bearer stale.or.invalid"}
    plans = data(await client.get(f"{SUBSCRIPTIONS}/plans", headers=stale))
    assert data(await client.get(f"{SUBSCRIPTIONS}/plans")) == plans
    assert [plan["tier"] for plan in plans] == ["free", "pro", "team"]
    for plan in plans:
        assert set(plan) == PLAN_KEYS
        assert set(plan["limits"]) == LIMIT_KEYS
        assert all(isinstance(text, str) for text in plan["features"])
    free, pro, team = plans
    assert (free["price"], free["interval"], free["isPopular"]) == (0, None, False)
    assert (pro["price"], pro["interval"], pro["isPopular"]) == (9.99, "month", True)
    assert (team["price"], team["currency"], team["isPopular"]) == (19.99, "USD", False)
    assert team["limits"]["ai_requests"] == -1
    assert "Unlimited AI requests" in team["features"]


async def test_current_and_usage_for_a_free_user(client: httpx.AsyncClient) -> None:
    error(await client.get(f"{SUBSCRIPTIONS}/current"), 401)
    account = await register(client)
    current = data(await client.get(f"{SUBSCRIPTIONS}/current", headers=account.headers))
    assert (current["is_active"], current["tier"], current["expires_at"]) == (False, "free", None)
    assert (current["is_in_trial"], current["will_renew"]) == (False, False)
    assert current["limits"] == {
        "ssh_connections": 50,
        "ai_requests": 50,
        "terminal_sessions": 3,
        "cloud_history": 30,
        "multi_device": 2,
    }
    for feature, limit in current["limits"].items():
        response = await client.get(f"{SUBSCRIPTIONS}/usage/{feature}", headers=account.headers)
        if feature not in {"ssh_connections", "ai_requests", "terminal_sessions"}:
            error(response, 422, "validation_error")  # not metered here
            continue
        usage = data(response)
        assert (usage["feature"], usage["used"], usage["limit"]) == (feature, 0, limit)
        assert (usage["reset_date"] is not None) == (feature == "ai_requests")


async def test_history_lists_the_users_own_payments_newest_first(billing: Billing) -> None:
    client, account = billing
    start = now_ms() - 40 * DAY_MS
    await deliver(client, event(account.user_id, "INITIAL_PURCHASE", at_ms=start))
    await deliver(client, event(account.user_id, "RENEWAL", at_ms=start + 30 * DAY_MS))
    refund = event(
        account.user_id,
        "CANCELLATION",
        cancel_reason="CUSTOMER_SUPPORT",
        price=-9.99,
        price_in_purchased_currency=-8.49,
        currency="EUR",
    )
    await deliver(client, refund)
    other = await register(client)
    assert data(await client.get(f"{SUBSCRIPTIONS}/history", headers=other.headers)) == []
    payments = data(await client.get(f"{SUBSCRIPTIONS}/history", headers=account.headers))
    assert [p["event_type"] for p in payments] == ["CANCELLATION", "RENEWAL", "INITIAL_PURCHASE"]
    assert (payments[0]["amount"], payments[0]["currency"]) == (-8.49, "EUR")  # a refund
    renewal = payments[1]
    assert set(renewal) >= {
        "id", "amount", "currency", "tier", "product_id", "store", "event_type", "period_start",
        "period_end", "created_at",
    }  # fmt: skip
    assert (renewal["amount"], renewal["product_id"]) == (9.99, "devpocket_pro_monthly")
    assert renewal["period_start"] < renewal["period_end"]
    page = data(
        await client.get(f"{SUBSCRIPTIONS}/history?limit=1&offset=1", headers=account.headers)
    )
    assert [p["id"] for p in page] == [renewal["id"]]
