from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer

from devpocket.billing.plans import Plan, PlanLimits, Tier

# Money as a JSON number (9.99), as the app parses it, not pydantic's default string.
Amount = Annotated[Decimal, PlainSerializer(float, return_type=float)]
# Milliseconds since the epoch, up to the year 9999.
Millis = Annotated[int, Field(ge=0, le=253_402_300_799_999)]
# A provider's price, bounded so that its millionths fit a BIGINT.
Price = Annotated[Decimal, Field(ge=-1_000_000_000, le=1_000_000_000)]


class UsageOut(BaseModel):
    feature: str
    used: int
    limit: int = Field(description="-1: unlimited; 0: the feature is off for this plan.")
    reset_date: datetime | None


class LimitsOut(BaseModel):
    """-1: unlimited; 0: the feature is off for this plan."""

    ssh_connections: int = Field(description="Saved SSH profiles.")
    ai_requests: int = Field(description="AI requests per calendar month.")
    terminal_sessions: int = Field(description="Terminal sessions running at once.")
    cloud_history: int = Field(description="Days of command history kept.")
    multi_device: int = Field(description="Devices that can sync.")

    @classmethod
    def of(cls, limits: PlanLimits) -> LimitsOut:
        return cls.model_validate(limits, from_attributes=True)


class PlanOut(BaseModel):
    id: str
    name: str
    description: str
    tier: Tier
    price: Amount
    currency: str
    interval: Literal["month", "year"] | None
    features: list[str]
    limits: LimitsOut
    # camelCase on the wire: the app's plan model reads `isPopular`.
    is_popular: bool = Field(serialization_alias="isPopular")

    @classmethod
    def of(cls, plan: Plan) -> PlanOut:
        return cls(
            id=plan.id,
            name=plan.name,
            description=plan.description,
            tier=plan.tier,
            price=plan.price,
            currency=plan.currency,
            interval=plan.interval,
            features=list(plan.features),
            limits=LimitsOut.of(plan.limits),
            is_popular=plan.is_popular,
        )


class CurrentOut(BaseModel):
    is_active: bool = Field(description="A paid plan is in force now.")
    tier: Tier
    expires_at: datetime | None = Field(description="End of the paid period (or of the trial).")
    will_renew: bool
    is_in_trial: bool
    trial_ends_at: datetime | None
    store: str | None = Field(description="Where it was bought: APP_STORE, PLAY_STORE …")
    billing_issue: bool = Field(description="The store could not charge; access lasts a while.")
    limits: LimitsOut


class PaymentOut(BaseModel):
    id: uuid.UUID
    amount: Amount = Field(description="Negative for a refund.")
    currency: str
    tier: Tier | None
    product_id: str | None
    store: str | None
    environment: str | None = Field(description="PRODUCTION or SANDBOX.")
    event_type: str
    period_type: str | None = Field(description="NORMAL, TRIAL, INTRO …")
    period_start: datetime | None
    period_end: datetime | None
    created_at: datetime


class RevenueCatEvent(BaseModel):
    """The fields of a RevenueCat webhook event this server reads; others are ignored."""

    model_config = ConfigDict(extra="ignore")

    id: str = Field(min_length=1, max_length=200)
    type: str = Field(min_length=1, max_length=64)
    event_timestamp_ms: Millis
    app_user_id: str | None = None
    original_app_user_id: str | None = None
    aliases: list[str] | None = None
    product_id: str | None = Field(default=None, max_length=200)
    new_product_id: str | None = None
    entitlement_ids: list[str] | None = None
    entitlement_id: str | None = None
    period_type: str | None = Field(default=None, max_length=16)
    purchased_at_ms: Millis | None = None
    expiration_at_ms: Millis | None = None
    grace_period_expiration_at_ms: Millis | None = None
    price: Price | None = None
    price_in_purchased_currency: Price | None = None
    currency: str | None = Field(default=None, max_length=8)
    store: str | None = Field(default=None, max_length=32)
    environment: str | None = Field(default=None, max_length=16)


class RevenueCatWebhook(BaseModel):
    model_config = ConfigDict(extra="ignore")

    api_version: str | None = None
    event: RevenueCatEvent


Outcome = Literal[
    "applied",  # the user's subscription changed
    "duplicate",  # a redelivery of an event already received
    "out_of_order",  # older than the last event applied to the user
    "ignored",  # a type (or an expiring subscription) that does not change the plan
    "user_not_found",
    "unmapped_product",  # neither product nor entitlements are in REVENUECAT_PRODUCT_TIERS
    "acknowledged",  # RevenueCat's TEST event
]


class WebhookOut(BaseModel):
    event_id: str
    outcome: Outcome
