from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.smtp import SmtpServer, running_smtp_server

SMTP_USER = "mailer@example.test"
# Characters that must be percent-encoded in a URL, to prove they are decoded.
SMTP_PASSWORD = "p@ss:w/rd%"


@pytest.fixture
def smtp_server_with_auth() -> Iterator[SmtpServer]:
    with running_smtp_server(credentials=(SMTP_USER, SMTP_PASSWORD)) as server:
        yield server
