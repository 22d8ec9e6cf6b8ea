"""Every way an access token can be wrong is exactly a 401."""

from __future__ import annotations

import uuid
import warnings
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest
from fastapi import FastAPI
from sqlalchemy import update

from devpocket.db.models import User
from tests.conftest import TEST_SECRET
from tests.helpers import Account, data, error, register

ME = "/api/v1/auth/me"


def _claims(account: Account, **overrides: Any) -> dict[str, Any]:
    claims = jwt.decode(account.access_token, options={"verify_signature": False})
    claims.update(overrides)
    return claims


def _sign(claims: dict[str, Any], key: str = TEST_SECRET, algorithm: str = "HS256") -> str:
    with warnings.catch_warnings():
        # HS512 with the server's 52-byte secret: PyJWT warns about the key length.
        warnings.simplefilter("ignore", jwt.warnings.InsecureKeyLengthWarning)
        return jwt.encode(claims, key, algorithm=algorithm)


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_valid_token_is_accepted(client: httpx.AsyncClient) -> None:
    account = await register(client)
    assert data(await client.get(ME, headers=account.headers))["id"] == account.user_id


async def test_missing_token_is_401(client: httpx.AsyncClient) -> None:
    response = await client.get(ME)
    error(response, 401, "not_authenticated")
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "header",
    ["Bearer not-a-jwt", "Basic dXNlcjpwYXNz", "Bearer ", "Bearer a.b.c"],
)
async def test_malformed_credentials_are_401(client: httpx.AsyncClient, header: str) -> None:
    response = await client.get(ME, headers={"Authorization": header})
    assert response.status_code == 401
    assert response.json()["success"] is False


def _alg_none(claims: dict[str, Any]) -> str:
    return jwt.encode(claims, None, algorithm="none")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("case", "expected_code"),
    [
        ("alg_none", "token_invalid"),
        ("wrong_key", "token_invalid"),
        ("hs512_not_allowed", "token_invalid"),
        ("refresh_typ", "token_invalid"),
        ("no_typ", "token_invalid"),
        ("wrong_audience", "token_invalid"),
        ("wrong_issuer", "token_invalid"),
        ("expired", "token_expired"),
        ("not_yet_valid", "token_invalid"),
        ("bad_subject", "token_invalid"),
        ("unknown_session", "session_revoked"),
    ],
)
async def test_forged_or_wrong_tokens_are_401(
    client: httpx.AsyncClient, case: str, expected_code: str
) -> None:
    account = await register(client)
    now = datetime.now(UTC)
    claims = _claims(account)
    tokens = {
        "alg_none": lambda: _alg_none(claims),
        "wrong_key": lambda: _sign(claims, key="another-secret-" + "y" * 40),
        "hs512_not_allowed": lambda: _sign(claims, algorithm="HS512"),
        "refresh_typ": lambda: _sign({**claims, "typ": "refresh"}),
        "no_typ": lambda: _sign({k: v for k, v in claims.items() if k != "typ"}),
        "wrong_audience": lambda: _sign({**claims, "aud": "someone-else"}),
        "wrong_issuer": lambda: _sign({**claims, "iss": "evil"}),
        "expired": lambda: _sign(
            {
                **claims,
                "iat": now - timedelta(hours=2),
                "nbf": now - timedelta(hours=2),
                "exp": now - timedelta(hours=1),
            }
        ),
        "not_yet_valid": lambda: _sign({**claims, "nbf": now + timedelta(hours=1)}),
        "bad_subject": lambda: _sign({**claims, "sub": "not-a-uuid"}),
        "unknown_session": lambda: _sign({**claims, "sid": str(uuid.uuid4())}),
    }
    response = await client.get(ME, headers=_bearer(tokens[case]()))
    error(response, 401, expected_code)


async def test_refresh_token_used_as_access_token_is_401(client: httpx.AsyncClient) -> None:
    account = await register(client)
    error(await client.get(ME, headers=_bearer(account.refresh_token)), 401)


async def test_token_of_signed_out_session_is_401(client: httpx.AsyncClient) -> None:
    account = await register(client)
    data(await client.post("/api/v1/auth/logout", headers=account.headers))
    error(await client.get(ME, headers=account.headers), 401, "session_revoked")


async def test_token_of_deleted_user_is_401(client: httpx.AsyncClient) -> None:
    account = await register(client)
    body = {"password": account.password, "confirmation": "DELETE"}
    data(
        await client.request("DELETE", "/api/v1/users/account", json=body, headers=account.headers)
    )
    error(await client.get(ME, headers=account.headers), 401)


async def test_token_of_disabled_user_is_401(app_client: tuple[FastAPI, httpx.AsyncClient]) -> None:
    app, client = app_client
    account = await register(client)
    async with app.state.ctx.sessionmaker() as db:
        await db.execute(
            update(User).where(User.id == uuid.UUID(account.user_id)).values(is_active=False)
        )
        await db.commit()
    error(await client.get(ME, headers=account.headers), 401, "account_disabled")


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/auth/login",
        "/api/v1/auth/register",
        "/api/v1/auth/forgot-password",
        "/api/v1/auth/refresh",
    ],
)
async def test_stale_bearer_on_public_endpoints_is_ignored(
    client: httpx.AsyncClient, path: str
) -> None:
    account = await register(client)
    data(await client.post("/api/v1/auth/logout", headers=account.headers))
    stale = {"Authorization": f"Bearer {account.access_token}"}
    fresh_name = f"u_{uuid.uuid4().hex[:8]}"
    bodies: dict[str, dict[str, str]] = {
        "/api/v1/auth/login": {"email": account.email, "password": account.password},
        "/api/v1/auth/register": {
            "email": f"{fresh_name}@example.com",
            "username": fresh_name,
            "password": account.password,
        },
        "/api/v1/auth/forgot-password": {"email": account.email},
    }
    if path == "/api/v1/auth/refresh":
        login = data(await client.post("/api/v1/auth/login", json=bodies["/api/v1/auth/login"]))
        bodies[path] = {"refresh_token": login["refresh_token"]}
    response = await client.post(path, json=bodies[path], headers=stale)
    assert response.status_code in {200, 201}, response.text
