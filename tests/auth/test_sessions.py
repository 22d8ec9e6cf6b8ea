"""Sessions across workers: a sign-out on one is at once a sign-out on every other."""

from __future__ import annotations

import jwt
import pytest

from devpocket.auth.sessions import REVOKED_CHANNEL
from devpocket.settings import Settings
from tests.conftest import SettingsFactory, serving
from tests.helpers import data, error, register

ME = "/api/v1/auth/me"


@pytest.fixture
def shared_settings(
    settings_factory: SettingsFactory, redis_server_url: str, redis_prefix: str
) -> Settings:
    """Two workers share the database and Redis, as `--workers 2` or two nodes do."""
    return settings_factory(redis_url=redis_server_url, redis_key_prefix=redis_prefix)


async def test_logout_on_one_worker_revokes_on_another(shared_settings: Settings) -> None:
    settings = shared_settings
    async with serving(settings) as (_, worker_a), serving(settings) as (app_b, worker_b):
        account = await register(worker_a)
        data(await worker_b.get(ME, headers=account.headers))
        session_id = jwt.decode(account.access_token, options={"verify_signature": False})["sid"]
        async with app_b.state.ctx.broker.subscribe(REVOKED_CHANNEL) as notices:
            data(await worker_a.post("/api/v1/auth/logout", headers=account.headers))
            error(await worker_b.get(ME, headers=account.headers), 401, "session_revoked")
            # The other worker is also told (open WebSockets close on it).
            notice = await notices.get(timeout=2.0)
            assert notice is not None
            assert notice.data.decode() == session_id


async def test_profile_change_on_one_worker_shows_on_another(shared_settings: Settings) -> None:
    async with serving(shared_settings) as (_, worker_a), serving(shared_settings) as (_, worker_b):
        account = await register(worker_a)
        assert data(await worker_b.get(ME, headers=account.headers))["bio"] is None
        update = {"bio": "changed on A"}
        data(await worker_a.put("/api/v1/auth/profile", json=update, headers=account.headers))
        assert data(await worker_b.get(ME, headers=account.headers))["bio"] == "changed on A"


async def test_account_deletion_on_one_worker_is_seen_by_another(shared_settings: Settings) -> None:
    async with serving(shared_settings) as (_, worker_a), serving(shared_settings) as (_, worker_b):
        account = await register(worker_a)
        data(await worker_b.get(ME, headers=account.headers))
        body = {"password": account.password, "confirmation": "DELETE"}
        path = "/api/v1/users/account"
        data(await worker_a.request("DELETE", path, json=body, headers=account.headers))
        error(await worker_b.get(ME, headers=account.headers), 401)


async def test_refresh_reuse_on_another_worker_is_detected(shared_settings: Settings) -> None:
    settings = shared_settings
    async with serving(settings) as (_, worker_a), serving(settings) as (_, worker_b):
        account = await register(worker_a)
        first = data(
            await worker_a.post(
                "/api/v1/auth/refresh", json={"refresh_token": account.refresh_token}
            )
        )
        data(
            await worker_b.post(
                "/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}
            )
        )
        error(
            await worker_b.post(
                "/api/v1/auth/refresh", json={"refresh_token": account.refresh_token}
            ),
            401,
            "refresh_token_reused",
        )
