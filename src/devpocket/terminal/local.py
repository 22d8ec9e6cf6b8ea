"""A local shell in a pseudo-terminal.

Output reaches the server through the PTY relay (``relay.py``), a helper process that reads
the PTY and writes into a pipe, which is read here in large pieces; input and resizing go
straight to the PTY.

The shell starts through util-linux ``setsid --ctty``: a new session whose controlling terminal
is the PTY, so that job control works and Ctrl-C reaches the foreground job. (Python cannot make
a terminal controlling between fork and exec without ``preexec_fn``, which is unsafe in a
process with threads.) Ending the session hangs up the PTY and signals the whole process group.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import functools
import os
import shutil
import signal
import struct
import subprocess  # nosec B404 - runs env once to learn what it supports
import termios
from pathlib import Path

from devpocket.errors import AppError
from devpocket.terminal.process import OnEnd, OnOutput
from devpocket.terminal.relay import PtyRelay, RelayUnavailable

# At most this much per wake-up: fewer, larger frames under load, and never more than the
# smallest output buffer (256 KiB) can take beyond its flow-control mark (half of it).
_READ_SIZE = 128 * 1024
_MAX_PENDING_INPUT = 1024 * 1024
_KILL_GRACE = 2.0


class ShellUnavailable(AppError):
    status_code = 422
    default_code = "shell_unavailable"


@functools.cache
def _launcher() -> list[str]:
    """``setsid --ctty``, then GNU ``env --default-signal`` where it exists.

    A signal the server ignores (SIGINT and SIGQUIT when started in the background, SIGHUP under
    nohup) would stay ignored in the shell and every program it runs: Ctrl-C would stop nothing.
    """
    setsid = shutil.which("setsid")
    if setsid is None:
        raise ShellUnavailable("Local shells need util-linux's setsid on the server.")
    env = shutil.which("env")
    if env is not None:
        probe = subprocess.run(  # noqa: S603  # nosec B603 - a fixed command, once per process
            [env, "--default-signal", "true"], capture_output=True, check=False, timeout=5
        )
        if probe.returncode == 0:
            return [setsid, "--ctty", env, "--default-signal"]
    return [setsid, "--ctty"]


def _winsize(cols: int, rows: int) -> bytes:
    return struct.pack("HHHH", rows, cols, 0, 0)


class LocalProcess:
    def __init__(self, master: int, process: asyncio.subprocess.Process, relay: PtyRelay) -> None:
        self._master = master
        self._process = process
        self._relay = relay
        self._output = -1
        self.end_reason: str | None = None
        self._on_output: OnOutput | None = None
        self._on_end: OnEnd | None = None
        self._reading = False
        self._ended = False
        self._pending_input = bytearray()
        self._loop = asyncio.get_running_loop()
        self._ending_tasks: set[asyncio.Task[None]] = set()

    @classmethod
    async def spawn(
        cls,
        argv: list[str],
        *,
        relay: PtyRelay,
        env: dict[str, str],
        cwd: Path,
        cols: int,
        rows: int,
    ) -> LocalProcess:
        launcher = _launcher()
        master, slave = os.openpty()
        try:
            fcntl.ioctl(slave, termios.TIOCSWINSZ, _winsize(cols, rows))
            os.set_blocking(master, False)
            process = await asyncio.create_subprocess_exec(
                *launcher,
                *argv,
                stdin=slave,
                stdout=slave,
                stderr=slave,
                env=env,
                cwd=cwd,
                close_fds=True,
            )
        except OSError as exc:
            os.close(master)
            raise ShellUnavailable(f"The shell could not start: {exc.strerror}.") from exc
        finally:
            os.close(slave)
        local = cls(master, process, relay)
        try:
            local._output = await relay.attach(master, local._relay_lost)
        except RelayUnavailable:
            await local.terminate()
            raise
        return local

    @property
    def pid(self) -> int:
        return self._process.pid

    def start(self, on_output: OnOutput, on_end: OnEnd) -> None:
        self._on_output, self._on_end = on_output, on_end
        self.resume_reading()

    def pause_reading(self) -> None:
        if self._reading:
            self._loop.remove_reader(self._output)
            self._reading = False

    def resume_reading(self) -> None:
        if not self._reading and not self._ended:
            self._loop.add_reader(self._output, self._readable)
            self._reading = True

    def _readable(self) -> None:
        try:
            chunk = os.read(self._output, _READ_SIZE)
        except BlockingIOError:
            return
        if chunk:
            if self._on_output is not None:
                self._on_output(chunk)
        else:  # the relay closed the pipe: the terminal has ended
            self._end()

    def _relay_lost(self) -> None:
        """The relay died: no more output can come, so the program is ended too."""
        self.end_reason = "relay_failed"
        self._end()
        task = self._loop.create_task(self.terminate())
        self._ending_tasks.add(task)
        task.add_done_callback(self._ending_tasks.discard)

    def _end(self) -> None:
        if self._ended:
            return
        self.pause_reading()
        self._ended = True
        if self._on_end is not None:
            self._on_end()

    def write(self, data: bytes) -> None:
        if self._ended:
            return
        if self._pending_input:
            self._queue_input(data)
            return
        try:
            written = os.write(self._master, data)
        except BlockingIOError:
            written = 0
        except OSError:
            return  # the terminal is gone; the end is on its way through the reader
        if written < len(data):
            self._queue_input(data[written:])

    def _queue_input(self, data: bytes) -> None:
        if len(self._pending_input) + len(data) > _MAX_PENDING_INPUT:
            return  # the program reads nothing: a terminal drops typed input too
        if not self._pending_input:
            self._loop.add_writer(self._master, self._writable)
        self._pending_input += data

    def _writable(self) -> None:
        try:
            written = os.write(self._master, self._pending_input)
        except BlockingIOError:
            return
        except OSError:
            written = len(self._pending_input)
        del self._pending_input[:written]
        if not self._pending_input:
            self._loop.remove_writer(self._master)

    def resize(self, cols: int, rows: int) -> None:
        with contextlib.suppress(OSError):
            fcntl.ioctl(self._master, termios.TIOCSWINSZ, _winsize(cols, rows))

    async def wait(self) -> int | None:
        code = await self._process.wait()
        return 128 - code if code < 0 else code

    async def terminate(self) -> None:
        self._signal(signal.SIGHUP)
        self._signal(signal.SIGCONT)  # a stopped job must wake to receive the hang-up
        try:
            async with asyncio.timeout(_KILL_GRACE):
                await self._process.wait()
        except TimeoutError:
            self._signal(signal.SIGKILL)
            await self._process.wait()
        self._kill_session_rest()
        self.close()

    def _kill_session_rest(self) -> None:
        """Kill what is left of the shell's session: jobs run in process groups of their own,
        and one that ignored the hang-up (``nohup``) would otherwise outlive the session.

        The session id is the shell's pid (``setsid``), which Linux does not give to another
        process while any member of the session lives.
        """
        session = str(self._process.pid)
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):  # gone meanwhile, or not ours to read
                continue
            if stat[3] == session:  # state, ppid, pgrp, session, …
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(int(entry.name), signal.SIGKILL)

    def _signal(self, signum: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._process.pid, signum)

    def close(self) -> None:
        """Release the PTY and its pipe once the program is gone (called after the end)."""
        self.pause_reading()
        self._ended = True  # nothing to read any more: resume_reading stays a no-op
        if self._pending_input:
            self._loop.remove_writer(self._master)
            self._pending_input.clear()
        if self._output >= 0:
            self._relay.release(self._output)
            os.close(self._output)  # the relay then lets go of its copy of the master
            self._output = -1
        if self._master >= 0:
            os.close(self._master)
            self._master = -1
