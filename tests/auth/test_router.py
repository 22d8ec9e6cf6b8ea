"""Registration, sign-in, tokens and profile through the API, with CONTRACT.md's shapes."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.helpers import PASSWORD, data, error, register

AUTH = "/api/v1/auth"
USER_KEYS = {
    "id",
    "email",
    "username",
    "email_verified",
    "avatar_url",
    "first_name",
    "last_name",
    "bio",
    "company",
    "location",
    "subscription_tier",
    "is_in_trial",
    "trial_ends_at",
    "subscription_ends_at",
    "two_factor_enabled",
    "email_notifications",
    "push_notifications",
    "created_at",
    "updated_at",
}


async def test_register_answers_user_and_tokens(client: httpx.AsyncClient) -> None:
    name = f"Alice_{uuid.uuid4().hex[:6]}"
    body = data(
        await client.post(
            f"{AUTH}/register",
            json={"email": f"{name}@Example.com", "username": name, "password": PASSWORD},
        ),
        201,
    )
    assert set(body) >= {"user", "access_token", "refresh_token", "token_type", "expires_in"}
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 30 * 60
    user = body["user"]
    assert set(user) == USER_KEYS
    assert user["email"] == f"{name}@example.com".lower()
    assert user["username"] == name
    assert user["subscription_tier"] == "free"
    assert user["email_verified"] is False
    assert user["created_at"].endswith("Z") or "+00:00" in user["created_at"]
    uuid.UUID(user["id"])


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("email", "taken", "email_taken"),
        ("username", "taken", "username_taken"),
    ],
)
async def test_register_duplicate_is_409(
    client: httpx.AsyncClient, field: str, value: str, code: str
) -> None:
    first = await register(client)
    other = f"u_{uuid.uuid4().hex[:8]}"
    payload = {"email": f"{other}@example.com", "username": other, "password": PASSWORD}
    payload[field] = first.email.upper() if field == "email" else first.username.upper()
    error(await client.post(f"{AUTH}/register", json=payload), 409, code)


@pytest.mark.parametrize(
    ("password", "status", "code"),
    [
        ("short", 422, "validation_error"),
        ("x" * 129, 422, "validation_error"),
        ("password123", 400, "password_too_common"),
        ("iloveyou", 400, "password_too_common"),
        ("QWERTYUIOP", 400, "password_too_common"),
    ],
)
async def test_register_refuses_weak_passwords(
    client: httpx.AsyncClient, password: str, status: int, code: str
) -> None:
    name = f"u_{uuid.uuid4().hex[:8]}"
    response = await client.post(
        f"{AUTH}/register",
        json={"email": f"{name}@example.com", "username": name, "password": password},
    )
    error(response, status, code)


async def test_register_refuses_password_equal_to_username(client: httpx.AsyncClient) -> None:
    name = f"user_{uuid.uuid4().hex[:8]}"
    response = await client.post(
        f"{AUTH}/register",
        json={"email": f"x{name}@example.com", "username": name, "password": name},
    )
    error(response, 400, "password_too_common")


@pytest.mark.parametrize("username", ["ab", "has space", "dash-ed", "ü_umlaut"])
async def test_register_refuses_bad_usernames(client: httpx.AsyncClient, username: str) -> None:
    response = await client.post(
        f"{AUTH}/register",
        json={
            "email": f"{uuid.uuid4().hex[:8]}@example.com",
            "username": username,
            "password": PASSWORD,
        },
    )
    error(response, 422, "validation_error")


@pytest.mark.parametrize("how", ["email", "email_upper", "username_in_email", "username_field"])
async def test_login_by_email_or_username(client: httpx.AsyncClient, how: str) -> None:
    account = await register(client)
    bodies = {
        "email": {"email": account.email, "password": PASSWORD},
        "email_upper": {"email": account.email.upper(), "password": PASSWORD},
        "username_in_email": {"email": account.username.upper(), "password": PASSWORD},
        "username_field": {"username": account.username, "password": PASSWORD},
    }
    body = data(await client.post(f"{AUTH}/login", json=bodies[how]))
    assert body["user"]["id"] == account.user_id
    assert (
        data(
            await client.get(
                f"{AUTH}/me", headers={"Authorization": f"Bearer {body['access_token']}"}
            )
        )["id"]
        == account.user_id
    )


async def test_login_failures_do_not_reveal_whether_the_account_exists(
    client: httpx.AsyncClient,
) -> None:
    account = await register(client)
    wrong_password = error(
        await client.post(
            f"{AUTH}/login", json={"email": account.email, "password": "Wrong-pass-123"}
        ),
        401,
        "invalid_credentials",
    )
    unknown_user = error(
        await client.post(
            f"{AUTH}/login", json={"email": "nobody@example.com", "password": "Wrong-pass-123"}
        ),
        401,
        "invalid_credentials",
    )
    assert wrong_password["message"] == unknown_user["message"]


async def test_login_without_identifier_is_a_validation_error(client: httpx.AsyncClient) -> None:
    error(await client.post(f"{AUTH}/login", json={"password": PASSWORD}), 422, "validation_error")


async def test_refresh_rotates_tokens(client: httpx.AsyncClient) -> None:
    account = await register(client)
    body = data(await client.post(f"{AUTH}/refresh", json={"refresh_token": account.refresh_token}))
    assert body["refresh_token"] != account.refresh_token
    assert body["access_token"] != account.access_token
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    assert data(await client.get(f"{AUTH}/me", headers=headers))["id"] == account.user_id
    # The new refresh token works in turn.
    data(await client.post(f"{AUTH}/refresh", json={"refresh_token": body["refresh_token"]}))


async def test_refresh_accepts_camel_case(client: httpx.AsyncClient) -> None:
    account = await register(client)
    data(await client.post(f"{AUTH}/refresh", json={"refreshToken": account.refresh_token}))


async def test_unknown_refresh_token_is_401(client: httpx.AsyncClient) -> None:
    error(
        await client.post(f"{AUTH}/refresh", json={"refresh_token": "nope"}),
        401,
        "refresh_token_invalid",
    )


async def test_refresh_token_reuse_revokes_family(
    client: httpx.AsyncClient, settings_factory: object
) -> None:
    account = await register(client)
    first = data(
        await client.post(f"{AUTH}/refresh", json={"refresh_token": account.refresh_token})
    )
    second = data(
        await client.post(f"{AUTH}/refresh", json={"refresh_token": first["refresh_token"]})
    )
    # The original token is now two rotations old: replaying it is theft.
    error(
        await client.post(f"{AUTH}/refresh", json={"refresh_token": account.refresh_token}),
        401,
        "refresh_token_reused",
    )
    # The whole family is gone: the newest refresh token and its access token.
    error(
        await client.post(f"{AUTH}/refresh", json={"refresh_token": second["refresh_token"]}), 401
    )
    headers = {"Authorization": f"Bearer {second['access_token']}"}
    error(await client.get(f"{AUTH}/me", headers=headers), 401, "session_revoked")


async def test_refresh_retry_within_grace_is_not_reuse(client: httpx.AsyncClient) -> None:
    """The app retries a refresh whose answer was lost: that is not theft."""
    account = await register(client)
    lost = data(await client.post(f"{AUTH}/refresh", json={"refresh_token": account.refresh_token}))
    retried = data(
        await client.post(f"{AUTH}/refresh", json={"refresh_token": account.refresh_token})
    )
    # Only the newest token lives on; the lost answer's token is superseded.
    data(await client.post(f"{AUTH}/refresh", json={"refresh_token": retried["refresh_token"]}))
    error(await client.post(f"{AUTH}/refresh", json={"refresh_token": lost["refresh_token"]}), 401)


async def test_logout_with_bearer_and_no_body(client: httpx.AsyncClient) -> None:
    account = await register(client)
    response = await client.post(f"{AUTH}/logout", headers=account.headers)
    assert data(response) is None
    error(await client.get(f"{AUTH}/me", headers=account.headers), 401)
    error(await client.post(f"{AUTH}/refresh", json={"refresh_token": account.refresh_token}), 401)


async def test_logout_with_refresh_token_only(client: httpx.AsyncClient) -> None:
    account = await register(client)
    data(await client.post(f"{AUTH}/logout", json={"refresh_token": account.refresh_token}))
    error(await client.get(f"{AUTH}/me", headers=account.headers), 401)


async def test_logout_without_credentials_is_401(client: httpx.AsyncClient) -> None:
    error(await client.post(f"{AUTH}/logout"), 401)


async def test_logout_ends_only_that_session(client: httpx.AsyncClient) -> None:
    account = await register(client)
    other = data(
        await client.post(f"{AUTH}/login", json={"email": account.email, "password": PASSWORD})
    )
    data(await client.post(f"{AUTH}/logout", headers=account.headers))
    headers = {"Authorization": f"Bearer {other['access_token']}"}
    assert data(await client.get(f"{AUTH}/me", headers=headers))["id"] == account.user_id


async def test_profile_update_accepts_camel_and_snake_case(client: httpx.AsyncClient) -> None:
    account = await register(client)
    user = data(
        await client.put(
            f"{AUTH}/profile",
            json={
                "firstName": "Ada",
                "last_name": "Lovelace",
                "bio": "Engines",
                "company": "AE",
                "location": "London",
                "unknown": "ignored",
            },
            headers=account.headers,
        )
    )
    assert (user["first_name"], user["last_name"], user["bio"]) == ("Ada", "Lovelace", "Engines")
    assert user["company"] == "AE"
    assert user["location"] == "London"
    # Only the keys sent change; an explicit null clears.
    user = data(await client.put(f"{AUTH}/profile", json={"bio": None}, headers=account.headers))
    assert user["bio"] is None
    assert user["first_name"] == "Ada"


async def test_change_password_signs_out_other_sessions(client: httpx.AsyncClient) -> None:
    account = await register(client)
    other = data(
        await client.post(f"{AUTH}/login", json={"email": account.email, "password": PASSWORD})
    )
    new_password = "Another-Long-Pass-42"
    data(
        await client.post(
            f"{AUTH}/change-password",
            json={"currentPassword": PASSWORD, "newPassword": new_password},
            headers=account.headers,
        )
    )
    data(await client.get(f"{AUTH}/me", headers=account.headers))
    error(
        await client.get(
            f"{AUTH}/me", headers={"Authorization": f"Bearer {other['access_token']}"}
        ),
        401,
    )
    error(
        await client.post(f"{AUTH}/login", json={"email": account.email, "password": PASSWORD}), 401
    )
    data(
        await client.post(f"{AUTH}/login", json={"email": account.email, "password": new_password})
    )


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (
            {"current_password": "Wrong-pass-123", "new_password": "Another-Long-Pass-42"},
            400,
            "password_incorrect",
        ),
        ({"current_password": PASSWORD, "new_password": PASSWORD}, 400, "password_unchanged"),
        ({"current_password": PASSWORD, "new_password": "password1"}, 400, "password_too_common"),
        ({"current_password": PASSWORD}, 422, "validation_error"),
    ],
)
async def test_change_password_refusals(
    client: httpx.AsyncClient, body: dict[str, str], status: int, code: str
) -> None:
    account = await register(client)
    error(
        await client.post(f"{AUTH}/change-password", json=body, headers=account.headers),
        status,
        code,
    )
