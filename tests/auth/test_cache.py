"""The per-process memory of session checks, and its per-user stamp in the broker."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import update

from devpocket.auth.cache import AuthCache
from devpocket.auth.schemas import UserOut
from devpocket.broker.memory import MemoryBroker
from devpocket.db.models import User
from tests.conftest import SettingsFactory, serving
from tests.helpers import data, error, register

NOW = datetime.now(UTC)
PROFILE = UserOut(
    id=uuid.uuid4(), email="a@example.com", username="alice", email_verified=False,
    avatar_url=None, first_name=None, last_name=None, bio=None, company=None, location=None,
    subscription_tier="free", is_in_trial=False, trial_ends_at=None, subscription_ends_at=None,
    two_factor_enabled=False, email_notifications=True, push_notifications=True,
    created_at=NOW, updated_at=NOW,
)  # fmt: skip


@pytest.fixture
async def broker() -> AsyncIterator[MemoryBroker]:
    broker = MemoryBroker()
    yield broker
    await broker.aclose()


async def _remembered(cache: AuthCache, user_id: uuid.UUID, session_id: uuid.UUID) -> None:
    stamp = await cache.stamp(user_id)
    assert stamp is not None
    cache.remember(session_id, user_id=user_id, device_id=None, profile=PROFILE, stamp=stamp)


async def test_remembered_check_is_used_until_the_user_changes(broker: MemoryBroker) -> None:
    cache = AuthCache(broker, seconds=60)
    user_id, session_id = uuid.uuid4(), uuid.uuid4()
    await _remembered(cache, user_id, session_id)
    hit = await cache.lookup(session_id, user_id)
    assert hit is not None
    assert hit.profile == PROFILE
    assert await cache.lookup(session_id, uuid.uuid4()) is None  # another user's id
    await cache.invalidate(user_id)
    assert await cache.lookup(session_id, user_id) is None


async def test_remembered_check_ages_out(broker: MemoryBroker) -> None:
    now = [1000.0]
    cache = AuthCache(broker, seconds=60, clock=lambda: now[0])
    user_id, session_id = uuid.uuid4(), uuid.uuid4()
    await _remembered(cache, user_id, session_id)
    now[0] += 61
    assert await cache.lookup(session_id, user_id) is None


async def test_lost_stamp_means_no_memory(broker: MemoryBroker) -> None:
    """A broker that forgot its keys (a Redis restart) makes every entry miss."""
    cache = AuthCache(broker, seconds=60)
    user_id, session_id = uuid.uuid4(), uuid.uuid4()
    await _remembered(cache, user_id, session_id)
    await broker.delete(f"auth-stamp:{user_id}")
    assert await cache.lookup(session_id, user_id) is None


async def test_memory_is_off_with_zero_seconds(broker: MemoryBroker) -> None:
    assert await AuthCache(broker, seconds=0).stamp(uuid.uuid4()) is None


async def test_memory_is_bounded(broker: MemoryBroker) -> None:
    cache = AuthCache(broker, seconds=60, size=3)
    user_id = uuid.uuid4()
    sessions = [uuid.uuid4() for _ in range(5)]
    for session_id in sessions:
        await _remembered(cache, user_id, session_id)
    assert [await cache.lookup(s, user_id) is not None for s in sessions] == [False, False] + [
        True
    ] * 3


async def test_without_memory_a_change_in_the_database_shows_at_once(
    settings_factory: SettingsFactory,
) -> None:
    async with serving(settings_factory(auth_cache_seconds=0)) as (app, client):
        account = await register(client)
        data(await client.get("/api/v1/auth/me", headers=account.headers))
        async with app.state.ctx.sessionmaker() as db:
            await db.execute(
                update(User).where(User.id == uuid.UUID(account.user_id)).values(is_active=False)
            )
            await db.commit()
        error(await client.get("/api/v1/auth/me", headers=account.headers), 401)


async def test_changes_through_the_api_show_at_once(client: httpx.AsyncClient) -> None:
    account = await register(client)
    me = "/api/v1/auth/me"
    assert data(await client.get(me, headers=account.headers))["first_name"] is None
    data(
        await client.put(
            "/api/v1/users/profile", json={"firstName": "Ada"}, headers=account.headers
        )
    )
    assert data(await client.get(me, headers=account.headers))["first_name"] == "Ada"
