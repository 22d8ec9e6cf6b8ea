"""The plans (free, pro, team) and their limits: the one place every enforcement point reads.

The numbers come from Settings. A limit of -1 is unlimited and 0 turns the feature off, as the app
reads them (CONTRACT.md, "Subscriptions and usage").
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal, get_args

from devpocket.errors import PermissionDenied
from devpocket.settings import PlanTier, Settings

Tier = PlanTier
Feature = Literal[
    "ssh_connections", "ai_requests", "terminal_sessions", "cloud_history", "multi_device"
]
TIERS: tuple[Tier, ...] = get_args(Tier)
UNLIMITED = -1
_RANK = {tier: rank for rank, tier in enumerate(TIERS)}


@dataclass(frozen=True, slots=True)
class PlanLimits:
    ssh_connections: int  # saved SSH profiles
    ai_requests: int  # per calendar month
    terminal_sessions: int  # running at once
    cloud_history: int  # days of command history kept
    multi_device: int  # devices that can sync

    def of(self, feature: Feature) -> int:
        value: int = getattr(self, feature)
        return value


@dataclass(frozen=True, slots=True)
class Plan:
    id: str
    name: str
    description: str
    tier: Tier
    price: Decimal
    currency: str
    interval: Literal["month", "year"] | None
    features: tuple[str, ...]
    limits: PlanLimits
    is_popular: bool


_TEXT: dict[Tier, tuple[str, str]] = {
    "free": ("Free", "The essentials for connecting to your servers from your phone."),
    "pro": ("Pro", "More hosts, sessions and AI help for people who live in the terminal."),
    "team": ("Team", "No limits, for teams that share servers and work across many devices."),
}


def as_tier(tier: str) -> Tier:
    """A stored tier as one of the plans; anything unknown is the free plan."""
    for known in TIERS:
        if tier == known:
            return known
    return "free"


def higher(first: Tier, second: Tier) -> Tier:
    return first if _RANK[first] >= _RANK[second] else second


def within(limit: int, used: int) -> bool:
    """Whether one more use fits under ``limit`` when ``used`` are taken."""
    return limit == UNLIMITED or used < limit


def _limits(settings: Settings, tier: Tier) -> PlanLimits:
    s = settings
    if tier == "team":
        return PlanLimits(
            s.ssh_profiles_per_user_team,
            s.ai_requests_per_month_team,
            s.terminal_sessions_per_user_team,
            s.history_retention_days_team,
            s.sync_devices_per_user_team,
        )
    if tier == "pro":
        return PlanLimits(
            s.ssh_profiles_per_user_pro,
            s.ai_requests_per_month_pro,
            s.terminal_sessions_per_user_pro,
            s.history_retention_days_pro,
            s.sync_devices_per_user_pro,
        )
    return PlanLimits(
        s.ssh_profiles_per_user_free,
        s.ai_requests_per_month_free,
        s.terminal_sessions_per_user_free,
        s.history_retention_days_free,
        s.sync_devices_per_user_free,
    )


def _feature(limit: int, counted: str, unlimited: str) -> str | None:
    if limit == 0:
        return None
    return unlimited if limit == UNLIMITED else counted.format(limit)


def _features(limits: PlanLimits) -> tuple[str, ...]:
    texts = (
        _feature(limits.ssh_connections, "{} saved SSH hosts", "Unlimited saved SSH hosts"),
        _feature(limits.ai_requests, "{} AI requests a month", "Unlimited AI requests"),
        _feature(
            limits.terminal_sessions, "{} terminal sessions at once", "Unlimited terminal sessions"
        ),
        _feature(
            limits.cloud_history, "{} days of cloud command history", "Cloud history kept forever"
        ),
        _feature(limits.multi_device, "Sync across {} devices", "Sync across all your devices"),
    )
    return tuple(text for text in texts if text is not None)


def plan_for(settings: Settings, tier: str) -> Plan:
    """The plan of a tier, as configured; an unknown tier gets the free plan."""
    known = as_tier(tier)
    name, description = _TEXT[known]
    limits = _limits(settings, known)
    prices = {"free": Decimal(0), "pro": settings.plan_pro_price, "team": settings.plan_team_price}
    return Plan(
        id=known,
        name=name,
        description=description,
        tier=known,
        price=prices[known],
        currency=settings.plan_currency,
        interval=None if known == "free" else "month",
        features=_features(limits),
        limits=limits,
        is_popular=known == "pro",
    )


def all_plans(settings: Settings) -> list[Plan]:
    return [plan_for(settings, tier) for tier in TIERS]


def limit_reached(
    plan: Plan, feature: Feature, used: int, *, code: str, message: str, **extra: Any
) -> PermissionDenied:
    """The refusal of a use beyond the plan: names the limit, the plan and its allowance."""
    details = {"feature": feature, "plan": plan.tier, "limit": plan.limits.of(feature)}
    return PermissionDenied(message, code=code, details={**details, "used": used, **extra})
