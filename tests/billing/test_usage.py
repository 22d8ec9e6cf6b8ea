"""Counting AI requests: atomic against the limit, committed at once, given back on failure."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from devpocket.billing.usage import (
    AI_REQUESTS,
    count_ai_request,
    counted_ai_request,
    give_back_ai_request,
    month_period,
    used_in_period,
)
from devpocket.errors import PermissionDenied
from devpocket.settings import Settings
from tests.conftest import SettingsFactory, serving
from tests.helpers import register

Counting = tuple[async_sessionmaker[AsyncSession], Settings, uuid.UUID]


@pytest.fixture
async def counting(settings_factory: SettingsFactory) -> AsyncIterator[Counting]:
    """The app's sessions, settings with 3 AI requests a month on the free plan, and a user."""
    settings = settings_factory(ai_requests_per_month_free=3)
    async with serving(settings) as (app, client):
        user_id = uuid.UUID((await register(client)).user_id)
        yield app.state.ctx.sessionmaker, settings, user_id


async def _used(sessions: async_sessionmaker[AsyncSession], user_id: uuid.UUID) -> int:
    async with sessions() as db:
        return await used_in_period(db, user_id, AI_REQUESTS, month_period(datetime.now(UTC)))


class Failure(Exception):
    """The work inside a counted request failing."""


@pytest.mark.parametrize(("tier", "admitted"), [("free", 3), ("team", 10)])
async def test_concurrent_counts_never_pass_the_plans_limit(
    counting: Counting, tier: str, admitted: int
) -> None:
    sessions, settings, user_id = counting
    outcomes = await asyncio.gather(
        *(count_ai_request(sessions, settings, user_id, tier) for _ in range(10)),
        return_exceptions=True,
    )
    refused = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
    assert len(outcomes) - len(refused) == admitted
    assert all(isinstance(error, PermissionDenied) for error in refused)
    assert {error.code for error in refused if isinstance(error, PermissionDenied)} <= {
        "ai_quota_exceeded"
    }
    assert await _used(sessions, user_id) == admitted


async def test_failed_work_gives_its_count_back_and_answered_work_keeps_it(
    counting: Counting,
) -> None:
    sessions, settings, user_id = counting
    seen_by_the_work: list[int] = []

    async def fail() -> None:
        async with counted_ai_request(sessions, settings, user_id, "free"):
            seen_by_the_work.append(await _used(sessions, user_id))
            raise Failure

    with pytest.raises(Failure):
        await fail()
    assert seen_by_the_work == [1]  # committed before the work runs
    assert await _used(sessions, user_id) == 0
    async with counted_ai_request(sessions, settings, user_id, "free"):
        pass
    assert await _used(sessions, user_id) == 1


async def test_giving_back_never_goes_below_zero(counting: Counting) -> None:
    sessions, settings, user_id = counting
    period = await count_ai_request(sessions, settings, user_id, "free")
    await give_back_ai_request(sessions, user_id, period)
    await give_back_ai_request(sessions, user_id, period)
    assert await _used(sessions, user_id) == 0
    await count_ai_request(sessions, settings, user_id, "free")
    assert await _used(sessions, user_id) == 1
