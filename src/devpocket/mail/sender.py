"""Outgoing mail: one interface, an SMTP implementation and a log-only one for development.

``SMTP_URL`` forms:

- ``smtp://[user:pass@]host[:port]`` plain SMTP (port 25); add ``?starttls=true`` to upgrade
  with STARTTLS (port 587)
- ``smtp+starttls://[user:pass@]host[:port]`` STARTTLS (port 587)
- ``smtps://[user:pass@]host[:port]`` implicit TLS (port 465)

User name and password are percent-decoded, so ``@``, ``:`` and ``/`` in them must be escaped.
"""

from __future__ import annotations

import asyncio
import email.utils
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Protocol
from urllib.parse import parse_qsl, unquote, urlsplit

import aiosmtplib
import structlog

from devpocket.errors import InvalidInput
from devpocket.settings import ConfigurationError

log = structlog.stdlib.get_logger(__name__)

_DEFAULT_PORTS = {"plain": 25, "starttls": 587, "tls": 465}
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


class MailDeliveryFailed(Exception):
    """The mail server could not be reached or refused the mail. Never carries credentials."""


@dataclass(frozen=True)
class OutgoingMail:
    to: str
    subject: str
    text: str
    html: str | None = None


class Mailer(Protocol):
    async def send(self, mail: OutgoingMail) -> None: ...


@dataclass(frozen=True)
class SmtpTarget:
    """Where and how to deliver, parsed from ``SMTP_URL``."""

    host: str
    port: int
    use_tls: bool
    start_tls: bool
    username: str | None = None
    # Excluded from repr so that a logged or printed target cannot leak it.
    password: str | None = field(default=None, repr=False)


def parse_smtp_url(url: str) -> SmtpTarget:
    """Parse ``SMTP_URL``; errors never quote the URL because it may hold a password."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in {"smtp", "smtp+starttls", "smtps"}:
        raise ConfigurationError("SMTP_URL must start with smtp://, smtp+starttls:// or smtps://")
    if not parts.hostname:
        raise ConfigurationError("SMTP_URL must name a host")
    start_tls = scheme == "smtp+starttls" or _starttls_option(parts.query)
    if scheme == "smtps" and start_tls:
        raise ConfigurationError("SMTP_URL: smtps:// already uses TLS; drop ?starttls=true")
    mode = "tls" if scheme == "smtps" else "starttls" if start_tls else "plain"
    try:
        port = parts.port or _DEFAULT_PORTS[mode]
    except ValueError:
        raise ConfigurationError("SMTP_URL has an invalid port") from None
    return SmtpTarget(
        host=parts.hostname,
        port=port,
        use_tls=scheme == "smtps",
        start_tls=start_tls,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
    )


def _starttls_option(query: str) -> bool:
    start_tls = False
    for name, value in parse_qsl(query, keep_blank_values=True):
        # Unknown options are refused: a misspelt one would silently send mail unencrypted.
        if name != "starttls":
            raise ConfigurationError(f"SMTP_URL has an unknown option {name!r}")
        if value.lower() in _TRUE:
            start_tls = True
        elif value.lower() in _FALSE:
            start_tls = False
        else:
            raise ConfigurationError("SMTP_URL: starttls must be true or false")
    return start_tls


class SmtpMailer:
    """Delivers through one SMTP server, opening a connection per mail."""

    def __init__(self, smtp_url: str, mail_from: str, timeout: float) -> None:
        self._target = parse_smtp_url(smtp_url)
        self._mail_from = mail_from
        self._timeout = timeout
        # make_msgid() without a domain asks DNS for this host's name, which blocks the loop.
        address = email.utils.parseaddr(mail_from)[1]
        self._msgid_domain = address.rpartition("@")[2] or "localhost"

    def __repr__(self) -> str:
        target = self._target
        return f"SmtpMailer(host={target.host!r}, port={target.port}, user={target.username!r})"

    async def send(self, mail: OutgoingMail) -> None:
        message = self._compose(mail)
        target = self._target
        try:
            # aiosmtplib's timeout bounds each step; the outer one bounds the whole exchange.
            async with asyncio.timeout(self._timeout):
                await aiosmtplib.send(
                    message,
                    hostname=target.host,
                    port=target.port,
                    username=target.username,
                    password=target.password,
                    use_tls=target.use_tls,
                    start_tls=target.start_tls,
                    timeout=self._timeout,
                )
        except (aiosmtplib.SMTPException, OSError) as exc:
            # `from None`: the original traceback's frames hold the password as a local.
            raise MailDeliveryFailed(self._describe_failure(exc)) from None
        log.info("mail.sent", to=mail.to, subject=mail.subject, smtp_host=target.host)

    def _compose(self, mail: OutgoingMail) -> EmailMessage:
        message = EmailMessage()
        try:
            message["From"] = self._mail_from
            message["To"] = mail.to
            message["Subject"] = mail.subject
        except ValueError:
            # The default policy refuses line breaks in headers: an attempted header injection.
            raise InvalidInput("The mail could not be composed.", code="mail_invalid") from None
        message["Date"] = email.utils.format_datetime(datetime.now(UTC))
        message["Message-ID"] = email.utils.make_msgid(domain=self._msgid_domain)
        message.set_content(mail.text)
        if mail.html is not None:
            message.add_alternative(mail.html, subtype="html")
        return message

    def _describe_failure(self, exc: aiosmtplib.SMTPException | OSError) -> str:
        where = f"{self._target.host}:{self._target.port}"
        if isinstance(exc, aiosmtplib.SMTPResponseException):
            return f"SMTP server {where} refused the mail ({exc.code} {exc.message})"
        if isinstance(exc, TimeoutError):
            return f"SMTP server {where} did not answer within {self._timeout:g}s"
        return f"SMTP delivery through {where} failed: {type(exc).__name__}"


class LogMailer:
    """Writes each mail to the log instead of sending it, for development without SMTP.

    In development the whole text is logged so that a developer can follow its links. Those
    links carry reset tokens, so elsewhere (``include_text=False``) only the fact is logged, as
    a warning: configure ``SMTP_URL``.
    """

    def __init__(self, *, include_text: bool = True) -> None:
        self._include_text = include_text

    async def send(self, mail: OutgoingMail) -> None:
        if self._include_text:
            log.info("mail.logged", to=mail.to, subject=mail.subject, text=mail.text)
        else:
            log.warning("mail.not_sent", subject=mail.subject, reason="SMTP_URL is not set")


def create_mailer(
    smtp_url: str | None, mail_from: str, timeout: float, *, log_text: bool = True
) -> Mailer:
    """The SMTP mailer when a URL is configured, else the log-only one."""
    if smtp_url:
        return SmtpMailer(smtp_url, mail_from, timeout)
    return LogMailer(include_text=log_text)
