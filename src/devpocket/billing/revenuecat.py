"""RevenueCat's webhook: each event applied once, in RevenueCat's order, to the user's plan.

- Once: an event's id is noted in ``billing_events`` (unique) in the same transaction that applies
  it; a redelivery (RevenueCat retries anything but a 2xx, with the same id) changes nothing.
- In order: an event older (``event_timestamp_ms``) than the last one applied to the user does
  not change the subscription, though the payment it reports is kept.
- Whose: ``app_user_id`` is our user id; ``original_app_user_id`` and ``aliases`` are tried too,
  as RevenueCat advises. Unknown users are acknowledged (and logged): a retry cannot help.
- Which plan: ``REVENUECAT_PRODUCT_TIERS`` maps product and entitlement ids to tiers; when
  several match, the highest tier wins.

See docs/subscriptions.md for what each event type does.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from functools import reduce

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from devpocket.auth.sessions import auth_changed
from devpocket.billing import repository
from devpocket.billing.plans import Tier, higher
from devpocket.billing.schemas import Outcome, RevenueCatEvent, WebhookOut
from devpocket.context import AppContext
from devpocket.db.models import Payment, User
from devpocket.errors import ServiceUnavailable, Unauthenticated
from devpocket.settings import Settings

log = structlog.get_logger(__name__)

PROVIDER = "revenuecat"
# Events that put a plan in force until their expiration.
_GRANTS = frozenset(
    {"INITIAL_PURCHASE", "RENEWAL", "PRODUCT_CHANGE", "UNCANCELLATION", "NON_RENEWING_PURCHASE"}
)
# Events that report money changing hands (an uncancellation charges nothing).
_PAID = _GRANTS - {"UNCANCELLATION"}
_HANDLED = _GRANTS | {"CANCELLATION", "EXPIRATION", "BILLING_ISSUE"}


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode()).digest()


def check_authorization(settings: Settings, header: str | None) -> None:
    """The request carries the Authorization value configured in RevenueCat's dashboard."""
    expected = settings.revenuecat_webhook_authorization
    if expected is None or not expected.get_secret_value():
        raise ServiceUnavailable(
            "The RevenueCat webhook is not configured on this server.",
            code="webhook_not_configured",
        )
    # Digests of equal length: the comparison's time says nothing about the expected value.
    if header is None or not hmac.compare_digest(
        _digest(header), _digest(expected.get_secret_value())
    ):
        raise Unauthenticated(
            "The webhook's Authorization header is wrong.", code="invalid_webhook_authorization"
        )


