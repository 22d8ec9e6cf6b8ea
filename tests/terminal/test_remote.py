"""SSH sessions through the terminal socket, against a real sshd on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest

from devpocket.terminal import service
from tests.helpers import Account, data, error
from tests.sshd import SshServer
from tests.terminal.live import LiveServer, Terminal

PROFILES = "/api/v1/ssh/profiles"
SESSIONS = "/api/v1/terminal/sessions"


async def _saved(live: LiveServer, account: Account, body: dict[str, Any]) -> str:
    created = data(await live.http.post(PROFILES, json=body, headers=account.headers), 201)
    return str(created["id"])


async def _created(term: Terminal, **request: Any) -> str:
    await term.control(action="create_session", **request)
    frame = await term.until(
        lambda f: (
            f["type"] == "control"
            and f["data"].get("action") in {"session_created", "session_error"}
        ),
        timeout=20,
    )
    assert frame["data"]["action"] == "session_created", frame
    session_id: str = frame["data"]["session_id"]
    term.next_seq[session_id] = 0
    return session_id


@dataclass(frozen=True)
class Opened:
    account: Account
    profile_id: str
    term: Terminal
    session_id: str


@asynccontextmanager
async def _ssh_session(
    live: LiveServer, ssh_server: SshServer, **options: Any
) -> AsyncIterator[Opened]:
    """A new account, its saved profile of ``ssh_server``, a socket and a session on it."""
    account = await live.account()
    profile_id = await _saved(live, account, ssh_server.profile())
    async with live.terminal(account) as term:
        session_id = await _created(term, profile_id=profile_id, **options)
        yield Opened(account, profile_id, term, session_id)


async def test_an_ssh_session_runs_resizes_and_reports_the_exit_status(
    live: LiveServer, ssh_server: SshServer
) -> None:
    async with _ssh_session(live, ssh_server, cols=90, rows=20) as opened:
        account, profile_id, term, session_id = (
            opened.account,
            opened.profile_id,
            opened.term,
            opened.session_id,
        )
        await term.run(session_id, "echo remote-$((20+1)) size=$(stty size) term=$TERM")
        await term.output_contains(session_id, "remote-21 size=20 90 term=xterm-256color")
        await term.send("resize", {"cols": 120, "rows": 40}, session_id)
        await asyncio.sleep(0.2)
        await term.run(session_id, "echo now=$(stty size)")
        await term.output_contains(session_id, "now=40 120")
        await term.run(session_id, "exit 7")
        closed = await term.action("session_closed")
    assert closed["data"]["exit_code"] == 7
    profile = data(await live.http.get(f"{PROFILES}/{profile_id}", headers=account.headers))
    assert profile["host_key_fingerprint"] == ssh_server.host_key_fingerprint
    assert profile["status"] == "active"
    [record] = data(await live.http.get("/api/v1/terminal/sessions", headers=account.headers))[
        "sessions"
    ]
    assert (record["type"], record["ssh_profile_id"], record["exit_code"]) == ("ssh", profile_id, 7)


async def test_an_inline_profile_as_the_app_sends_it_opens_a_session(
    live: LiveServer, ssh_server: SshServer
) -> None:
    account = await live.account()
    async with live.terminal(account) as term:
        inline = {**ssh_server.profile(), "authType": "PASSWORD", "id": None}
        session_id = await _created(term, profile=inline)
        await term.run(session_id, "echo inline-$((2+2))")
        await term.output_contains(session_id, "inline-4")


async def test_a_password_typed_when_connecting_is_used_for_a_saved_profile_without_one(
    live: LiveServer, ssh_server: SshServer
) -> None:
    """A saved profile may hold no credentials: the app asks for them and sends them along."""
    account = await live.account()
    profile_id = await _saved(live, account, ssh_server.profile(password=None))
    async with live.terminal(account) as term:
        # The whole profile as the app holds it, then the saved profile's id alone.
        typed = {**ssh_server.profile(), "id": profile_id}
        first = await _created(term, profile=typed)
        second = await _created(term, profile={"id": profile_id, "password": ssh_server.password})
        for session_id in (first, second):
            await term.run(session_id, "echo typed-$((3+4))")
            await term.output_contains(session_id, "typed-7")


async def test_a_password_is_used_exactly_as_sent(live: LiveServer, ssh_server: SshServer) -> None:
    """Credentials are opaque (CONTRACT.md): a trailing space is part of the password."""
    account = await live.account()
    async with live.terminal(account) as term:
        await term.control(
            action="create_session", profile=ssh_server.profile(password=ssh_server.password + " ")
        )
        error = await term.action("session_error", timeout=20)
    assert error["data"]["code"] == "auth_failed"


async def test_an_unsaved_profile_needs_a_host_and_a_username(live: LiveServer) -> None:
    account = await live.account()
    async with live.terminal(account) as term:
        await term.control(action="create_session", profile={"password": "secret"})
        error = await term.action("session_error")
    assert error["data"]["code"] == "invalid_input"
    assert "host and username" in error["data"]["error"]


async def test_a_session_that_cannot_open_in_time_is_an_error_before_the_app_gives_up(
    live: LiveServer,
    ssh_server: SshServer,
    silent_port: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The app waits 30 s; a profile may allow two minutes per hop."""
    monkeypatch.setattr(service, "OPEN_SECONDS", 0.5)
    account = await live.account()
    silent = ssh_server.profile(port=silent_port, connect_timeout=40)
    async with live.terminal(account) as term:
        await term.control(action="create_session", profile=silent)
        error = await term.action("session_error", timeout=10)
    assert error["data"]["code"] == "timeout"
    assert "0.5 s" in error["data"]["error"]


