"""Plans come from Settings, and every limit is enforced where its feature lives."""

from __future__ import annotations

import uuid
from decimal import Decimal
from pathlib import Path

import anyio
import httpx
import pytest

from devpocket.billing.plans import PlanLimits, plan_for
from devpocket.billing.usage import count_ai_request
from devpocket.errors import PermissionDenied
from devpocket.terminal.registry import SessionLimitReached, SessionRegistry
from devpocket.terminal.session import SessionOwner
from tests.billing.revenuecat import deliver, event
from tests.conftest import IsolatedSettings, SettingsFactory, serving
from tests.helpers import Account, data, error, register

PROFILES = "/api/v1/ssh/profiles"


def test_each_tier_reads_its_own_settings() -> None:
    settings = IsolatedSettings(
        ssh_profiles_per_user_pro=20,
        ai_requests_per_month_pro=300,
        terminal_sessions_per_user_pro=0,
        history_retention_days_pro=90,
        sync_devices_per_user_pro=4,
        plan_pro_price="4.50",
        plan_currency="EUR",
    )
    pro = plan_for(settings, "pro")
    assert pro.limits == PlanLimits(20, 300, 0, 90, 4)
    assert (pro.price, pro.currency, pro.interval, pro.is_popular) == (
        Decimal("4.50"),
        "EUR",
        "month",
        True,
    )
    # A limit of 0 turns the feature off: the plan does not advertise it.
    assert not any("terminal" in text for text in pro.features)
    assert "20 saved SSH hosts" in pro.features


def test_an_unknown_tier_gets_the_free_plan() -> None:
    settings = IsolatedSettings()
    assert plan_for(settings, "platinum") == plan_for(settings, "free")
    assert plan_for(settings, "free").price == 0


def test_ssh_profiles_max_still_sets_every_tier_not_set_on_its_own() -> None:
    settings = IsolatedSettings(ssh_profiles_max=7, ssh_profiles_per_user_team=-1)
    assert [plan_for(settings, t).limits.ssh_connections for t in ("free", "pro", "team")] == [
        7,
        7,
        -1,
    ]


async def _create(client: httpx.AsyncClient, account: Account, name: str) -> httpx.Response:
    body = {"name": name, "host": f"{name}.example.com", "username": "deploy"}
    return await client.post(PROFILES, json=body, headers=account.headers)


async def test_saved_profiles_stop_at_the_plans_limit_naming_it(
    settings_factory: SettingsFactory,
) -> None:
    settings = settings_factory(
        ssh_profiles_per_user_free=2,
        revenuecat_webhook_authorization="Bearer rc-webhook-9f0c2b7e41d84a4fa3b1c6d5e8f70a12",
    )
    async with serving(settings) as (_, client):
        account = await register(client)
        for name in ("a", "b"):
            data(await _create(client, account, name), 201)
        refused = error(await _create(client, account, "c"), 403, "profile_limit_reached")
        assert refused["details"] == {
            "feature": "ssh_connections",
            "plan": "free",
            "limit": 2,
            "used": 2,
        }
        assert "ssh_connections" in refused["message"]
        # Pro is unlimited by default.
        await deliver(client, event(account.user_id, "INITIAL_PURCHASE"))
        data(await _create(client, account, "c"), 201)


async def test_ai_requests_stop_at_the_plans_monthly_limit_naming_it(
    settings_factory: SettingsFactory,
) -> None:
    settings = settings_factory(ai_requests_per_month_free=1, ai_requests_per_month_team=0)
    async with serving(settings) as (app, client):
        user_id = uuid.UUID((await register(client)).user_id)
        sessions = app.state.ctx.sessionmaker
        await count_ai_request(sessions, settings, user_id, "free")
        with pytest.raises(PermissionDenied) as refused:
            await count_ai_request(sessions, settings, user_id, "free")
        with pytest.raises(PermissionDenied) as off:
            await count_ai_request(sessions, settings, user_id, "team")
    assert refused.value.code == "ai_quota_exceeded"
    assert (refused.value.details["feature"], refused.value.details["used"]) == ("ai_requests", 1)
    assert (refused.value.details["plan"], refused.value.details["limit"]) == ("free", 1)
    assert "not part of the Team plan" in off.value.message


@pytest.mark.parametrize(
    ("tier", "expected"), [("free", 2), ("pro", 0), ("team", 500), ("unknown", 2)]
)
async def test_terminal_sessions_follow_the_plan(tmp_path: Path, tier: str, expected: int) -> None:
    settings = IsolatedSettings(
        terminal_sessions_per_user_free=2,
        terminal_sessions_per_user_pro=0,
        terminal_sessions_per_user_team=-1,
        terminal_sessions_max=500,
    )
    async with anyio.create_task_group() as tasks:
        registry = SessionRegistry(settings, tasks, tmp_path)
        # Unlimited for the plan is still bounded by what the server runs at once.
        assert registry.user_limit(tier) == expected
        owner = SessionOwner(uuid.uuid4(), None, tier)
        if expected:
            with registry.reserve(owner):
                pass
        else:
            with pytest.raises(SessionLimitReached) as refused, registry.reserve(owner):
                pass
            assert refused.value.code == "session_limit_reached"
