"""A real SMTP server (aiosmtpd) on loopback that keeps every mail it receives.

Plain helper code, no fixtures: a conftest wraps :func:`running_smtp_server` in a fixture.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

HOST = "127.0.0.1"


@dataclass(frozen=True)
class Envelope:
    mail_from: str
    rcpt_tos: tuple[str, ...]


@dataclass
class SmtpServer:
    host: str
    port: int
    # Appended to by the server's thread; list.append is atomic, readers only look.
    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[Envelope] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"smtp://{self.host}:{self.port}"

    # A helper's own timeout keeps every test's wait bounded without wrapping each call.
    async def wait_for(self, count: int, timeout: float = 5.0) -> list[EmailMessage]:  # noqa: ASYNC109
        """Wait until at least ``count`` mails have arrived; return them all."""
        async with asyncio.timeout(timeout):
            # Polled: mails arrive on the server's own thread and loop, which cannot set an
            # asyncio.Event belonging to the test's loop.
            while len(self.messages) < count:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        return list(self.messages)


class _CollectingHandler:
    def __init__(self, server: SmtpServer, *, require_auth: bool) -> None:
        self._server = server
        self._require_auth = require_auth

    async def handle_MAIL(  # noqa: N802 - aiosmtpd's hook name
        self, server: Any, session: Any, envelope: Any, address: str, mail_options: list[str]
    ) -> str:
        # aiosmtpd's own auth_required warns (an error under this suite's filters) when TLS is
        # not required too, so the handler enforces authentication instead.
        if self._require_auth and not session.authenticated:
            return "530 5.7.0 Authentication required"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        message = BytesParser(policy=policy.default).parsebytes(envelope.content)
        assert isinstance(message, EmailMessage)
        self._server.envelopes.append(Envelope(envelope.mail_from, tuple(envelope.rcpt_tos)))
        self._server.messages.append(message)
        return "250 Message accepted for delivery"


class _Authenticator:
    def __init__(self, username: str, password: str) -> None:
        self._expected = LoginPassword(username.encode(), password.encode())

    def __call__(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        return AuthResult(success=auth_data == self._expected, handled=False)


def _free_port() -> int:
    # aiosmtpd's controller probes the port it was given, so port 0 cannot be passed through.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def running_smtp_server(*, credentials: tuple[str, str] | None = None) -> Iterator[SmtpServer]:
    """Run an SMTP server on loopback; with ``credentials`` it offers AUTH LOGIN/PLAIN over
    the plain connection and refuses mail from clients that did not authenticate."""
    server = SmtpServer(host=HOST, port=_free_port())
    options: dict[str, Any] = {}
    if credentials is not None:
        options = {"authenticator": _Authenticator(*credentials), "auth_require_tls": False}
    controller = Controller(
        _CollectingHandler(server, require_auth=credentials is not None),
        hostname=HOST,
        port=server.port,
        **options,
    )
    controller.start()
    try:
        yield server
    finally:
        controller.stop()
