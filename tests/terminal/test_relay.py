"""The PTY relay: output through its pipes, flow control, letting go, and its death.

Real PTYs and the real relay process; the slave side plays the program.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import signal
import socket
import sys
import time
import tty
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from devpocket.terminal import pty_relay
from devpocket.terminal.relay import PtyRelay
from tests.terminal.live import LiveServer

# Larger than the relay's per-turn budget, its pipe and the PTY's own buffers together.
STREAM_BYTES = 3 * 1024 * 1024
WAIT = 10.0


@pytest.fixture
async def relay() -> AsyncIterator[PtyRelay]:
    relay = PtyRelay()
    yield relay
    await relay.aclose()


@contextlib.contextmanager
def pty_pair() -> Iterator[tuple[int, int]]:
    """A PTY in raw mode (bytes pass unchanged), as (master, slave)."""
    master, slave = os.openpty()
    tty.setraw(slave)
    os.set_blocking(master, False)
    try:
        yield master, slave
    finally:
        for fd in (master, slave):
            with contextlib.suppress(OSError):
                os.close(fd)


def read_all(fd: int) -> bytes:
    """Everything from a pipe until end-of-file (blocking, on a thread)."""
    os.set_blocking(fd, True)
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    return b"".join(chunks)


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def fill(fd: int) -> int:
    """Write into a non-blocking ``fd`` until it takes nothing for half a second (or 8 MiB)."""
    os.set_blocking(fd, False)
    taken, idle = 0, 0
    block = b"x" * 4096
    while idle < 10 and taken < 8 * 1024 * 1024:  # 10 polls of 50 ms
        try:
            taken += os.write(fd, block)
            idle = 0
        except BlockingIOError:
            idle += 1
            select.select([], [fd], [], 0.05)
    return taken


async def test_output_arrives_through_the_pipe_in_order_and_ends_with_the_pty(
    relay: PtyRelay,
) -> None:
    data = os.urandom(STREAM_BYTES)
    with pty_pair() as (master, slave):
        output = await relay.attach(master, lambda: None)
        reader = asyncio.create_task(asyncio.to_thread(read_all, output))
        await asyncio.to_thread(write_all, slave, data)
        os.close(slave)  # the program is gone: the PTY ends, so does the pipe
        async with asyncio.timeout(WAIT):
            received = await reader
        os.close(output)
    assert received == data


async def test_a_pipe_nobody_reads_stops_the_relay_reading_the_pty(relay: PtyRelay) -> None:
    with pty_pair() as (master, slave):
        output = await relay.attach(master, lambda: None)
        taken = await asyncio.to_thread(fill, slave)
        # The program blocked: the pipe (1 MiB), what the relay holds (256 KiB) and the
        # terminal's own buffers are full, and nothing more is taken.
        assert 1024 * 1024 < taken < 2 * 1024 * 1024
        reader = asyncio.create_task(asyncio.to_thread(read_all, output))
        os.set_blocking(slave, True)
        await asyncio.to_thread(write_all, slave, b"end")
        os.close(slave)
        async with asyncio.timeout(WAIT):
            received = await reader
        os.close(output)
    assert received == b"x" * taken + b"end"


async def test_closing_the_pipe_makes_the_relay_let_go_of_the_pty(relay: PtyRelay) -> None:
    with pty_pair() as (master, slave):
        output = await relay.attach(master, lambda: None)
        os.close(master)
        relay.release(output)
        os.close(output)
        # With the last copy of the master closed, the program's side hangs up.
        poller = select.poll()
        poller.register(slave, select.POLLHUP)
        events = await asyncio.to_thread(poller.poll, WAIT * 1000)
    assert events, "the relay still holds the terminal"
    assert events[0][1] & select.POLLHUP


async def test_sessions_are_told_when_the_relay_dies_and_the_next_one_starts_a_new_relay(
    relay: PtyRelay,
) -> None:
    lost = [asyncio.Event(), asyncio.Event()]
    with pty_pair() as (first, _), pty_pair() as (second, _):
        await relay.attach(first, lost[0].set)
        await relay.attach(second, lost[1].set)
        pid = relay.pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        async with asyncio.timeout(WAIT):
            await asyncio.gather(*(event.wait() for event in lost))
    data = b"after the relay came back"
    with pty_pair() as (master, slave):
        output = await relay.attach(master, lambda: None)
        assert relay.pid not in (None, pid)
        write_all(slave, data)
        os.close(slave)
        async with asyncio.timeout(WAIT):
            assert await asyncio.to_thread(read_all, output) == data
        os.close(output)


def wait_for_death(pid: int) -> None:
    """Until ``pid`` has exited, without letting the event loop notice (it blocks)."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return
        if state == "Z":
            return
        time.sleep(0.01)
    raise AssertionError(f"process {pid} is still running")


