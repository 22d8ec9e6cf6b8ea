"""One socket's view of a session: a cursor into the session's output, and the task that sends.

Replay and live output are the same loop: send what lies between the cursor and the end of the
output, then wait for more. Nothing is copied per client, nothing is lost or sent twice, and a
slow socket only holds its own cursor back.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from devpocket.terminal import protocol
from devpocket.terminal.session import TerminalSession

# The largest ``data`` frame: big enough for throughput, small enough for a phone to parse.
FRAME_BYTES = 64 * 1024


class Sink(Protocol):
    async def send(self, text: str) -> None:
        """Send a frame; never raises (a gone socket drops it)."""


class Attachment:
    def __init__(self, session: TerminalSession, sink: Sink, since: int | None) -> None:
        stream = session.stream
        wanted = stream.start if since is None else max(since, 0)
        self.session = session
        self.sink = sink
        self.lost = max(stream.start - wanted, 0)
        self.cursor = stream.aligned(wanted)
        self.announced = max(
            (a.number for a in session.announcements if a.at <= self.cursor), default=0
        )
        self.wake = asyncio.Event()
        self.wake.set()
        self.detached = False

    def detach(self) -> None:
        self.detached = True
        self.wake.set()

    async def run(self) -> None:
        """Send from the cursor on until the session closes or the socket detaches."""
        session = self.session
        if self.lost:
            await self._resync(self.lost)
        while not self.detached:
            stream = session.stream
            if self.cursor < stream.start:
                await self._resync(stream.start - self.cursor)
                continue
            if self.cursor < stream.end:
                seq = self.cursor
                chunk = stream.read(seq, FRAME_BYTES)
                self.cursor += len(chunk)
                await self.sink.send(protocol.output_frame(session.id, seq, chunk))
                session.caught_up(self)
                await self._announce()
                continue
            await self._announce()
            if session.closed.is_set():
                await self.sink.send(session.closed_frame())
                return
            self.wake.clear()
            await self.wake.wait()

    async def _resync(self, lost: int) -> None:
        """Output this client has not seen is gone: say so, and go on from the oldest kept."""
        stream = self.session.stream
        self.cursor = stream.aligned(stream.start)
        await self.sink.send(
            protocol.control("output_lost", self.session.id, lost=lost, seq=self.cursor)
        )

    async def _announce(self) -> None:
        due = [
            a
            for a in self.session.announcements
            if a.number > self.announced and a.at <= self.cursor
        ]
        for announcement in due:
            self.announced = announcement.number
            await self.sink.send(announcement.frame)
