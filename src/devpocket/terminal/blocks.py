"""Command blocks: the marks of a session's output turned into commands with their output.

A block runs from a command's output start (OSC 133 C) to its end (OSC 133 D), and carries the
command line (OSC 633 E) and the working directory (OSC 633 P Cwd) the shell reported before it.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from devpocket.terminal.marks import Mark

BlockEventKind = Literal["block_started", "block_finished"]

_EXIT_CODE = re.compile(r"-?[0-9]{1,10}")


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class Block:
    id: uuid.UUID
    command: str | None
    cwd: str | None
    started_at: datetime  # UTC aware
    output_start: int  # stream offset where the command's output starts (end of the C mark)
    finished_at: datetime | None = None
    exit_code: int | None = None
    output_end: int | None = None  # stream offset of the D mark's first byte

    @property
    def duration_ms(self) -> int | None:
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at) // timedelta(milliseconds=1)

    @property
    def finished(self) -> bool:
        return self.finished_at is not None


@dataclass(frozen=True, slots=True)
class BlockEvent:
    kind: BlockEventKind
    block: Block


def parse_exit_code(value: str | None) -> int | None:
    """The exit status a D mark reports; None when it reports none or no plain integer."""
    if value is None or not _EXIT_CODE.fullmatch(value):
        return None
    return int(value)


class BlockTracker:
    """Follows one session's marks and reports each block as it starts and finishes."""

    def __init__(self, clock: Callable[[], datetime] = _utc_now) -> None:
        self._clock = clock
        self.cwd: str | None = None  # last known working directory
        self._command: str | None = None  # the command line reported for the next block
        self._open: Block | None = None

    def apply(self, marks: Iterable[Mark]) -> list[BlockEvent]:
        events: list[BlockEvent] = []
        for mark in marks:
            if mark.kind == "cwd":
                self.cwd = mark.value
            elif mark.kind == "command_line":
                self._command = mark.value
            elif mark.kind == "output_start":
                self._finish(events, None, mark.offset)
                self._start(events, mark)
            elif mark.kind == "command_end":
                self._finish(events, parse_exit_code(mark.value), mark.offset)
            elif mark.kind == "prompt_start":
                # A shell that never sent D for the last command: its prompt ends the block.
                self._finish(events, None, mark.offset)
        return events

    def _start(self, events: list[BlockEvent], mark: Mark) -> None:
        block = Block(
            id=uuid.uuid4(),
            command=self._command,
            cwd=self.cwd,
            started_at=self._clock(),
            output_start=mark.end,
        )
        self._command = None
        self._open = block
        events.append(BlockEvent("block_started", block))

    def _finish(self, events: list[BlockEvent], exit_code: int | None, at: int) -> None:
        block = self._open
        if block is None:
            return
        block.finished_at = self._clock()
        block.exit_code = exit_code
        block.output_end = at
        self._open = None
        events.append(BlockEvent("block_finished", block))
