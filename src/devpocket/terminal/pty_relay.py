"""The PTY relay: a helper process that moves local sessions' output from PTYs into pipes.

Reading a PTY master costs the kernel's terminal layer a copy for every few kilobytes. Done on
the server's event loop, those reads took half of the loop's time, and a program printing fast
stalled whenever the loop was busy encoding and sending (``bench/terminal.py``). A reader
thread does not help: it needs the GIL back after every read, so it waits on the loop. This
process, one per server worker, has no GIL to share. It reads each local session's PTY as soon
as there is output and writes what it read into a pipe of that session, which the server then
reads in pieces of up to 128 KiB instead of 4 KiB.

It keeps no state beyond descriptors (``terminal/relay.py`` is the server's side):

- The server sends, over a Unix socket, ``add`` with two descriptors: a PTY master and the
  write end of the session's pipe.
- Output read from the PTY goes to the pipe at once. While the pipe is full (the server stopped
  reading: flow control), the relay stops reading that PTY, whose program then blocks as on a
  real terminal.
- When the PTY ends (every process holding the terminal is gone), the relay writes what it still
  holds and closes the pipe: the server reads end-of-file.
- When the server closes the pipe's read end, the relay lets go of both descriptors.
- When the server goes away (its end of the socket closes), the relay exits.

Standard library only, and run as a script: it imports nothing of the server.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import sys

_READ_SIZE = 64 * 1024
# What one PTY may give per turn before the others are served, and at most held per PTY while
# its pipe is full.
_READ_BUDGET = 256 * 1024


class _Channel:
    __slots__ = ("ending", "master", "pending", "pipe", "reading")

    def __init__(self, master: int, pipe: int) -> None:
        self.master = master
        self.pipe = pipe
        self.pending = b""
        self.reading = False
        self.ending = False


class Relay:
    def __init__(self, control: socket.socket) -> None:
        self._control = control
        self._poller = select.epoll()
        self._poller.register(control.fileno(), select.EPOLLIN)
        self._by_master: dict[int, _Channel] = {}
        self._by_pipe: dict[int, _Channel] = {}

    def run(self) -> None:
        while True:
            for fd, events in self._poller.poll():
                if fd == self._control.fileno():
                    if not self._receive():
                        return
                elif (channel := self._by_master.get(fd)) is not None:
                    self._read(channel)
                elif (channel := self._by_pipe.get(fd)) is not None:
                    if events & select.EPOLLERR:  # the server closed its end
                        self._drop(channel)
                    else:
                        self._flush(channel)

    def _receive(self) -> bool:
        """Take one message from the server; False once the server is gone."""
        try:
            message, fds, _, _ = socket.recv_fds(self._control, 16, 2)
        except InterruptedError:
            return True
        if not message and not fds:
            return False
        if message != b"add" or len(fds) != 2:
            for fd in fds:
                os.close(fd)
            return True
        master, pipe = fds
        os.set_blocking(pipe, False)
        channel = _Channel(master, pipe)
        self._by_master[master] = channel
        self._by_pipe[pipe] = channel
        # Registered without events, the write end still reports EPOLLERR when the server
        # closes the read end.
        self._poller.register(pipe, 0)
        self._start_reading(channel)
        return True

    def _start_reading(self, channel: _Channel) -> None:
        if not channel.reading and not channel.ending:
            # Registered only while wanted: a hung-up PTY would report EPOLLHUP without end.
            self._poller.register(channel.master, select.EPOLLIN)
            channel.reading = True

    def _stop_reading(self, channel: _Channel) -> None:
        if channel.reading:
            self._poller.unregister(channel.master)
            channel.reading = False

    def _read(self, channel: _Channel) -> None:
        chunks: list[bytes] = []
        size = 0
        while size < _READ_BUDGET:
            try:
                chunk = os.read(channel.master, _READ_SIZE)
            except BlockingIOError:
                break
            except OSError:  # EIO: every process holding the terminal has gone
                chunk = b""
            if not chunk:
                channel.ending = True
                self._stop_reading(channel)
                break
            chunks.append(chunk)
            size += len(chunk)
        channel.pending = b"".join(chunks)
        self._flush(channel)

    def _flush(self, channel: _Channel) -> None:
        if channel.pending:
            try:
                written = os.write(channel.pipe, channel.pending)
            except BlockingIOError:
                written = 0
            except OSError:  # EPIPE: the server closed its end
                self._drop(channel)
                return
            channel.pending = channel.pending[written:]
        if channel.pending:
            self._stop_reading(channel)
            self._poller.modify(channel.pipe, select.EPOLLOUT)
            return
        self._poller.modify(channel.pipe, 0)
        if channel.ending:
            self._drop(channel)
        else:
            self._start_reading(channel)

    def _drop(self, channel: _Channel) -> None:
        self._stop_reading(channel)
        self._poller.unregister(channel.pipe)
        del self._by_master[channel.master], self._by_pipe[channel.pipe]
        os.close(channel.master)
        os.close(channel.pipe)


def main(argv: list[str]) -> int:
    # Ctrl-C at the server's console reaches this process too: the server decides when it ends.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    control = socket.socket(fileno=int(argv[1]))
    Relay(control).run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
