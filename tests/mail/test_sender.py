from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from email.message import EmailMessage
from urllib.parse import quote

import pytest
from structlog.testing import capture_logs

from devpocket.errors import InvalidInput
from devpocket.mail import (
    LogMailer,
    MailDeliveryFailed,
    OutgoingMail,
    SmtpMailer,
    SmtpTarget,
    create_mailer,
    parse_smtp_url,
)
from devpocket.settings import ConfigurationError
from tests.mail.conftest import SMTP_PASSWORD, SMTP_USER
from tests.smtp import SmtpServer

MAIL_FROM = "DevPocket <no-reply@devpocket.test>"
MAIL = OutgoingMail(
    to="ada@example.test",
    subject="Reset your password",
    text="Open https://devpocket.test/reset?token=abc to choose a new password.",
)


def _text_part(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("plain",))
    assert isinstance(body, EmailMessage)
    return str(body.get_content())


def _authenticated_url(server: SmtpServer, password: str) -> str:
    user = quote(SMTP_USER, safe="")
    return f"smtp://{user}:{quote(password, safe='')}@{server.host}:{server.port}"


@pytest.fixture
async def silent_server() -> AsyncIterator[int]:
    """Accepts connections and never says a word, like a firewalled or wedged mail server."""

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


async def test_smtp_mailer_delivers_subject_body_and_addresses(smtp_server: SmtpServer) -> None:
    await SmtpMailer(smtp_server.url, MAIL_FROM, timeout=5).send(MAIL)

    [message] = await smtp_server.wait_for(1)
    assert message["Subject"] == MAIL.subject
    assert message["From"] == MAIL_FROM
    assert message["To"] == MAIL.to
    assert message["Message-ID"].endswith("@devpocket.test>")
    assert message["Date"] is not None
    assert _text_part(message).strip() == MAIL.text
    assert message.get_body(preferencelist=("html",)) is None
    assert smtp_server.envelopes[0].mail_from == "no-reply@devpocket.test"
    assert smtp_server.envelopes[0].rcpt_tos == (MAIL.to,)


async def test_smtp_mailer_sends_html_as_an_alternative_to_text(smtp_server: SmtpServer) -> None:
    html = '<p>Open <a href="https://devpocket.test/reset?token=abc">this link</a>.</p>'
    mail = OutgoingMail(to=MAIL.to, subject=MAIL.subject, text=MAIL.text, html=html)

    await SmtpMailer(smtp_server.url, MAIL_FROM, timeout=5).send(mail)

    [message] = await smtp_server.wait_for(1)
    assert message.get_content_type() == "multipart/alternative"
    html_part = message.get_body(preferencelist=("html",))
    assert isinstance(html_part, EmailMessage)
    assert html_part.get_content().strip() == html
    assert _text_part(message).strip() == MAIL.text


async def test_smtp_mailer_authenticates_with_credentials_from_the_url(
    smtp_server_with_auth: SmtpServer,
) -> None:
    url = _authenticated_url(smtp_server_with_auth, SMTP_PASSWORD)

    await SmtpMailer(url, MAIL_FROM, timeout=5).send(MAIL)

    [message] = await smtp_server_with_auth.wait_for(1)
    assert message["Subject"] == MAIL.subject


async def test_smtp_mailer_with_a_wrong_password_fails_without_revealing_it(
    smtp_server_with_auth: SmtpServer,
) -> None:
    wrong_password = "not-the-password-xyzzy"
    url = _authenticated_url(smtp_server_with_auth, wrong_password)

    with pytest.raises(MailDeliveryFailed, match="535") as caught:
        await SmtpMailer(url, MAIL_FROM, timeout=5).send(MAIL)

    assert wrong_password not in str(caught.value)
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__
    assert smtp_server_with_auth.messages == []


async def test_smtp_mailer_without_credentials_is_refused_by_a_server_requiring_auth(
    smtp_server_with_auth: SmtpServer,
) -> None:
    with pytest.raises(MailDeliveryFailed, match="530"):
        await SmtpMailer(smtp_server_with_auth.url, MAIL_FROM, timeout=5).send(MAIL)


async def test_smtp_mailer_fails_when_nothing_listens(closed_port: int) -> None:
    mailer = SmtpMailer(f"smtp://127.0.0.1:{closed_port}", MAIL_FROM, timeout=5)

    with pytest.raises(MailDeliveryFailed, match=f"127.0.0.1:{closed_port}"):
        await mailer.send(MAIL)


async def test_smtp_mailer_gives_up_on_a_server_that_never_answers(silent_server: int) -> None:
    mailer = SmtpMailer(f"smtp://127.0.0.1:{silent_server}", MAIL_FROM, timeout=0.2)

    with pytest.raises(MailDeliveryFailed, match=r"did not answer within 0\.2s"):
        await mailer.send(MAIL)


