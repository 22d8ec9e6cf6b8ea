"""RevenueCat's webhook: its authorization, each event type, redeliveries and late events.

Each test follows one subscription through several events: a database per test is what costs
most here, and the steps of a lifecycle belong together anyway.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import httpx
import pytest
from structlog.testing import capture_logs

from devpocket.billing.revenuecat import tier_of
from devpocket.billing.schemas import RevenueCatEvent
from tests.billing.revenuecat import (
    AUTHORIZATION,
    DAY_MS,
    PRODUCT_TIERS,
    WEBHOOK,
    deliver,
    event,
    now_ms,
)
from tests.conftest import IsolatedSettings, SettingsFactory, serving
from tests.helpers import Account, data, error, register

Billing = tuple[httpx.AsyncClient, Account]


async def _me(client: httpx.AsyncClient, account: Account) -> dict[str, Any]:
    user: dict[str, Any] = data(await client.get("/api/v1/auth/me", headers=account.headers))
    return user


async def _current(client: httpx.AsyncClient, account: Account) -> dict[str, Any]:
    path = "/api/v1/subscriptions/current"
    current: dict[str, Any] = data(await client.get(path, headers=account.headers))
    return current


async def _payments(client: httpx.AsyncClient, account: Account) -> list[dict[str, Any]]:
    path = "/api/v1/subscriptions/history"
    payments: list[dict[str, Any]] = data(await client.get(path, headers=account.headers))
    return payments


async def _state(client: httpx.AsyncClient, account: Account) -> tuple[str, bool, bool]:
    current = await _current(client, account)
    return current["tier"], current["is_active"], current["will_renew"]


async def test_only_the_configured_authorization_is_accepted(
    settings_factory: SettingsFactory,
) -> None:
    async with serving(settings_factory()) as (_, client):
        account = await register(client)
        body = event(account.user_id, "INITIAL_PURCHASE")
        response = await client.post(WEBHOOK, json=body, headers={"Authorization": AUTHORIZATION})
        error(response, 503, "webhook_not_configured")
    configured = settings_factory(revenuecat_webhook_authorization=AUTHORIZATION)
    async with serving(configured) as (_, client):
        wrong = ["Bearer wrong", AUTHORIZATION + "x", AUTHORIZATION.removeprefix("Bearer "), ""]
        for headers in [{}, *({"Authorization": value} for value in wrong)]:
            response = await client.post(WEBHOOK, json=body, headers=headers)
            error(response, 401, "invalid_webhook_authorization")
            # Refused before the body is read: a malformed one gets the same answer.
            error(await client.post(WEBHOOK, json={}, headers=headers), 401)
        assert (await _me(client, account))["subscription_tier"] == "free"


MALFORMED: list[Any] = [
    {},
    [],
    {"api_version": "1.0"},
    {"event": {"type": "RENEWAL", "event_timestamp_ms": 1}},
    {"event": {"id": "e1", "type": "RENEWAL", "event_timestamp_ms": "yesterday"}},
    {"event": {"id": "e1", "type": "RENEWAL", "event_timestamp_ms": 10**20}},
    {"event": {"id": "e1", "type": "RENEWAL", "event_timestamp_ms": 1, "store": "S" * 100}},
    {"event": {"id": "e1", "type": "RENEWAL", "event_timestamp_ms": 1, "price": 1e30}},
]


async def test_a_malformed_body_is_a_validation_error_in_the_envelope(billing: Billing) -> None:
    client, _ = billing
    for body in MALFORMED:
        response = await client.post(WEBHOOK, json=body, headers={"Authorization": AUTHORIZATION})
        assert error(response, 422, "validation_error")["details"], body


async def test_a_subscription_from_purchase_through_cancellation_to_expiration(
    billing: Billing,
) -> None:
    client, account = billing
    assert (await _me(client, account))["subscription_tier"] == "free"  # a remembered sign-in
    start = now_ms() - 20 * DAY_MS

    assert await deliver(client, event(account.user_id, "INITIAL_PURCHASE", at_ms=start)) == (
        "applied"
    )
    me = await _me(client, account)
    assert (me["subscription_tier"], me["is_in_trial"]) == ("pro", False)
    current = await _current(client, account)
    assert (current["tier"], current["is_active"], current["will_renew"]) == ("pro", True, True)
    assert (current["store"], current["limits"]["ssh_connections"]) == ("APP_STORE", -1)

    grace = now_ms() + 6 * DAY_MS
    issue = event(account.user_id, "BILLING_ISSUE", grace_period_expiration_at_ms=grace)
    assert await deliver(client, issue) == "applied"
    current = await _current(client, account)
    assert (current["tier"], current["is_active"], current["billing_issue"]) == ("pro", True, True)
    assert round(datetime.fromisoformat(current["expires_at"]).timestamp() * 1000) == grace

    assert await deliver(client, event(account.user_id, "RENEWAL")) == "applied"
    assert (await _current(client, account))["billing_issue"] is False

    cancel = event(account.user_id, "CANCELLATION", cancel_reason="UNSUBSCRIBE")
    assert await deliver(client, cancel) == "applied"
    assert await _state(client, account) == ("pro", True, False)  # access until it expires
    assert await deliver(client, event(account.user_id, "UNCANCELLATION")) == "applied"
    assert await _state(client, account) == ("pro", True, True)

    expiration = event(account.user_id, "EXPIRATION", expiration_reason="UNSUBSCRIBE")
    assert await deliver(client, expiration) == "applied"
    assert await _state(client, account) == ("free", False, False)
    assert (await _me(client, account))["subscription_tier"] == "free"
    # Only money changing hands is a payment: not the billing issue or (un)cancellation.
    payments = await _payments(client, account)
    assert [p["event_type"] for p in payments] == ["RENEWAL", "INITIAL_PURCHASE"]
    assert (payments[0]["amount"], payments[0]["currency"], payments[0]["tier"]) == (
        9.99,
        "USD",
        "pro",
    )


async def test_a_trial_sets_is_in_trial_until_a_paid_renewal(billing: Billing) -> None:
    client, account = billing
    start = now_ms() - DAY_MS
    trial = event(
        account.user_id,
        "INITIAL_PURCHASE",
        at_ms=start,
        period_type="TRIAL",
        price=0,
        price_in_purchased_currency=0,
        expiration_at_ms=start + 7 * DAY_MS,
    )
    assert await deliver(client, trial) == "applied"
    me = await _me(client, account)
    assert (me["subscription_tier"], me["is_in_trial"]) == ("pro", True)
    assert me["trial_ends_at"] == me["subscription_ends_at"]
    current = await _current(client, account)
    assert (current["is_active"], current["is_in_trial"]) == (True, True)
    assert current["trial_ends_at"] == current["expires_at"]

    renewal = event(account.user_id, "RENEWAL", is_trial_conversion=True)
    assert await deliver(client, renewal) == "applied"
    me = await _me(client, account)
    assert (me["subscription_tier"], me["is_in_trial"]) == ("pro", False)
    assert [p["period_type"] for p in await _payments(client, account)] == ["NORMAL", "TRIAL"]


async def test_the_plan_granted_follows_the_product(billing: Billing) -> None:
    client, account = billing
    start = now_ms() - 2 * DAY_MS
    await deliver(client, event(account.user_id, "INITIAL_PURCHASE", at_ms=start))
    team_id = "devpocket_team_monthly"
    change = event(account.user_id, "PRODUCT_CHANGE", at_ms=start + 1, new_product_id=team_id)
    assert await deliver(client, change) == "applied"
    assert (await _current(client, account))["tier"] == "team"  # the better one, at once
    renewal = event(account.user_id, "RENEWAL", product_id=team_id, entitlement_ids=["team"])
    assert await deliver(client, renewal) == "applied"
    # The old product's expiration no longer decides the plan.
    assert await deliver(client, event(account.user_id, "EXPIRATION")) == "ignored"
    assert (await _current(client, account))["tier"] == "team"

    lifetime = await register(client)
    purchase = event(lifetime.user_id, "NON_RENEWING_PURCHASE", expiration_at_ms=None)
    assert await deliver(client, purchase) == "applied"
    current = await _current(client, lifetime)
    assert await _state(client, lifetime) == ("pro", True, False)
    assert current["expires_at"] is None

    coins = await register(client)
    body = event(coins.user_id, "NON_RENEWING_PURCHASE", product_id="coins", entitlement_ids=None)
    assert await deliver(client, body) == "unmapped_product"
    assert (await _current(client, coins))["tier"] == "free"
    [payment] = await _payments(client, coins)
    assert (payment["product_id"], payment["tier"]) == ("coins", None)
    # Nor does its expiration take away a plan it never gave.
    gone = event(lifetime.user_id, "EXPIRATION", product_id="coins", entitlement_ids=None)
    assert await deliver(client, gone) == "unmapped_product"
    assert await _state(client, lifetime) == ("pro", True, False)


async def test_redeliveries_even_concurrent_ones_apply_an_event_once(billing: Billing) -> None:
    client, account = billing
    purchase = event(account.user_id, "INITIAL_PURCHASE", at_ms=now_ms() - DAY_MS)
    outcomes = await asyncio.gather(*(deliver(client, purchase) for _ in range(4)))
    assert sorted(outcomes) == ["applied", "duplicate", "duplicate", "duplicate"]
    assert await deliver(client, event(account.user_id, "EXPIRATION")) == "applied"
    assert await deliver(client, purchase) == "duplicate"
    assert (await _current(client, account))["tier"] == "free"
    assert len(await _payments(client, account)) == 1


LATE: list[tuple[str, dict[str, Any]]] = [
    ("CANCELLATION", {}),
    ("EXPIRATION", {}),
    ("INITIAL_PURCHASE", {"period_type": "TRIAL"}),
]


async def test_an_event_older_than_the_last_applied_does_not_roll_it_back(
    billing: Billing,
) -> None:
    client, _ = billing
    renewed = now_ms() - DAY_MS
    for late_type, fields in LATE:
        account = await register(client)
        assert await deliver(client, event(account.user_id, "RENEWAL", at_ms=renewed)) == "applied"
        before = await _current(client, account)
        late = event(account.user_id, late_type, at_ms=renewed - 3 * DAY_MS, **fields)
        assert await deliver(client, late) == "out_of_order", late_type
        assert await _current(client, account) == before, late_type


async def test_the_user_is_found_through_aliases_and_other_events_are_acknowledged(
    billing: Billing,
) -> None:
    client, account = billing
    anonymous = "$RCAnonymousID:8069238d6049ce87cc529853916d624c"
    aliased = event(
        anonymous,
        "INITIAL_PURCHASE",
        original_app_user_id=anonymous,
        aliases=[anonymous, account.user_id],
    )
    assert await deliver(client, aliased) == "applied"
    assert (await _current(client, account))["tier"] == "pro"

    stranger = "3f1b6c0e-0000-4000-8000-000000000000"
    with capture_logs() as logs:
        assert await deliver(client, event(stranger, "RENEWAL")) == "user_not_found"
    [entry] = [e for e in logs if e["event"] == "billing.revenuecat_event"]
    assert (entry["log_level"], entry["app_user_id"]) == ("warning", stranger)

    other = await register(client)
    expected = {"TEST": "acknowledged", "SUBSCRIBER_ALIAS": "ignored", "TRANSFER": "ignored"}
    for event_type, outcome in expected.items():
        assert await deliver(client, event(other.user_id, event_type)) == outcome
    assert (await _current(client, other))["tier"] == "free"
    assert await _payments(client, other) == []


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"product_id": "devpocket_team_monthly", "entitlement_ids": None}, "team"),
        ({"product_id": "other", "entitlement_ids": ["pro", "team"]}, "team"),
        ({"product_id": "other", "entitlement_ids": [], "entitlement_id": "pro"}, "pro"),
        ({"product_id": "sub:monthly", "entitlement_ids": None}, "team"),
        ({"product_id": "other", "entitlement_ids": ["gold"]}, None),
    ],
)
def test_the_tier_comes_from_the_product_or_entitlements(
    fields: dict[str, Any], expected: str | None
) -> None:
    # Google Play product ids carry a colon: the tier follows the last one.
    settings = IsolatedSettings(revenuecat_product_tiers=f"{PRODUCT_TIERS}, sub:monthly:team")
    body = {"id": "e", "type": "RENEWAL", "event_timestamp_ms": 1, **fields}
    assert tier_of(settings, RevenueCatEvent.model_validate(body)) == expected
