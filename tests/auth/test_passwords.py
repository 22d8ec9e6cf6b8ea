"""argon2id hashing off the loop, rehash on parameter change, and the password policy."""

from __future__ import annotations

import uuid

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from devpocket.auth.passwords import PasswordHasher, check_password_policy, common_passwords
from devpocket.db.models import User
from devpocket.errors import InvalidInput
from tests.conftest import SettingsFactory, serving
from tests.helpers import PASSWORD, data, register


def _hasher(memory_kib: int = 19 * 1024, time_cost: int = 2) -> PasswordHasher:
    return PasswordHasher(time_cost=time_cost, memory_kib=memory_kib, parallelism=1, workers=2)


async def test_hash_is_argon2id_with_owasp_parameters() -> None:
    hashed = await _hasher().hash("Some-Password-1")
    assert hashed.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert (await _hasher().verify(hashed, "Some-Password-1")).ok
    assert not (await _hasher().verify(hashed, "some-password-1")).ok


async def test_unknown_user_verification_fails_after_doing_the_work() -> None:
    hasher = _hasher()
    result = await hasher.verify(None, "anything")
    assert not result.ok
    assert not result.needs_rehash
    assert hasher._dummy_hash is not None
    assert hasher._dummy_hash.startswith("$argon2id$")


async def test_corrupt_hash_does_not_verify() -> None:
    assert not (await _hasher().verify("not-a-hash", "x")).ok


async def test_changed_parameters_ask_for_rehash() -> None:
    old = await _hasher(memory_kib=8 * 1024, time_cost=1).hash("Some-Password-1")
    assert (await _hasher().verify(old, "Some-Password-1")).needs_rehash
    assert not (await _hasher().verify(old, "Wrong")).needs_rehash


async def test_login_rehashes_when_parameters_change(settings_factory: SettingsFactory) -> None:
    async with serving(settings_factory(password_hash_memory_kib=8 * 1024)) as (_, client):
        account = await register(client)
    async with serving(settings_factory()) as (app, client):
        data(
            await client.post(
                "/api/v1/auth/login", json={"email": account.email, "password": PASSWORD}
            )
        )
        async with app.state.ctx.sessionmaker() as db:
            user = await db.scalar(select(User).where(User.id == uuid.UUID(account.user_id)))
            assert user is not None
            assert user.password_hash is not None
            assert "$m=19456," in user.password_hash


@pytest.mark.parametrize(
    ("password", "code"),
    [
        ("1234567", "password_invalid_length"),
        ("x" * 129, "password_invalid_length"),
        ("sunshine", "password_too_common"),
        ("Sunshine", "password_too_common"),
        ("alice_smith", "password_too_common"),
        ("alice@example.com", "password_too_common"),
    ],
)
def test_policy_refusals(password: str, code: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        check_password_policy(password, username="alice_smith", email="alice@example.com")
    assert raised.value.code == code


def test_policy_accepts_a_decent_password() -> None:
    check_password_policy("correct horse battery staple", username="alice", email="a@example.com")


def test_common_password_list_is_loaded() -> None:
    words = common_passwords()
    assert len(words) == 10_000
    assert "password" in words
    assert all(len(w) >= 8 for w in words)


async def test_hashing_does_not_block_the_event_loop(
    app_client: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    """While a login hashes, the loop keeps serving: a liveness probe overlaps the hash."""
    import anyio

    _, client = app_client
    account = await register(client)
    finished: list[str] = []

    async def login() -> None:
        await client.post("/api/v1/auth/login", json={"email": account.email, "password": PASSWORD})
        finished.append("login")

    async def probe() -> None:
        await anyio.sleep(0.001)
        await client.get("/health/live")
        finished.append("probe")

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(login)
        tasks.start_soon(probe)
    assert finished == ["probe", "login"]