async def test_smtp_mailer_requiring_starttls_never_falls_back_to_plain_text(
    smtp_server: SmtpServer,
) -> None:
    url = f"smtp+starttls://{smtp_server.host}:{smtp_server.port}"

    with pytest.raises(MailDeliveryFailed):
        await SmtpMailer(url, MAIL_FROM, timeout=5).send(MAIL)

    assert smtp_server.messages == []


@pytest.mark.parametrize(
    "mail",
    [
        OutgoingMail(to="ada@example.test", subject="Hi\r\nBcc: eve@example.test", text="x"),
        OutgoingMail(to="ada@example.test\nBcc: eve@example.test", subject="Hi", text="x"),
    ],
    ids=["subject", "recipient"],
)
async def test_smtp_mailer_refuses_header_injection(
    smtp_server: SmtpServer, mail: OutgoingMail
) -> None:
    with pytest.raises(InvalidInput):
        await SmtpMailer(smtp_server.url, MAIL_FROM, timeout=5).send(mail)

    assert smtp_server.messages == []


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("smtp://mail.test", SmtpTarget("mail.test", 25, use_tls=False, start_tls=False)),
        ("smtp://mail.test:2525", SmtpTarget("mail.test", 2525, use_tls=False, start_tls=False)),
        (
            "smtp://mail.test?starttls=true",
            SmtpTarget("mail.test", 587, use_tls=False, start_tls=True),
        ),
        (
            "smtp://mail.test:25?starttls=false",
            SmtpTarget("mail.test", 25, use_tls=False, start_tls=False),
        ),
        ("smtp+starttls://mail.test", SmtpTarget("mail.test", 587, use_tls=False, start_tls=True)),
        ("smtps://mail.test", SmtpTarget("mail.test", 465, use_tls=True, start_tls=False)),
        ("SMTPS://mail.test:4650", SmtpTarget("mail.test", 4650, use_tls=True, start_tls=False)),
        (
            "smtps://user%40example.test:p%40ss%3Aw%2Frd@mail.test",
            SmtpTarget("mail.test", 465, True, False, "user@example.test", "p@ss:w/rd"),
        ),
        (
            "smtp://apikey:@mail.test",
            SmtpTarget("mail.test", 25, False, False, username="apikey", password=""),
        ),
    ],
)
def test_parse_smtp_url(url: str, expected: SmtpTarget) -> None:
    assert parse_smtp_url(url) == expected


@pytest.mark.parametrize(
    "url",
    [
        "http://user:hunter2@mail.test",
        "smtp://user:hunter2@",
        "smtp://user:hunter2@mail.test?tls=true",
        "smtp://user:hunter2@mail.test?starttls=maybe",
        "smtps://user:hunter2@mail.test?starttls=true",
        "smtp://user:hunter2@mail.test:99999",
    ],
)
def test_parse_smtp_url_rejects_bad_urls_without_echoing_the_password(url: str) -> None:
    with pytest.raises(ConfigurationError, match="SMTP_URL") as caught:
        parse_smtp_url(url)

    assert "hunter2" not in str(caught.value)


def test_smtp_mailer_repr_hides_the_password() -> None:
    mailer = SmtpMailer("smtp://user:hunter2@mail.test", MAIL_FROM, timeout=5)

    assert "hunter2" not in repr(mailer)
    assert "hunter2" not in repr(parse_smtp_url("smtp://user:hunter2@mail.test"))


async def test_log_mailer_logs_the_whole_mail() -> None:
    with capture_logs() as logs:
        await LogMailer().send(MAIL)

    assert logs == [
        {
            "event": "mail.logged",
            "log_level": "info",
            "to": MAIL.to,
            "subject": MAIL.subject,
            "text": MAIL.text,
        }
    ]


@pytest.mark.parametrize(
    ("smtp_url", "expected"),
    [(None, LogMailer), ("", LogMailer), ("smtp://mail.test", SmtpMailer)],
)
def test_create_mailer_picks_smtp_only_when_configured(
    smtp_url: str | None, expected: type[object]
) -> None:
    assert isinstance(create_mailer(smtp_url, MAIL_FROM, timeout=5), expected)


async def test_log_mailer_outside_development_never_logs_the_text() -> None:
    with capture_logs() as logs:
        await LogMailer(include_text=False).send(
            OutgoingMail(to="a@example.com", subject="Reset", text="token=SECRET")
        )
    assert logs
    assert all("SECRET" not in str(entry) for entry in logs)
    assert logs[0]["log_level"] == "warning"
