"""Mail leaves after commit, off the request path, retried when the server fails."""

from __future__ import annotations

import anyio
from structlog.testing import capture_logs

from devpocket.mail.dispatch import MailDispatcher
from devpocket.mail.sender import MailDeliveryFailed, OutgoingMail

MAIL = OutgoingMail(to="a@example.com", subject="Hello", text="Body")


class FlakyMailer:
    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.attempts = 0
        self.sent: list[OutgoingMail] = []

    async def send(self, mail: OutgoingMail) -> None:
        self.attempts += 1
        if self.attempts <= self.failures:
            raise MailDeliveryFailed("smtp down")
        self.sent.append(mail)


async def test_failed_delivery_is_retried() -> None:
    mailer = FlakyMailer(failures=2)
    async with anyio.create_task_group() as tasks:
        dispatcher = MailDispatcher(mailer, tasks, backoff=(0.01, 0.01))
        dispatcher.send_later(MAIL)
        assert await dispatcher.drain(grace=5.0)
    assert mailer.sent == [MAIL]
    assert mailer.attempts == 3


async def test_delivery_gives_up_after_the_last_attempt_and_says_so() -> None:
    mailer = FlakyMailer(failures=10)
    with capture_logs() as logs:
        async with anyio.create_task_group() as tasks:
            dispatcher = MailDispatcher(mailer, tasks, backoff=(0.01,))
            dispatcher.send_later(MAIL)
            assert await dispatcher.drain(grace=5.0)
    assert mailer.attempts == 2
    assert [e["event"] for e in logs] == ["mail.failed", "mail.failed"]


async def test_drain_reports_mail_still_in_flight() -> None:
    mailer = FlakyMailer(failures=10)
    async with anyio.create_task_group() as tasks:
        dispatcher = MailDispatcher(mailer, tasks, backoff=(30.0,))
        dispatcher.send_later(MAIL)
        assert not await dispatcher.drain(grace=0.05)
        tasks.cancel_scope.cancel()
