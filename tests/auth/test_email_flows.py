"""Verification and password reset by real mail: caught on an SMTP server, links followed."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import update

from devpocket.db.models import ActionToken
from tests.conftest import SettingsFactory, serving
from tests.helpers import PASSWORD, data, error, register
from tests.smtp import SmtpServer

AUTH = "/api/v1/auth"
NEW_PASSWORD = "Brand-New-Passphrase-7"


@pytest.fixture
async def mail_client(
    settings_factory: SettingsFactory, smtp_server: SmtpServer
) -> AsyncIterator[httpx.AsyncClient]:
    async with serving(settings_factory(smtp_url=smtp_server.url)) as (_, client):
        yield client


def _token_from(message_text: str) -> str:
    match = re.search(r"https?://\S+", message_text)
    assert match, message_text
    return parse_qs(urlsplit(match.group(0)).query)["token"][0]


def _body(server: SmtpServer, index: int) -> str:
    message = server.messages[index]
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


async def test_registration_mails_a_link_that_verifies_the_email(
    mail_client: httpx.AsyncClient, smtp_server: SmtpServer
) -> None:
    account = await register(mail_client)
    await smtp_server.wait_for(1)
    assert smtp_server.messages[0]["To"] == account.email
    link = re.search(r"https?://\S+", _body(smtp_server, 0))
    assert link is not None
    path = urlsplit(link.group(0))
    user = data(await mail_client.get(f"{path.path}?{path.query}"))
    assert user["email_verified"] is True
    assert data(await mail_client.get(f"{AUTH}/me", headers=account.headers))["email_verified"]


async def test_verification_link_works_once(
    mail_client: httpx.AsyncClient, smtp_server: SmtpServer
) -> None:
    await register(mail_client)
    await smtp_server.wait_for(1)
    token = _token_from(_body(smtp_server, 0))
    data(await mail_client.get(f"{AUTH}/verify-email", params={"token": token}))
    again = await mail_client.get(f"{AUTH}/verify-email", params={"token": token})
    forged = await mail_client.get(f"{AUTH}/verify-email", params={"token": "forged"})
    # Refused exactly like a link that never existed, and without the user's data.
    refused, unknown = error(again, 400, "verification_token_invalid"), error(forged, 400)
    assert refused.keys() == unknown.keys()
    assert (refused["code"], refused["message"]) == (unknown["code"], unknown["message"])
    assert "data" not in refused


async def test_bad_verification_token_is_refused(mail_client: httpx.AsyncClient) -> None:
    error(
        await mail_client.get(f"{AUTH}/verify-email?token=forged"),
        400,
        "verification_token_invalid",
    )


async def test_resend_verification_for_signed_in_user(
    mail_client: httpx.AsyncClient, smtp_server: SmtpServer
) -> None:
    account = await register(mail_client)
    await smtp_server.wait_for(1)
    data(await mail_client.post(f"{AUTH}/resend-verification", headers=account.headers))
    await smtp_server.wait_for(2)
    old, new = _token_from(_body(smtp_server, 0)), _token_from(_body(smtp_server, 1))
    # A new link replaces the old one.
    error(await mail_client.get(f"{AUTH}/verify-email", params={"token": old}), 400)
    data(await mail_client.get(f"{AUTH}/verify-email", params={"token": new}))


async def test_resend_verification_by_address_answers_alike_for_unknown(
    mail_client: httpx.AsyncClient,
) -> None:
    known = await register(mail_client)
    a = data(await mail_client.post(f"{AUTH}/resend-verification", json={"email": known.email}))
    b = data(
        await mail_client.post(f"{AUTH}/resend-verification", json={"email": "ghost@example.com"})
    )
    assert a == b


async def test_password_reset_by_mail_signs_out_every_session(
    mail_client: httpx.AsyncClient, smtp_server: SmtpServer
) -> None:
    account = await register(mail_client)
    await smtp_server.wait_for(1)
    data(await mail_client.post(f"{AUTH}/forgot-password", json={"email": account.email}))
    await smtp_server.wait_for(2)
    assert "Reset" in smtp_server.messages[1]["Subject"]
    token = _token_from(_body(smtp_server, 1))
    data(
        await mail_client.post(
            f"{AUTH}/reset-password", json={"token": token, "password": NEW_PASSWORD}
        )
    )
    error(await mail_client.get(f"{AUTH}/me", headers=account.headers), 401)
    error(
        await mail_client.post(f"{AUTH}/refresh", json={"refresh_token": account.refresh_token}),
        401,
    )
    error(
        await mail_client.post(
            f"{AUTH}/login", json={"email": account.email, "password": PASSWORD}
        ),
        401,
    )
    data(
        await mail_client.post(
            f"{AUTH}/login", json={"email": account.email, "password": NEW_PASSWORD}
        )
    )
    # Single use.
    again = await mail_client.post(
        f"{AUTH}/reset-password", json={"token": token, "password": "Yet-Another-Pass-9"}
    )
    error(again, 400, "reset_token_invalid")


async def test_forgot_password_answers_alike_for_unknown_address(
    mail_client: httpx.AsyncClient, smtp_server: SmtpServer
) -> None:
    known = await register(mail_client)
    await smtp_server.wait_for(1)
    a = await mail_client.post(f"{AUTH}/forgot-password", json={"email": known.email})
    b = await mail_client.post(f"{AUTH}/forgot-password", json={"email": "nobody@example.com"})
    assert a.status_code == b.status_code == 200
    assert a.json()["message"] == b.json()["message"]
    await smtp_server.wait_for(2)
    assert [m["To"] for m in smtp_server.messages][1:] == [known.email]


async def test_expired_reset_token_is_refused(
    settings_factory: SettingsFactory, smtp_server: SmtpServer
) -> None:
    async with serving(settings_factory(smtp_url=smtp_server.url)) as (app, client):
        account = await register(client)
        data(await client.post(f"{AUTH}/forgot-password", json={"email": account.email}))
        await smtp_server.wait_for(2)
        token = _token_from(_body(smtp_server, 1))
        async with app.state.ctx.sessionmaker() as db:
            past = datetime.now(UTC) - timedelta(minutes=1)
            await db.execute(update(ActionToken).values(expires_at=past))
            await db.commit()
        response = await client.post(
            f"{AUTH}/reset-password", json={"token": token, "password": NEW_PASSWORD}
        )
        error(response, 400, "reset_token_invalid")


async def test_reset_refuses_a_common_password(
    mail_client: httpx.AsyncClient, smtp_server: SmtpServer
) -> None:
    account = await register(mail_client)
    data(await mail_client.post(f"{AUTH}/forgot-password", json={"email": account.email}))
    await smtp_server.wait_for(2)
    token = _token_from(_body(smtp_server, 1))
    response = await mail_client.post(
        f"{AUTH}/reset-password", json={"token": token, "password": "password1"}
    )
    error(response, 400, "password_too_common")
    # The token survives a refused attempt.
    data(
        await mail_client.post(
            f"{AUTH}/reset-password", json={"token": token, "password": NEW_PASSWORD}
        )
    )


async def test_forgot_password_is_limited_per_address(
    mail_client: httpx.AsyncClient,
) -> None:
    statuses = [
        (
            await mail_client.post(f"{AUTH}/forgot-password", json={"email": "flood@example.com"})
        ).status_code
        for _ in range(6)
    ]
    assert statuses[:5] == [200] * 5
    assert statuses[5] == 429
