"""A live terminal session: its process, its numbered output, and the sockets attached to it.

The session outlives every socket. Sockets attach as cursors (``attachment.Attachment``) into
the one output buffer, so a session's memory is bounded by that buffer whatever its
clients do. Reading from the process stops while every attached client is far behind (the
program then blocks, as it would on a real terminal) and resumes when one catches up.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal

from devpocket import metrics
from devpocket.terminal import protocol
from devpocket.terminal.blocks import Block, BlockEvent, BlockTracker
from devpocket.terminal.marks import Mark, MarkScanner
from devpocket.terminal.output import OutputStream
from devpocket.terminal.process import TerminalProcess

if TYPE_CHECKING:
    from devpocket.terminal.attachment import Attachment

SessionKind = Literal["local", "ssh"]
# Block events kept for clients that reattach (a block is announced once its offset is reached).
_EVENTS_KEPT = 256
# After the program has exited, how long its last output may take to arrive.
_DRAIN_SECONDS = 1.0
_BYTES_IN = metrics.TERMINAL_BYTES.labels("in")
_BYTES_OUT = metrics.TERMINAL_BYTES.labels("out")


@dataclass(frozen=True, slots=True)
class SessionOwner:
    user_id: uuid.UUID
    device_id: uuid.UUID | None
    tier: str


@dataclass(frozen=True, slots=True)
class Announcement:
    """A control frame due once a client has received the output up to ``at``."""

    number: int
    at: int
    frame: str


@dataclass(slots=True)
class Ending:
    exit_code: int | None = None
    reason: str | None = None
    ended_at: datetime | None = None


@dataclass(slots=True)
class Counters:
    bytes_in: int = 0
    bytes_out: int = 0
    last_activity: datetime = field(default_factory=lambda: datetime.now(UTC))


class TerminalSession:
    def __init__(
        self,
        *,
        owner: SessionOwner,
        kind: SessionKind,
        process: TerminalProcess,
        buffer_bytes: int,
        program: str | None = None,
        profile_id: uuid.UUID | None = None,
        on_block: Callable[[TerminalSession, Block], None] | None = None,
    ) -> None:
        self.id = str(uuid.uuid4())
        self.owner = owner
        self.kind: SessionKind = kind
        self.shell = program  # the login shell of a local session
        self.profile_id = profile_id
        self.created_at = datetime.now(UTC)
        self.process = process
        self.stream = OutputStream(buffer_bytes)
        self.counters = Counters()
        self.ending = Ending()
        self.closed = asyncio.Event()  # ended, and its record completed
        self.attachments: set[Attachment] = set()
        self.announcements: deque[Announcement] = deque(maxlen=_EVENTS_KEPT)
        self._announced = 0
        self._scanner = MarkScanner()
        self._blocks = BlockTracker()
        self._on_block = on_block
        self._output_ended = asyncio.Event()
        self._paused = False
        # Pause reading when every client lags by more than half the buffer; resume at a quarter.
        self._high_water = buffer_bytes // 2
        self._low_water = buffer_bytes // 4

    @property
    def cwd(self) -> str | None:
        return self._blocks.cwd

    @property
    def paused(self) -> bool:
        return self._paused

    def start(self) -> None:
        self.process.start(self._output, self._output_ended.set)

    # Output ------------------------------------------------------------------------------------

    def _output(self, raw: bytes) -> None:
        offset, text = self.stream.append(raw)
        self.counters.bytes_out += len(raw)
        _BYTES_OUT.inc(len(raw))
        if text:
            marks = self._scanner.feed(text, offset)
            if marks:
                self._track(marks)
        for attachment in self.attachments:
            attachment.wake.set()
        if self.attachments and not self._paused and self._all_behind():
            self._paused = True
            self.process.pause_reading()

    def _track(self, marks: list[Mark]) -> None:
        for event in self._blocks.apply(marks):
            self._announce_block(event)

    def _announce_block(self, event: BlockEvent) -> None:
        block = event.block
        at = block.output_start if event.kind == "block_started" else (block.output_end or 0)
        fields = _block_fields(block)
        self._announced += 1
        frame = protocol.control(event.kind, self.id, block=fields)
        self.announcements.append(Announcement(self._announced, at, frame))
        if event.kind == "block_finished" and self._on_block is not None:
            self._on_block(self, block)

    def _all_behind(self) -> bool:
        end = self.stream.end
        return all(end - attachment.cursor > self._high_water for attachment in self.attachments)

    def caught_up(self, attachment: Attachment) -> None:
        """An attachment advanced: reading resumes once any client is close to the end."""
        if self._paused and self.stream.end - attachment.cursor <= self._low_water:
            self._paused = False
            self.process.resume_reading()

    # Input -------------------------------------------------------------------------------------

    def write(self, text: str) -> None:
        data = text.encode()
        self.counters.bytes_in += len(data)
        _BYTES_IN.inc(len(data))
        self.counters.last_activity = datetime.now(UTC)
        self.process.write(data)

    def resize(self, cols: int, rows: int) -> None:
        self.process.resize(cols, rows)

    # Attachments -------------------------------------------------------------------------------

    def attach(self, attachment: Attachment) -> None:
        self.attachments.add(attachment)
        self.counters.last_activity = datetime.now(UTC)
        self._resume_unless_all_behind()

    def detach(self, attachment: Attachment) -> None:
        self.attachments.discard(attachment)
        self._resume_unless_all_behind()

    def _resume_unless_all_behind(self) -> None:
        """Reading resumes once a client is close to the end (one that has just attached there,
        or the one left when the laggards went), or nobody is watching: the program then keeps
        running and the buffer keeps its latest output."""
        if not self._paused:
            return
        end = self.stream.end
        if not self.attachments or any(
            end - attachment.cursor <= self._low_water for attachment in self.attachments
        ):
            self._paused = False
            self.process.resume_reading()

    # Ending ------------------------------------------------------------------------------------

    async def run(self) -> None:
        """Wait for the program to end and collect its last output."""
        code = await self.process.wait()
        try:
            async with asyncio.timeout(_DRAIN_SECONDS):
                await self._output_ended.wait()
        except TimeoutError:
            await self.process.terminate()  # something in the background still holds the PTY
        self.process.close()
        offset, text = self.stream.append(b"", final=True)
        if text:
            self._scanner.feed(text, offset)
        self.ending.exit_code = code
        self.ending.reason = self.ending.reason or getattr(self.process, "end_reason", None)
        self.ending.reason = self.ending.reason or "exited"
        self.ending.ended_at = datetime.now(UTC)

    def mark_closed(self) -> None:
        """Tell attached sockets (once the record says so too: the registry calls this)."""
        self.closed.set()
        for attachment in self.attachments:
            attachment.wake.set()

    async def close(self, reason: str) -> None:
        if self.ending.ended_at is not None:
            return
        self.ending.reason = self.ending.reason or reason
        await self.process.terminate()

    def closed_frame(self) -> str:
        return protocol.control(
            "session_closed",
            self.id,
            exit_code=self.ending.exit_code,
            reason=self.ending.reason,
        )


def _block_fields(block: Block) -> dict[str, object]:
    return {
        "id": str(block.id),
        "command": block.command,
        "cwd": block.cwd,
        "started_at": block.started_at.isoformat(),
        "finished_at": block.finished_at.isoformat() if block.finished_at else None,
        "duration_ms": block.duration_ms,
        "exit_code": block.exit_code,
        "output_start": block.output_start,
        "output_end": block.output_end,
    }
