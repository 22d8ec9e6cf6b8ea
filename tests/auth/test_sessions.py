"""Sessions across workers: a sign-out on one is at once a sign-out on every other."""

from __future__ import annotations

import jwt

from devpocket.auth.sessions import REVOKED_CHANNEL
from devpocket.settings import Settings
from tests.conftest import serving
from tests.helpers import data, error, register

ME = "/api/v1/auth/me"


async def test_logout_on_one_worker_revokes_on_another(settings: Settings, backend: str) -> None:
    async with serving(settings) as (_, worker_a), serving(settings) as (app_b, worker_b):
        account = await register(worker_a)
        data(await worker_b.get(ME, headers=account.headers))
        session_id = jwt.decode(account.access_token, options={"verify_signature": False})["sid"]
        async with app_b.state.ctx.broker.subscribe(REVOKED_CHANNEL) as notices:
            data(await worker_a.post("/api/v1/auth/logout", headers=account.headers))
            error(await worker_b.get(ME, headers=account.headers), 401, "session_revoked")
            if backend == "postgres":
                # With Redis, the other worker is also told (open WebSockets close on it).
                notice = await notices.get(timeout=2.0)
                assert notice is not None
                assert notice.data.decode() == session_id


async def test_refresh_reuse_on_another_worker_is_detected(settings: Settings) -> None:
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