def _time(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def _optional_time(ms: int | None) -> datetime | None:
    return None if ms is None else _time(ms)


def _user_ids(event: RevenueCatEvent) -> list[uuid.UUID]:
    ids: list[uuid.UUID] = []
    for candidate in (event.app_user_id, event.original_app_user_id, *(event.aliases or [])):
        if candidate is None:
            continue
        try:
            user_id = uuid.UUID(candidate)
        except ValueError:
            continue  # RevenueCat's anonymous ids ($RCAnonymousID:…) are not ours
        if user_id not in ids:
            ids.append(user_id)
    return ids


def tier_of(settings: Settings, event: RevenueCatEvent) -> Tier | None:
    """The tier the event's product or entitlements map to; None when nothing is mapped."""
    keys = [event.product_id, event.entitlement_id, *(event.entitlement_ids or [])]
    if event.type == "PRODUCT_CHANGE":
        # The new product may take effect only at renewal: the user keeps the better of the two
        # until the renewal or the expiration says which one is in force.
        keys.append(event.new_product_id)
    mapping = settings.revenuecat_product_tiers
    tiers: list[Tier] = [mapping[key] for key in keys if key is not None and key in mapping]
    if not tiers:
        return None
    return reduce(higher, tiers)


def _micros(amount: Decimal) -> int:
    return int((amount * 1_000_000).to_integral_value())


def _payment(user: User, event: RevenueCatEvent, tier: Tier | None, at: datetime) -> Payment:
    if event.price_in_purchased_currency is not None and event.currency:
        amount, currency = event.price_in_purchased_currency, event.currency
    else:
        # RevenueCat's `price` is in US dollars.
        amount, currency = event.price or Decimal(0), "USD"
    return Payment(
        user_id=user.id,
        provider=PROVIDER,
        event_id=event.id,
        event_type=event.type,
        amount_micros=_micros(amount),
        currency=currency,
        tier=tier,
        product_id=event.product_id,
        store=event.store,
        environment=event.environment,
        period_type=event.period_type,
        period_start=_optional_time(event.purchased_at_ms),
        period_end=_optional_time(event.expiration_at_ms),
        created_at=at,
    )


def _reports_payment(event: RevenueCatEvent) -> bool:
    refund = event.type == "CANCELLATION" and event.price is not None and event.price < 0
    return event.type in _PAID or refund


def _end_trial(user: User, at: datetime) -> None:
    if user.trial_ends_at is not None and user.trial_ends_at > at:
        user.trial_ends_at = at


def _grant(user: User, event: RevenueCatEvent, tier: Tier, at: datetime) -> None:
    ends = _optional_time(event.expiration_at_ms)  # None: a purchase that never expires
    user.subscription_tier = tier
    user.subscription_ends_at = ends
    user.subscription_will_renew = event.type != "NON_RENEWING_PURCHASE"
    user.subscription_store = event.store
    user.subscription_billing_issue_at = None
    if event.period_type == "TRIAL":
        user.trial_ends_at = ends
    else:
        _end_trial(user, at)


def _cancel(user: User, event: RevenueCatEvent) -> None:
    # Access lasts until the paid period ends; EXPIRATION takes it away.
    user.subscription_will_renew = False
    if event.expiration_at_ms is not None:
        user.subscription_ends_at = _time(event.expiration_at_ms)


def _billing_issue(user: User, event: RevenueCatEvent, at: datetime) -> None:
    # The store keeps trying to charge; access lasts through the grace period, if any.
    user.subscription_billing_issue_at = at
    ends = event.grace_period_expiration_at_ms or event.expiration_at_ms
    if ends is not None:
        user.subscription_ends_at = _time(ends)


def _expire(user: User, event: RevenueCatEvent, at: datetime) -> None:
    user.subscription_tier = "free"
    user.subscription_will_renew = False
    user.subscription_billing_issue_at = None
    user.subscription_ends_at = _optional_time(event.expiration_at_ms) or at
    _end_trial(user, at)


def _apply(user: User, event: RevenueCatEvent, tier: Tier | None, at: datetime) -> Outcome:
    if tier is None:
        return "unmapped_product"  # it never granted a plan, so it changes none
    if event.type in _GRANTS:
        _grant(user, event, tier, at)
        return "applied"
    if tier != user.subscription_tier:
        # About a subscription that no longer decides the plan (replaced by a product change).
        return "ignored"
    if event.type == "CANCELLATION":
        _cancel(user, event)
    elif event.type == "BILLING_ISSUE":
        _billing_issue(user, event, at)
    else:
        _expire(user, event, at)
    return "applied"


async def _process(
    db: AsyncSession, ctx: AppContext, event: RevenueCatEvent, at: datetime
) -> tuple[User | None, Outcome]:
    if event.type == "TEST":
        return None, "acknowledged"
    if event.type not in _HANDLED:
        return None, "ignored"
    user = await repository.lock_first_user(db, _user_ids(event))
    if user is None:
        return None, "user_not_found"
    tier = tier_of(ctx.settings, event)
    if _reports_payment(event):
        db.add(_payment(user, event, tier, at))
    last = user.subscription_updated_at
    if last is not None and at < last:
        return user, "out_of_order"
    outcome = _apply(user, event, tier, at)
    if outcome == "applied":
        user.subscription_updated_at = at
        auth_changed(db, ctx, user.id)  # cached sign-ins carry the tier
    return user, outcome


async def receive(db: AsyncSession, ctx: AppContext, event: RevenueCatEvent) -> WebhookOut:
    """Apply one webhook event (see the module's docstring); answers what became of it."""
    now = datetime.now(UTC)
    at = _time(event.event_timestamp_ms)
    row_id = await repository.record_event(
        db,
        provider=PROVIDER,
        event_id=event.id,
        event_type=event.type,
        event_at=at,
        received_at=now,
    )
    outcome: Outcome = "duplicate"
    if row_id is not None:
        user, outcome = await _process(db, ctx, event, at)
        applied_at = now if outcome == "applied" else None
        user_id = user.id if user else None
        await repository.finish_event(
            db, row_id, user_id=user_id, outcome=outcome, applied_at=applied_at
        )
    unusable = outcome in {"user_not_found", "unmapped_product"}
    (log.warning if unusable else log.info)(
        "billing.revenuecat_event",
        event_id=event.id,
        event_type=event.type,
        app_user_id=event.app_user_id,
        outcome=outcome,
    )
    return WebhookOut(event_id=event.id, outcome=outcome)
