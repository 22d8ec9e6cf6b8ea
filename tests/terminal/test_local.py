"""Local shells in a PTY: size, signals, exit status, environment, the process group, limits."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import uuid
from typing import Any

import pytest

from tests.terminal.live import LiveServer, open_descriptors


async def test_stty_size_follows_the_creation_size_and_a_resize(live: LiveServer) -> None:
    account = await live.account()
    async with live.terminal(account) as term:
        session_id = await term.create_local(cols=100, rows=30)
        await term.run(session_id, "echo size=$(stty size)")
        await term.output_contains(session_id, "size=30 100")
        await term.send("resize", {"cols": 132, "rows": 43}, session_id)
        await term.run(session_id, "echo size=$(stty size)")
        await term.output_contains(session_id, "size=43 132")


async def test_ctrl_c_interrupts_the_foreground_program(live: LiveServer) -> None:
    account = await live.account()
    async with live.terminal(account) as term:
        session_id = await term.create_local()
        await term.ready(session_id)
        await term.run(session_id, "sleep 30; echo status=$?")
        await asyncio.sleep(0.3)
        await term.send("data", "\x03", session_id)
        await term.output_contains(session_id, "^C", timeout=5)
        await term.run(session_id, "echo after-$((1+1))")
        await term.output_contains(session_id, "after-2", timeout=5)


@pytest.mark.parametrize("code", [0, 3, 130])
async def test_the_exit_status_is_reported_when_the_shell_exits(
    live: LiveServer, code: int
) -> None:
    account = await live.account()
    async with live.terminal(account) as term:
        session_id = await term.create_local()
        await term.ready(session_id)
        await term.run(session_id, f"exit {code}")
        closed = await term.action("session_closed")
    assert closed["data"] == {
        "action": "session_closed",
        "session_id": session_id,
        "exit_code": code,
        "reason": "exited",
    }
    records = (await live.http.get("/api/v1/terminal/sessions", headers=account.headers)).json()
    [record] = records["data"]["sessions"]
    assert (record["status"], record["exit_code"], record["end_reason"]) == (
        "ended",
        code,
        "exited",
    )


async def test_a_shell_that_exits_gives_back_its_pty_and_pipe(live: LiveServer) -> None:
    """Three thousand ordinary exits would otherwise use up the machine's PTYs."""
    account = await live.account()
    before = open_descriptors()
    async with live.terminal(account) as term:
        for _ in range(3):
            session_id = await term.create_local()
            await term.ready(session_id)
            await term.run(session_id, "exit 0")
            await term.action("session_closed")
    assert open_descriptors() == before


async def test_closing_a_session_ends_its_whole_process_group(live: LiveServer) -> None:
    account = await live.account()
    async with live.terminal(account) as term:
        session_id = await term.create_local()
        pid = await term.printed_number(session_id, "bg-pid", "sleep 300 & echo bg-pid=$!")
        os.kill(pid, 0)  # running
        await term.control(action="close_session", session_id=session_id)
        closed = await term.action("session_closed")
    assert closed["data"]["reason"] == "closed_by_user"
    await _ended(pid, "the background job outlived its session")


async def test_closing_a_session_ends_a_job_that_ignores_the_hang_up(live: LiveServer) -> None:
    """nohup-like, in a process group of its own (job control): only its session unites them."""
    account = await live.account()
    async with live.terminal(account) as term:
        session_id = await term.create_local()
        line = "(trap '' HUP; exec sleep 300) & echo nohup-pid=$!"
        pid = await term.printed_number(session_id, "nohup-pid", line)
        os.kill(pid, 0)  # running
        await term.control(action="close_session", session_id=session_id)
        await term.action("session_closed")
    await _ended(pid, "a job that ignores SIGHUP outlived its session")


async def _ended(pid: int, failure: str) -> None:
    """Within 5 s, ``pid`` is no more (nothing announces a process's end to the test)."""
    for _ in range(50):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(failure)


async def test_the_shell_gets_a_terminal_and_not_the_servers_secrets(live: LiveServer) -> None:
    account = await live.account()
    async with live.terminal(account) as term:
        session_id = await term.create_local(env={"GREETING": "hi-there"})
        await term.run(session_id, "echo term=$TERM greet=$GREETING secret=${JWT_SECRET_KEY:-none}")
        output = await term.output_contains(session_id, "greet=hi-there")
        output = await term.output_contains(session_id, "secret=none\r\n")
    assert "term=xterm-256color greet=hi-there secret=none\r\n" in output


@pytest.mark.parametrize(
    ("options", "code"),
    [
        ({"shell": "/usr/bin/python3"}, "shell_unknown"),
        ({"cwd": "/no/such/dir"}, "cwd_not_found"),
        ({"env": {"LD_PRELOAD": "/tmp/x.so"}}, "invalid_env"),
        ({"cols": 0}, "invalid_input"),
    ],
)
async def test_bad_local_options_are_a_session_error(
    live: LiveServer, options: dict[str, Any], code: str
) -> None:
    account = await live.account()
    async with live.terminal(account) as term:
        await term.control(action="create_session", type="local", request_id="r1", **options)
        error = await term.action("session_error")
    assert error["data"]["code"] == code
    assert error["data"]["request_id"] == "r1"
    assert error["data"]["error"]


async def test_a_cwd_is_where_the_shell_starts(live: LiveServer) -> None:
    account = await live.account()
    async with live.terminal(account) as term:
        session_id = await term.create_local(cwd="/usr")
        await term.run(session_id, "echo at=$(pwd)")
        await term.output_contains(session_id, "at=/usr")


async def test_a_string_control_frame_runs_a_command_line(live: LiveServer) -> None:
    account = await live.account()
    async with live.terminal(account) as term:
        session_id = await term.create_local()
        await term.send("control", "echo via-$((3*3))-control", session_id)
        await term.output_contains(session_id, "via-9-control")


async def test_signals_the_server_ignores_are_not_ignored_in_the_shell(
    live: LiveServer,
) -> None:
    account = await live.account()
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)  # as under nohup
    try:
        async with live.terminal(account) as term:
            session_id = await term.create_local()
            await term.run(session_id, "sh -c 'grep SigIgn /proc/self/status' | tr a-z A-Z")
            output = await term.output_contains(session_id, "SIGIGN:")
            await term.until(
                lambda f: re.search(r"SIGIGN:\s+[0-9A-F]{16}", term.output[session_id]) is not None
            )
    finally:
        signal.signal(signal.SIGHUP, previous)
    match = re.search(r"SIGIGN:\s+([0-9A-F]{16})", term.output[session_id])
    assert match is not None, output
    ignored = int(match.group(1), 16)
    assert ignored & (1 << (signal.SIGHUP - 1)) == 0
    assert ignored & (1 << (signal.SIGINT - 1)) == 0


async def test_deleting_the_account_ends_its_sessions_at_once(live: LiveServer) -> None:
    account = await live.account()
    async with live.terminal(account) as term:
        session_id = await term.create_local()
        pid = await term.printed_number(session_id, "shell-pid", "echo shell-pid=$$")
        body = {"password": account.password, "confirmation": "DELETE"}
        deleted = await live.http.request(
            "DELETE", "/api/v1/users/account", json=body, headers=account.headers
        )
        assert deleted.status_code == 200
    # Not at the detach timeout (30 minutes here): now.
    registry, user_id = live.app.state.ctx.terminals, uuid.UUID(account.user_id)
    for _ in range(100):
        if registry.sessions_of(user_id) == []:
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("the session outlived the account")
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
