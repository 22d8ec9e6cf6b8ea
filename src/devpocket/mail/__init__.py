"""Outgoing mail."""

from devpocket.mail.sender import (
    LogMailer,
    MailDeliveryFailed,
    Mailer,
    OutgoingMail,
    SmtpMailer,
    SmtpTarget,
    create_mailer,
    parse_smtp_url,
)

__all__ = [
    "LogMailer",
    "MailDeliveryFailed",
    "Mailer",
    "OutgoingMail",
    "SmtpMailer",
    "SmtpTarget",
    "create_mailer",
    "parse_smtp_url",
]
