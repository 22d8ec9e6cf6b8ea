"""The server's side of the PTY relay (``pty_relay.py``): one helper process per worker.

``attach`` hands a PTY master to the relay and answers the read end of a pipe that carries the
PTY's output from then on; the server keeps the master for input and resizing. The relay starts
on first use. Should it die, the sessions it served cannot get output any more: each is told
(``on_lost``) and ends; the next session starts a new relay.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import socket
import subprocess  # nosec B404 - starts the relay, a fixed script of this package
import sys
from collections.abc import Callable
from pathlib import Path

import structlog

from devpocket.errors import AppError

log = structlog.get_logger(__name__)

_SCRIPT = Path(__file__).with_name("pty_relay.py")
# A session's pipe holds up to this much output the server has not read (Linux's default
# limit for unprivileged processes); where the kernel refuses, the default 64 KiB stays.
_PIPE_BYTES = 1024 * 1024
_F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)
_STOP_SECONDS = 5.0


class RelayUnavailable(AppError):
    status_code = 503
    default_code = "terminal_relay_unavailable"


class PtyRelay:
    def __init__(self) -> None:
        self._process: asyncio.subprocess.Process | None = None
        self._control: socket.socket | None = None
        self._starting = asyncio.Lock()
        self._served: dict[int, Callable[[], None]] = {}  # pipe read end -> on_lost

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    async def attach(self, master: int, on_lost: Callable[[], None]) -> int:
        """Relay ``master``'s output; answers the non-blocking read end of its pipe."""
        control = await self._started()
        try:
            output = self._send(control, master)
        except OSError:
            self._lose(control)  # found dead on the way: replaced, once
            control = await self._started()
            try:
                output = self._send(control, master)
            except OSError as error:
                self._lose(control)
                raise RelayUnavailable("The terminal relay is not answering.") from error
        self._served[output] = on_lost
        return output

    @staticmethod
    def _send(control: socket.socket, master: int) -> int:
        output, pipe = os.pipe()
        try:
            with contextlib.suppress(OSError):  # EPERM above the system's limit
                fcntl.fcntl(pipe, _F_SETPIPE_SZ, _PIPE_BYTES)
            socket.send_fds(control, [b"add"], [master, pipe])
        except OSError:
            os.close(output)
            raise
        finally:
            os.close(pipe)
        os.set_blocking(output, False)
        return output

    def release(self, output: int) -> None:
        """The session is done with its pipe (the caller closes it)."""
        self._served.pop(output, None)

    async def _started(self) -> socket.socket:
        async with self._starting:
            if self._control is None:
                self._control = await self._start()
            return self._control

    async def _start(self) -> socket.socket:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self._process = await asyncio.create_subprocess_exec(
                # -I: the relay needs nothing from the environment or site-packages.
                sys.executable, "-I", str(_SCRIPT), str(theirs.fileno()),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                pass_fds=(theirs.fileno(),),
            )  # fmt: skip
        except OSError as error:
            ours.close()
            raise RelayUnavailable(f"The terminal relay could not start: {error}.") from error
        finally:
            theirs.close()
        ours.setblocking(False)
        asyncio.get_running_loop().add_reader(ours.fileno(), self._check, ours)
        log.info("terminal_relay_started", pid=self._process.pid)
        return ours

    def _check(self, control: socket.socket) -> None:
        """The relay sends nothing: the socket turns readable only when the relay is gone."""
        try:
            data = control.recv(16)
        except BlockingIOError:
            return
        except OSError:
            data = b""  # reset: gone all the same
        if not data:
            self._lose(control)

    def _lose(self, control: socket.socket) -> None:
        """The relay is gone: its sessions are told, and the next ``attach`` starts another."""
        if self._control is not control:
            return  # already handled
        asyncio.get_running_loop().remove_reader(control.fileno())
        control.close()
        self._control = None
        process, self._process = self._process, None
        if process is not None and process.returncode is None:
            # Alive but not taking messages: it must not keep holding PTYs. (Or just gone.)
            with contextlib.suppress(ProcessLookupError):
                process.kill()
        log.error("terminal_relay_lost", pid=process.pid if process else None)
        served, self._served = self._served, {}
        for on_lost in served.values():
            on_lost()

    async def aclose(self) -> None:
        """Stop the relay (sessions are ended first: it then holds nothing)."""
        control, process = self._control, self._process
        self._control = self._process = None
        if control is not None:
            asyncio.get_running_loop().remove_reader(control.fileno())
            control.close()  # the relay exits when it reads end-of-file
        if process is not None:
            try:
                async with asyncio.timeout(_STOP_SECONDS):
                    await process.wait()
            except TimeoutError:
                process.kill()
                await process.wait()
