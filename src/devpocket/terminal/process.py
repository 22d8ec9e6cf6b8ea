"""What a terminal session runs: the interface between a session and its PTY or SSH channel.

A session never touches a file descriptor or a channel itself; it talks to a
:class:`TerminalProcess`. A relay that reaches a process on another node through the broker
can implement the same interface.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

OnOutput = Callable[[bytes], None]
OnEnd = Callable[[], None]


class TerminalProcess(Protocol):
    def start(self, on_output: OnOutput, on_end: OnEnd) -> None:
        """Begin delivering output; ``on_end`` is called once when no more will come."""

    def pause_reading(self) -> None:
        """Stop taking output: the program blocks once its terminal's buffer is full."""

    def resume_reading(self) -> None: ...

    def write(self, data: bytes) -> None:
        """Input, as typed (control keys are bytes too: Ctrl-C is ``\\x03``)."""

    def resize(self, cols: int, rows: int) -> None: ...

    async def wait(self) -> int | None:
        """The exit status once the program has ended (128 + n when killed by signal n)."""

    async def terminate(self) -> None:
        """End the program and everything it started; returns when it has ended."""

    def close(self) -> None:
        """Release what is left (descriptors, connections) once the program has ended and its
        output is read; idempotent."""
