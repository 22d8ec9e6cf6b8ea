"""Real OpenSSH servers on loopback, as fixtures for every test package (a plugin of conftest).

The two long-lived servers are shared by the whole run (starting sshd costs a few hundred ms);
a test that changes a server's host key gets one of its own.
"""

from __future__ import annotations

import asyncio
import http.server
import threading
from collections.abc import AsyncIterator, Iterator

import pytest

from tests.conftest import REQUIRE_SERVICES
from tests.sshd import SshServer, running_sshd, sshd_unavailable_reason


def _require_sshd() -> None:
    """Skip (locally) or fail (CI) when sshd cannot run here, saying what is missing."""
    reason = sshd_unavailable_reason()
    if reason is None:
        return
    if REQUIRE_SERVICES:
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def ssh_server() -> Iterator[SshServer]:
    """The host the tests log in to; it forwards nothing."""
    _require_sshd()
    with running_sshd() as server:
        yield server


@pytest.fixture(scope="session")
def jump_server() -> Iterator[SshServer]:
    """A second sshd that allows TCP forwarding, used as a jump host."""
    _require_sshd()
    with running_sshd(allow_tcp_forwarding=True) as server:
        yield server


@pytest.fixture
def own_ssh_server() -> Iterator[SshServer]:
    """A server for this test alone, free to change its host key."""
    _require_sshd()
    with running_sshd() as server:
        yield server


@pytest.fixture(scope="session")
def sessionless_ssh_server() -> Iterator[SshServer]:
    """A server that lets the tests log in and refuses every session channel (MaxSessions 0)."""
    _require_sshd()
    with running_sshd(max_sessions=0) as server:
        yield server


@pytest.fixture
async def silent_port() -> AsyncIterator[int]:
    """A port that accepts TCP connections and never says a word."""

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # until the client gives up
        writer.close()

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    async with server:
        yield server.sockets[0].getsockname()[1]


class _QuietHandler(http.server.BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        """Keep the test output clean; the request is rejected anyway."""


@pytest.fixture(scope="session")
def http_port() -> Iterator[int]:
    """A port where a real HTTP server answers (with 400 to an SSH greeting)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