async def test_a_wrong_password_is_a_session_error_with_its_code(
    live: LiveServer, ssh_server: SshServer
) -> None:
    account = await live.account()
    async with live.terminal(account) as term:
        await term.control(action="create_session", profile=ssh_server.profile(password="wrong"))
        error = await term.action("session_error", timeout=20)
    assert error["data"]["code"] == "auth_failed"


async def test_a_host_that_refuses_session_channels_is_a_session_error_and_the_socket_lives_on(
    live: LiveServer, sessionless_ssh_server: SshServer
) -> None:
    """The login succeeds, then the server refuses to open a shell (sshd's MaxSessions 0)."""
    account = await live.account()
    profile_id = await _saved(live, account, sessionless_ssh_server.profile())
    log_mark = sessionless_ssh_server.log_mark()
    async with live.terminal(account) as term:
        await term.control(action="create_session", profile_id=profile_id, request_id="r1")
        refused = await term.action("session_error", timeout=20)
        await term.control(action="list_sessions")
        listed = await term.action("sessions")
    assert (refused["data"]["code"], refused["data"]["request_id"]) == ("channel_refused", "r1")
    assert "refused to open a session" in refused["data"]["error"]
    assert listed["data"]["sessions"] == []
    # The connection was closed, not left open behind the error.
    await asyncio.to_thread(sessionless_ssh_server.wait_for_log, log_mark, "Disconnected from user")
    profile = data(await live.http.get(f"{PROFILES}/{profile_id}", headers=account.headers))
    assert profile["status"] == "failed"
    # Over REST the same is an error in the envelope, not a 500.
    response = await live.http.post(
        SESSIONS, json={"ssh_profile_id": profile_id}, headers=account.headers
    )
    error(response, 502, "channel_refused")


async def test_another_users_profile_is_not_found(live: LiveServer, ssh_server: SshServer) -> None:
    owner, other = await live.account(), await live.account()
    profile_id = await _saved(live, owner, ssh_server.profile())
    async with live.terminal(other) as term:
        await term.control(action="create_session", profile_id=profile_id)
        error = await term.action("session_error")
    assert error["data"]["code"] == "profile_not_found"


async def test_a_dropped_ssh_connection_ends_the_session_with_a_reason(
    live: LiveServer, ssh_server: SshServer
) -> None:
    async with _ssh_session(live, ssh_server) as opened:
        term, session_id = opened.term, opened.session_id
        await term.ready(session_id)
        # The server side of the connection dies without a goodbye.
        await term.run(session_id, "kill -9 $PPID")
        closed = await term.action("session_closed", timeout=20)
    assert closed["data"]["reason"] == "connection_lost"
    assert closed["data"]["exit_code"] is None


async def test_shell_integration_gives_an_ssh_session_command_blocks(
    live: LiveServer, ssh_server: SshServer
) -> None:
    async with _ssh_session(live, ssh_server, shell_integration=True) as opened:
        account, term, session_id = opened.account, opened.term, opened.session_id
        await term.run(session_id, "cd /tmp && false")
        finished = await term.action("block_finished", timeout=20)
        block = finished["data"]["block"]
        assert (block["command"], block["exit_code"]) == ("cd /tmp && false", 1)
        # The line that sourced the integration is not in the history.
        await term.run(session_id, 'echo "prev=$(history 2 | head -1 | cut -c8-)"')
        await term.output_contains(session_id, "prev=cd /tmp && false\r\n")
        # What the shell echoed while the integration was sourced never reached the client.
        assert ".cache/devpocket" not in term.output[session_id]
        assert "DevPocket=ready" not in term.output[session_id]
    path = f"/api/v1/terminal/sessions/{session_id}/history"
    for _ in range(50):  # blocks are stored in the background
        history = data(await live.http.get(path, headers=account.headers))
        if history:
            break
        await asyncio.sleep(0.1)
    assert history[0] == "cd /tmp && false"


async def test_without_shell_integration_an_ssh_session_has_no_blocks(
    live: LiveServer, ssh_server: SshServer
) -> None:
    async with _ssh_session(live, ssh_server) as opened:
        term, session_id = opened.term, opened.session_id
        await term.run(session_id, "false; echo done-$((1+1))")
        await term.output_contains(session_id, "done-2")
        await term.run(session_id, "exit")
        await term.action("session_closed")
    assert "block_finished" not in [frame["data"]["action"] for frame in term.controls]
