"""``POST /auth/google``: verified ID tokens sign in, create or link accounts."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import update

from devpocket.db.models import User
from tests.conftest import SettingsFactory, serving
from tests.helpers import data, error, register
from tests.jwks import CLIENT_ID, JwksServer, google_claims

GOOGLE = "/api/v1/auth/google"


@pytest.fixture
async def google_client(
    settings_factory: SettingsFactory, jwks_server: JwksServer
) -> AsyncIterator[httpx.AsyncClient]:
    settings = settings_factory(google_client_ids=[CLIENT_ID], google_jwks_url=jwks_server.url)
    async with serving(settings) as (_, client):
        yield client


def _subject() -> str:
    return str(uuid.uuid4().int)[:21]


async def test_new_google_user_gets_a_verified_account(
    google_client: httpx.AsyncClient, jwks_server: JwksServer
) -> None:
    email = f"ada.{uuid.uuid4().hex[:6]}@example.test"
    token = jwks_server.sign(google_claims(sub=_subject(), email=email))
    body = data(await google_client.post(GOOGLE, json={"idToken": token, "accessToken": "x"}))
    assert body["user"]["email"] == email
    assert body["user"]["email_verified"] is True
    assert body["user"]["first_name"] == "Ada"
    assert body["user"]["username"].startswith("ada")
    again = data(await google_client.post(GOOGLE, json={"idToken": token}))
    assert again["user"]["id"] == body["user"]["id"]
    me = await google_client.get(
        "/api/v1/auth/me", headers={"Authorization": f"Bearer {again['access_token']}"}
    )
    assert data(me)["id"] == body["user"]["id"]


async def test_existing_account_is_linked_by_verified_email(
    google_client: httpx.AsyncClient, jwks_server: JwksServer
) -> None:
    account = await register(google_client)
    token = jwks_server.sign(google_claims(sub=_subject(), email=account.email))
    body = data(await google_client.post(GOOGLE, json={"idToken": token}))
    assert body["user"]["id"] == account.user_id
    assert body["user"]["email_verified"] is True


async def test_linking_an_unverified_account_signs_out_its_registrant(
    google_client: httpx.AsyncClient, jwks_server: JwksServer
) -> None:
    """Whoever registered the address never proved it; Google's owner takes the account alone."""
    registrant = await register(google_client)
    token = jwks_server.sign(google_claims(sub=_subject(), email=registrant.email))
    owner = data(await google_client.post(GOOGLE, json={"idToken": token}))
    assert owner["user"]["id"] == registrant.user_id
    error(await google_client.get("/api/v1/auth/me", headers=registrant.headers), 401)
    error(
        await google_client.post(
            "/api/v1/auth/refresh", json={"refresh_token": registrant.refresh_token}
        ),
        401,
    )
    login = {"email": registrant.email, "password": registrant.password}
    error(await google_client.post("/api/v1/auth/login", json=login), 401, "invalid_credentials")
    again = data(await google_client.post(GOOGLE, json={"idToken": token}))
    me = await google_client.get(
        "/api/v1/auth/me", headers={"Authorization": f"Bearer {again['access_token']}"}
    )
    assert data(me)["email_verified"] is True


async def test_linking_a_verified_account_keeps_its_password_and_sessions(
    settings_factory: SettingsFactory, jwks_server: JwksServer
) -> None:
    settings = settings_factory(google_client_ids=[CLIENT_ID], google_jwks_url=jwks_server.url)
    async with serving(settings) as (app, client):
        account = await register(client)
        async with app.state.ctx.sessionmaker() as db:
            await db.execute(
                update(User).where(User.email == account.email).values(email_verified=True)
            )
            await db.commit()
        token = jwks_server.sign(google_claims(sub=_subject(), email=account.email))
        assert data(await client.post(GOOGLE, json={"idToken": token}))["user"]["id"] == (
            account.user_id
        )
        data(await client.get("/api/v1/auth/me", headers=account.headers))
        data(
            await client.post("/api/v1/auth/refresh", json={"refresh_token": account.refresh_token})
        )
        login = {"email": account.email, "password": account.password}
        data(await client.post("/api/v1/auth/login", json=login))


async def test_unverified_google_email_is_not_linked(
    google_client: httpx.AsyncClient, jwks_server: JwksServer
) -> None:
    account = await register(google_client)
    token = jwks_server.sign(
        google_claims(sub=_subject(), email=account.email, email_verified=False)
    )
    error(await google_client.post(GOOGLE, json={"idToken": token}), 400, "google_email_unverified")


@pytest.mark.parametrize("claims", [{"aud": "someone-else"}, {"iss": "https://evil.example"}])
async def test_invalid_google_token_is_400_not_401(
    google_client: httpx.AsyncClient, jwks_server: JwksServer, claims: dict[str, str]
) -> None:
    """A 401 would make the app sign out: it means only this server's own credentials."""
    token = jwks_server.sign(google_claims(sub=_subject(), **claims))
    error(await google_client.post(GOOGLE, json={"idToken": token}), 400, "google_token_invalid")


async def test_expired_or_malformed_google_token_is_400(
    google_client: httpx.AsyncClient, jwks_server: JwksServer
) -> None:
    expired = jwks_server.sign(google_claims(sub=_subject(), iat=1_000_000, exp=1_000_600))
    for token in (expired, "not-a-token"):
        response = await google_client.post(GOOGLE, json={"idToken": token})
        error(response, 400, "google_token_invalid")


async def test_google_sign_in_disabled_without_client_ids_is_403(
    client: httpx.AsyncClient,
) -> None:
    """A 4xx, not a 5xx the app would retry three times."""
    error(await client.post(GOOGLE, json={"idToken": "x.y.z"}), 403, "google_sign_in_disabled")


async def test_google_sign_in_needs_an_id_token(google_client: httpx.AsyncClient) -> None:
    error(await google_client.post(GOOGLE, json={"accessToken": "x"}), 422, "validation_error")