async def test_a_relay_found_dead_when_attaching_is_replaced(relay: PtyRelay) -> None:
    lost = asyncio.Event()
    with pty_pair() as (first, _):
        await relay.attach(first, lost.set)
        pid = relay.pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        wait_for_death(pid)  # dead before the loop hears of it
        with pty_pair() as (master, slave):
            output = await relay.attach(master, lambda: None)
            assert lost.is_set()
            assert relay.pid not in (None, pid)
            write_all(slave, b"through the new relay")
            os.close(slave)
            async with asyncio.timeout(WAIT):
                assert await asyncio.to_thread(read_all, output) == b"through the new relay"
            os.close(output)


async def test_a_relay_that_takes_no_messages_is_killed_and_replaced(relay: PtyRelay) -> None:
    """Stopped, it leaves its socket's queue to fill; then it must not keep holding PTYs."""
    lost: list[asyncio.Event] = []
    outputs: list[int] = []
    with pty_pair() as (master, slave):
        outputs.append(await relay.attach(master, (event := asyncio.Event()).set))
        lost.append(event)
        stopped = relay.pid
        assert stopped is not None
        os.kill(stopped, signal.SIGSTOP)
        try:
            while relay.pid == stopped and len(outputs) < 10_000:
                outputs.append(await relay.attach(master, (event := asyncio.Event()).set))
                lost.append(event)
            assert relay.pid not in (None, stopped)
            wait_for_death(stopped)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.kill(stopped, signal.SIGKILL)
        # Every session the stopped relay held was told; the last one went to the new relay.
        assert all(event.is_set() for event in lost[:-1])
        assert not lost[-1].is_set()
        write_all(slave, b"through the replacement")
        os.close(slave)
        async with asyncio.timeout(WAIT):
            assert await asyncio.to_thread(read_all, outputs[-1]) == b"through the replacement"
    for output in outputs:
        os.close(output)


async def test_closing_the_relay_ends_its_process(relay: PtyRelay) -> None:
    with pty_pair() as (master, _):
        output = await relay.attach(master, lambda: None)
        pid = relay.pid
        assert pid is not None
        await relay.aclose()
        os.close(output)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


async def test_a_session_whose_relay_dies_ends_with_a_reason(live: LiveServer) -> None:
    account = await live.account()
    async with live.terminal(account) as term:
        session_id = await term.create_local()
        await term.ready(session_id)
        await term.run(session_id, "echo shell-pid=$$")
        await term.output_contains(session_id, "shell-pid=")
        pid = live.app.state.ctx.terminals.relay.pid
        os.kill(pid, signal.SIGKILL)
        closed = await term.action("session_closed")
        assert closed["data"]["reason"] == "relay_failed"
        # The next session gets a new relay.
        second = await term.create_local()
        await term.run(second, "echo again-$((2+2))")
        await term.output_contains(second, "again-4")


async def test_the_relay_ignores_a_malformed_message_and_goes_on() -> None:
    """The relay program on its own, spoken to as the server does."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-I", str(pty_relay.__file__), str(theirs.fileno()),
        pass_fds=(theirs.fileno(),),
    )  # fmt: skip
    theirs.close()
    try:
        with pty_pair() as (master, slave):
            stray_read, stray_write = os.pipe()
            socket.send_fds(ours, [b"add"], [stray_write])  # one descriptor, not two
            socket.send_fds(ours, [b"what"], [master, stray_write])  # an unknown message
            os.close(stray_write)
            # The relay closed what it was given: the stray pipe has no writer left.
            async with asyncio.timeout(WAIT):
                assert await asyncio.to_thread(read_all, stray_read) == b""
            output, pipe = os.pipe()
            socket.send_fds(ours, [b"add"], [master, pipe])
            os.close(pipe)
            write_all(slave, b"still relaying")
            os.close(slave)
            async with asyncio.timeout(WAIT):
                assert await asyncio.to_thread(read_all, output) == b"still relaying"
            os.close(stray_read)
            os.close(output)
    finally:
        ours.close()  # the relay exits when its socket closes
        async with asyncio.timeout(WAIT):
            assert await process.wait() == 0
