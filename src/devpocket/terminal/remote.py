"""An SSH session's shell: a PTY channel on a connection that asyncssh runs for us."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack

import asyncssh

from devpocket.ssh.connect import ConnectionReport, Target, open_reported
from devpocket.terminal.process import OnEnd, OnOutput

KEEPALIVE_SECONDS = 15
KEEPALIVE_COUNT_MAX = 3  # unanswered keep-alives before the connection counts as dropped
_SIGNALS = {"HUP": 1, "INT": 2, "QUIT": 3, "ILL": 4, "ABRT": 6, "FPE": 8, "KILL": 9, "SEGV": 11,
            "PIPE": 13, "ALRM": 14, "TERM": 15, "USR1": 10, "USR2": 12}  # fmt: skip


class _Channel(asyncssh.SSHClientSession[bytes]):
    def __init__(self, owner: RemoteProcess) -> None:
        self._owner = owner

    def data_received(self, data: bytes, datatype: asyncssh.DataType) -> None:
        self._owner.received(data)

    def exit_status_received(self, status: int) -> None:
        self._owner.exit_status = status

    def exit_signal_received(self, signal: str, core_dumped: bool, msg: str, lang: str) -> None:
        self._owner.exit_status = 128 + _SIGNALS.get(signal, 0)

    def connection_lost(self, exc: Exception | None) -> None:
        self._owner.lost(exc)


class RemoteProcess:
    """The remote login shell; ``end_reason`` says why it ended when the server did not say."""

    def __init__(self, stack: AsyncExitStack, report: ConnectionReport) -> None:
        self.report = report
        self.exit_status: int | None = None
        self.end_reason: str | None = None
        self._stack = stack
        self._channel: asyncssh.SSHClientChannel[bytes] | None = None
        self._on_output: OnOutput | None = None
        self._on_end: OnEnd | None = None
        self._early: list[bytes] = []
        self._ended = asyncio.Event()

    @classmethod
    async def open(
        cls, target: Target, *, cols: int, rows: int, keepalive: int | None = None
    ) -> RemoteProcess:
        """Connect (raising ``SSHConnectError``) and start the login shell in a PTY."""
        async with AsyncExitStack() as opening:
            conn, report = await opening.enter_async_context(open_reported(target))
            conn.set_keepalive(keepalive or KEEPALIVE_SECONDS, KEEPALIVE_COUNT_MAX)
            process = cls(AsyncExitStack(), report)
            async with asyncio.timeout(target.connect_timeout):
                channel, _ = await conn.create_session(
                    lambda: _Channel(process),
                    term_type="xterm-256color",
                    term_size=(cols, rows),
                    encoding=None,
                )
            # Opened: the connection now closes with the process, not with this block.
            process._stack = opening.pop_all()
        process._channel = channel
        return process

    def received(self, data: bytes) -> None:
        if self._on_output is None:
            self._early.append(data)  # the prompt may come before the session starts reading
        else:
            self._on_output(data)

    def lost(self, exc: Exception | None) -> None:
        if exc is not None:
            self.end_reason = "connection_lost"
        self._ended.set()
        if self._on_end is not None:
            self._on_end()

    def start(self, on_output: OnOutput, on_end: OnEnd) -> None:
        self._on_output, self._on_end = on_output, on_end
        for data in self._early:
            on_output(data)
        self._early.clear()
        if self._ended.is_set():
            on_end()

    def pause_reading(self) -> None:
        if self._channel is not None:
            self._channel.pause_reading()

    def resume_reading(self) -> None:
        if self._channel is not None:
            self._channel.resume_reading()

    def write(self, data: bytes) -> None:
        if self._channel is not None and not self._ended.is_set():
            self._channel.write(data)

    def resize(self, cols: int, rows: int) -> None:
        if self._channel is not None and not self._ended.is_set():
            self._channel.change_terminal_size(cols, rows)

    async def wait(self) -> int | None:
        await self._ended.wait()
        await self._stack.aclose()
        return self.exit_status

    async def terminate(self) -> None:
        if self._channel is not None:
            self._channel.close()
        try:
            async with asyncio.timeout(5):
                await self._ended.wait()
        except TimeoutError:
            self.end_reason = self.end_reason or "closed"
        await self._stack.aclose()
