"""An SSH session's shell: a PTY channel on a connection that asyncssh runs for us.

With shell integration asked for, the server writes ``shell_integration.remote_script()`` on the
remote host (an exec channel of the same connection), waits until the login shell has gone
quiet (its prompt is up), types a line that sources the script, and hides what the shell prints
until the script's ready mark: the user sees their prompt, then a fresh one that carries marks.
A shell that never gets there (not bash or zsh, a slow one, a restricted account) is waited for
``BOOTSTRAP_SECONDS`` at most; then everything held back is shown as it came, nothing lost.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from contextlib import AsyncExitStack

import asyncssh
import structlog

from devpocket.ssh.connect import ConnectionReport, SSHConnectError, Target, open_reported
from devpocket.terminal import shell_integration
from devpocket.terminal.process import OnEnd, OnOutput

log = structlog.get_logger(__name__)

KEEPALIVE_SECONDS = 15
KEEPALIVE_COUNT_MAX = 3  # unanswered keep-alives before the connection counts as dropped
_SIGNALS = {"HUP": 1, "INT": 2, "QUIT": 3, "ILL": 4, "ABRT": 6, "FPE": 8, "KILL": 9, "SEGV": 11,
            "PIPE": 13, "ALRM": 14, "TERM": 15, "USR1": 10, "USR2": 12}  # fmt: skip


# The login shell counts as ready for input after this long without output.
QUIET_SECONDS = 0.3
# At most this long from the session's start to the ready mark, then the bootstrap gives up.
BOOTSTRAP_SECONDS = 5.0
_HELD_MAX = 256 * 1024
_INSTALL_SECONDS = 5.0


class Bootstrap:
    """Types the line that sources the integration once the shell is quiet, and hides the
    output from then until the ready mark. Input typed meanwhile waits, then goes in order."""

    def __init__(self, write: Callable[[bytes], None], emit: Callable[[bytes], None]) -> None:
        self._write = write
        self._emit = emit
        self._loop = asyncio.get_running_loop()
        self._deadline = self._loop.time() + BOOTSTRAP_SECONDS
        self._typed = False
        self._held = bytearray()
        self._input: list[bytes] = []
        self.done = False
        self._timer = self._loop.call_later(QUIET_SECONDS, self._quiet)

    def output(self, data: bytes) -> None:
        if not self._typed:
            self._emit(data)
            self._timer.cancel()
            delay = min(QUIET_SECONDS, max(self._deadline - self._loop.time(), 0))
            self._timer = self._loop.call_later(delay, self._quiet)
            return
        self._held += data
        end = self._held.find(shell_integration.REMOTE_READY)
        if end >= 0:
            rest = bytes(self._held[end + len(shell_integration.REMOTE_READY) :])
            self._held.clear()
            self._finish(rest)
        elif len(self._held) > _HELD_MAX:
            self._give_up()

    def input(self, data: bytes) -> None:
        self._input.append(data)

    def _quiet(self) -> None:
        if self._typed or self.done:
            return
        self._typed = True
        self._write(shell_integration.REMOTE_SOURCE_LINE)
        delay = max(self._deadline - self._loop.time(), QUIET_SECONDS)
        self._timer = self._loop.call_later(delay, self._give_up)

    def _give_up(self) -> None:
        if not self.done:
            log.info("terminal.ssh_integration_not_ready")
            held = bytes(self._held)
            self._held.clear()
            self._finish(held)

    def _finish(self, rest: bytes) -> None:
        self._timer.cancel()
        self.done = True
        if rest:
            self._emit(rest)
        for data in self._input:
            self._write(data)
        self._input.clear()

    def cancel(self) -> None:
        self._timer.cancel()
        self.done = True


async def install_integration(conn: asyncssh.SSHClientConnection) -> bool:
    """Write the integration script on the remote host; False when that cannot be done."""
    try:
        async with asyncio.timeout(_INSTALL_SECONDS):
            done = await conn.run(
                shell_integration.REMOTE_INSTALL,
                input=shell_integration.remote_script(),
                check=False,
            )
    except (asyncssh.Error, OSError, TimeoutError) as error:
        log.info("terminal.ssh_integration_not_installed", error=str(error))
        return False
    if done.exit_status != 0:
        log.info("terminal.ssh_integration_not_installed", exit_status=done.exit_status)
        return False
    return True


async def _open_shell(
    conn: asyncssh.SSHClientConnection, target: Target, process: RemoteProcess, cols: int, rows: int
) -> asyncssh.SSHClientChannel[bytes]:
    """The PTY session channel of the login shell; raises ``SSHConnectError`` when the server
    refuses it (sshd's ``MaxSessions 0``, say) or the connection fails meanwhile."""
    try:
        async with asyncio.timeout(target.connect_timeout):
            channel, _ = await conn.create_session(
                lambda: _Channel(process),
                term_type="xterm-256color",
                term_size=(cols, rows),
                encoding=None,
            )
    # OSError covers TimeoutError. Not an AppError, it would end the caller's whole socket.
    except (asyncssh.Error, OSError) as exc:
        code, message = _session_failure(target, exc)
        failed = dataclasses.replace(process.report, success=False, code=code, message=message)
        raise SSHConnectError(failed) from exc
    return channel


def _session_failure(target: Target, exc: Exception) -> tuple[str, str]:
    """A code and a message safe to show, for a session channel that did not open after login."""
    where = f"{target.host}:{target.port}"
    if isinstance(exc, asyncssh.ChannelOpenError):
        # sshd says only "open failed": MaxSessions 0, a ForceCommand or a restricted account.
        return (
            "channel_refused",
            f"{where} accepted the login but refused to open a session ({exc.reason}).",
        )
    if isinstance(exc, TimeoutError):
        return "timeout", f"{where} did not open a session in {target.connect_timeout:g} s."
    reason = exc.reason if isinstance(exc, asyncssh.DisconnectError) else type(exc).__name__
    return "protocol_error", f"The session on {where} could not be opened: {reason}"


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
        self._bootstrap: Bootstrap | None = None

    @classmethod
    async def open(
        cls,
        target: Target,
        *,
        cols: int,
        rows: int,
        keepalive: int | None = None,
        integration: bool = False,
    ) -> RemoteProcess:
        """Connect (raising ``SSHConnectError``) and start the login shell in a PTY; with
        ``integration``, source the shell integration into it (see the module's doc)."""
        async with AsyncExitStack() as opening:
            conn, report = await opening.enter_async_context(open_reported(target))
            conn.set_keepalive(keepalive or KEEPALIVE_SECONDS, KEEPALIVE_COUNT_MAX)
            integration = integration and await install_integration(conn)
            process = cls(AsyncExitStack(), report)
            channel = await _open_shell(conn, target, process, cols, rows)
            # Opened: the connection now closes with the process, not with this block.
            process._stack = opening.pop_all()
        process._channel = channel
        if integration:
            process._bootstrap = Bootstrap(channel.write, process._deliver)
        return process

    def received(self, data: bytes) -> None:
        if self._bootstrap is not None and not self._bootstrap.done:
            self._bootstrap.output(data)
        else:
            self._deliver(data)

    def _deliver(self, data: bytes) -> None:
        if self._on_output is None:
            self._early.append(data)  # the prompt may come before the session starts reading
        else:
            self._on_output(data)

    def lost(self, exc: Exception | None) -> None:
        if self._bootstrap is not None and not self._bootstrap.done:
            self._bootstrap.cancel()
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
        if self._bootstrap is not None and not self._bootstrap.done:
            self._bootstrap.input(data)
        elif self._channel is not None and not self._ended.is_set():
            self._channel.write(data)

    def resize(self, cols: int, rows: int) -> None:
        if self._channel is not None and not self._ended.is_set():
            self._channel.change_terminal_size(cols, rows)

    async def wait(self) -> int | None:
        await self._ended.wait()
        await self._stack.aclose()
        return self.exit_status

    def close(self) -> None:
        """Nothing left to release: :meth:`wait` closed the connection when the shell ended."""

    async def terminate(self) -> None:
        if self._channel is not None:
            self._channel.close()
        try:
            async with asyncio.timeout(5):
                await self._ended.wait()
        except TimeoutError:
            self.end_reason = self.end_reason or "closed"
        await self._stack.aclose()
