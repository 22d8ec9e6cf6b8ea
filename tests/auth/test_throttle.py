"""Guessing is slowed per account and source, without locking the owner out."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import SettingsFactory, serving
from tests.helpers import PASSWORD, data, error, register

LOGIN = "/api/v1/auth/login"
ATTACKER = {"X-Forwarded-For": "203.0.113.5"}
OWNER = {"X-Forwarded-For": "198.51.100.7"}
NEW_PASSWORD = "Another-Long-Pass-42"


async def _fail(client: httpx.AsyncClient, email: str, headers: dict[str, str]) -> httpx.Response:
    return await client.post(
        LOGIN, json={"email": email, "password": "Wrong-pass-123"}, headers=headers
    )


async def test_guessing_one_account_is_throttled_for_that_source_only(
    client: httpx.AsyncClient,
) -> None:
    victim = await register(client)
    for _ in range(5):
        error(await _fail(client, victim.email, ATTACKER), 401, "invalid_credentials")
    throttled = await client.post(
        LOGIN, json={"email": victim.email, "password": PASSWORD}, headers=ATTACKER
    )
    error(throttled, 429, "login_throttled")
    assert int(throttled.headers["retry-after"]) > 0
    # The owner, elsewhere, signs in; their existing session keeps working.
    data(
        await client.post(LOGIN, json={"email": victim.email, "password": PASSWORD}, headers=OWNER)
    )
    data(await client.get("/api/v1/auth/me", headers=victim.headers))


async def test_guesses_by_username_and_by_email_count_against_one_account(
    client: httpx.AsyncClient,
) -> None:
    victim = await register(client)
    typed_names = [victim.username, victim.email, victim.username.upper(), victim.email.upper()]
    for typed in [*typed_names, victim.username]:
        error(await _fail(client, typed, ATTACKER), 401, "invalid_credentials")
    for typed in (victim.username, victim.email):
        response = await client.post(
            LOGIN, json={"email": typed, "password": PASSWORD}, headers=ATTACKER
        )
        error(response, 429, "login_throttled")


async def test_guessing_an_unknown_name_is_throttled_alike(client: httpx.AsyncClient) -> None:
    for _ in range(5):
        error(await _fail(client, "Nobody_Here", ATTACKER), 401, "invalid_credentials")
    error(await _fail(client, "nobody_here", ATTACKER), 429, "login_throttled")
    error(await _fail(client, "nobody_here", OWNER), 401, "invalid_credentials")


@pytest.mark.parametrize(
    ("method", "path", "field", "extra"),
    [
        ("POST", "/api/v1/auth/change-password", "currentPassword", {"newPassword": NEW_PASSWORD}),
        ("DELETE", "/api/v1/users/account", "password", {"confirmation": "DELETE"}),
    ],
    ids=["change_password", "delete_account"],
)
async def test_guessing_the_current_password_with_a_token_is_throttled_like_login(
    client: httpx.AsyncClient, method: str, path: str, field: str, extra: dict[str, str]
) -> None:
    """A stolen access token must not let anyone try password after password."""
    account = await register(client)
    headers = {**account.headers, **ATTACKER}
    for _ in range(5):
        wrong = {field: "Wrong-pass-123", **extra}
        error(await client.request(method, path, json=wrong, headers=headers), 400)
    right = {field: PASSWORD, **extra}
    throttled = await client.request(method, path, json=right, headers=headers)
    error(throttled, 429, "login_throttled")
    assert int(throttled.headers["retry-after"]) > 0
    # It is the sign-in count of that account and source: password sign-in there waits too.
    login = {"email": account.email, "password": PASSWORD}
    error(await client.post(LOGIN, json=login, headers=ATTACKER), 429, "login_throttled")
    # Nothing changed; the owner, elsewhere, still can.
    data(await client.get("/api/v1/auth/me", headers=account.headers))
    data(await client.request(method, path, json=right, headers={**account.headers, **OWNER}))


async def test_one_source_guessing_many_accounts_is_limited(
    settings_factory: SettingsFactory,
) -> None:
    async with serving(settings_factory(login_failures_per_source="3/hour")) as (_, client):
        for n in range(3):
            error(await _fail(client, f"someone{n}@example.com", ATTACKER), 401)
        error(await _fail(client, "someone9@example.com", ATTACKER), 429, "login_throttled")
        # Another source is unaffected.
        error(await _fail(client, "someone9@example.com", OWNER), 401, "invalid_credentials")


async def test_success_clears_the_failure_count(client: httpx.AsyncClient) -> None:
    account = await register(client)
    for _ in range(4):
        error(await _fail(client, account.email, ATTACKER), 401)
    data(
        await client.post(
            LOGIN, json={"email": account.email, "password": PASSWORD}, headers=ATTACKER
        )
    )
    for _ in range(4):
        error(await _fail(client, account.email, ATTACKER), 401, "invalid_credentials")


async def test_spoofed_forwarded_for_from_untrusted_peer_is_ignored(
    settings_factory: SettingsFactory,
) -> None:
    async with serving(settings_factory(trusted_proxies=[])) as (_, client):
        account = await register(client)
        for n in range(5):
            error(await _fail(client, account.email, {"X-Forwarded-For": f"192.0.2.{n}"}), 401)
        response = await _fail(client, account.email, {"X-Forwarded-For": "192.0.2.99"})
        error(response, 429, "login_throttled")


async def test_rate_limits_can_be_switched_off(settings_factory: SettingsFactory) -> None:
    async with serving(settings_factory(rate_limit_enabled=False)) as (_, client):
        account = await register(client)
        for _ in range(8):
            error(await _fail(client, account.email, ATTACKER), 401, "invalid_credentials")


async def test_sign_in_keeps_working_when_the_shared_store_is_down(
    settings_factory: SettingsFactory, closed_port: int
) -> None:
    """The throttle fails open, and sign-out still commits when Redis cannot be told."""
    settings = settings_factory(redis_url=f"redis://127.0.0.1:{closed_port}/0")
    async with serving(settings) as (_, client):
        account = await register(client)
        data(await client.post(LOGIN, json={"email": account.email, "password": PASSWORD}))
        error(await _fail(client, account.email, ATTACKER), 401, "invalid_credentials")
        data(await client.post("/api/v1/auth/logout", headers=account.headers))
        error(await client.get("/api/v1/auth/me", headers=account.headers), 401)
