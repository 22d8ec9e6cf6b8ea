"""Mail goes out after the transaction commits, off the request path, with retries."""

from __future__ import annotations

import anyio
import structlog
from anyio.abc import TaskGroup

from devpocket.mail.sender import MailDeliveryFailed, Mailer, OutgoingMail

log = structlog.get_logger(__name__)

BACKOFF_SECONDS = (1.0, 5.0)


class MailDispatcher:
    def __init__(
        self, mailer: Mailer, tasks: TaskGroup, *, backoff: tuple[float, ...] = BACKOFF_SECONDS
    ) -> None:
        self._mailer = mailer
        self._backoff = backoff
        self._tasks = tasks
        self._pending = 0
        self._idle = anyio.Event()
        self._idle.set()

    def send_later(self, mail: OutgoingMail) -> None:
        self._pending += 1
        self._idle = anyio.Event() if self._idle.is_set() else self._idle
        self._tasks.start_soon(self._deliver, mail)

    async def _deliver(self, mail: OutgoingMail) -> None:
        try:
            for attempt, delay in enumerate((*self._backoff, None), start=1):
                try:
                    await self._mailer.send(mail)
                    log.info("mail.sent", subject=mail.subject, attempt=attempt)
                    return
                except MailDeliveryFailed as error:
                    log.warning(
                        "mail.failed", subject=mail.subject, attempt=attempt, reason=str(error)
                    )
                    if delay is None:
                        return
                    await anyio.sleep(delay)
        finally:
            self._pending -= 1
            if self._pending == 0:
                self._idle.set()

    async def drain(self, grace: float) -> bool:
        """Wait up to ``grace`` seconds for queued mail at shutdown; False when some is left."""
        with anyio.move_on_after(grace):
            await self._idle.wait()
        return self._pending == 0
