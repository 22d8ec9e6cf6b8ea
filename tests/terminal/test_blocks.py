"""Command blocks from marks: start, finish, exit codes, cwd, and shells that skip marks."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from devpocket.terminal.blocks import Block, BlockTracker
from devpocket.terminal.marks import Mark, MarkKind

T0 = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)


def ticking_clock(step: timedelta = timedelta(milliseconds=250)) -> Callable[[], datetime]:
    """A clock that moves ``step`` forward each time it is read, starting at T0."""
    reads = 0

    def now() -> datetime:
        nonlocal reads
        reads += 1
        return T0 + step * (reads - 1)

    return now


def mark(kind: MarkKind, offset: int, value: str | None = None) -> Mark:
    return Mark(kind, offset, offset + 8, value)


def command_marks(start: int, command: str | None, exit_code: str | None) -> list[Mark]:
    """Prompt, command line, output start at ``start`` + 30, end at ``start`` + 100."""
    marks = [mark("prompt_start", start), mark("command_start", start + 10)]
    if command is not None:
        marks.append(mark("command_line", start + 20, command))
    return [*marks, mark("output_start", start + 30), mark("command_end", start + 100, exit_code)]


def test_command_marks_give_one_finished_block() -> None:
    tracker = BlockTracker(clock=ticking_clock())

    events = tracker.apply([mark("cwd", 0, "/srv"), *command_marks(10, "make test", "0")])

    assert [event.kind for event in events] == ["block_started", "block_finished"]
    block = events[0].block
    assert events[1].block is block
    assert block == Block(
        id=block.id,
        command="make test",
        cwd="/srv",
        started_at=T0,
        output_start=48,
        finished_at=T0 + timedelta(milliseconds=250),
        exit_code=0,
        output_end=110,
    )
    assert block.finished
    assert block.duration_ms == 250


def test_open_block_has_no_duration_until_it_finishes() -> None:
    tracker = BlockTracker(clock=ticking_clock(timedelta(seconds=2)))

    started = tracker.apply(command_marks(0, "sleep 2", "0")[:-1])
    block = started[0].block
    assert not block.finished
    assert block.duration_ms is None
    assert block.exit_code is None

    tracker.apply([mark("command_end", 500, "0")])
    assert block.duration_ms == 2000


@pytest.mark.parametrize(
    ("value", "exit_code"),
    [("0", 0), ("1", 1), ("130", 130), ("-1", -1), (None, None), ("", None), ("x", None)],
)
def test_exit_code_is_the_integer_of_the_end_mark(value: str | None, exit_code: int | None) -> None:
    tracker = BlockTracker()

    events = tracker.apply(command_marks(0, "cmd", value))

    assert events[-1].block.exit_code == exit_code


@pytest.mark.parametrize("value", ["1.5", " 2", "1_0", "9" * 5000])
def test_exit_code_that_is_not_a_plain_integer_is_none(value: str) -> None:
    events = BlockTracker().apply(command_marks(0, "cmd", value))

    assert events[-1].block.exit_code is None


def test_command_end_without_open_block_is_ignored() -> None:
    tracker = BlockTracker()

    events = tracker.apply([mark("command_end", 0, "0"), mark("prompt_start", 10)])
    events += tracker.apply(command_marks(20, "ls", "0"))
    events += tracker.apply([mark("command_end", 200, "1")])

    assert [event.kind for event in events] == ["block_started", "block_finished"]
    assert events[-1].block.exit_code == 0


def test_prompt_while_block_open_finishes_it_without_exit_code() -> None:
    tracker = BlockTracker()

    events = tracker.apply([*command_marks(0, "vim", "0")[:-1], mark("prompt_start", 400)])

    assert [event.kind for event in events] == ["block_started", "block_finished"]
    assert events[-1].block.exit_code is None
    assert events[-1].block.output_end == 400


def test_second_output_start_finishes_the_open_block_first() -> None:
    tracker = BlockTracker()

    events = tracker.apply(
        [
            mark("command_line", 0, "one"),
            mark("output_start", 10),
            mark("command_line", 50, "two"),
            mark("output_start", 60),
            mark("command_end", 90, "0"),
        ]
    )

    assert [(event.kind, event.block.command) for event in events] == [
        ("block_started", "one"),
        ("block_finished", "one"),
        ("block_started", "two"),
        ("block_finished", "two"),
    ]
    assert events[1].block.exit_code is None
    assert events[1].block.output_end == 60
    assert events[3].block.exit_code == 0


def test_command_line_belongs_to_the_next_block_only() -> None:
    tracker = BlockTracker()

    first = tracker.apply(command_marks(0, "ls", "0"))
    second = tracker.apply(command_marks(200, None, "0"))

    assert first[0].block.command == "ls"
    assert second[0].block.command is None


def test_cwd_is_kept_for_later_blocks_and_does_not_change_an_open_one() -> None:
    tracker = BlockTracker()
    assert tracker.cwd is None

    first = tracker.apply([mark("cwd", 0, "/a"), *command_marks(10, "cd /b", None)[:-1]])
    tracker.apply([mark("cwd", 150, "/b"), mark("command_end", 160, "0")])
    second = tracker.apply(command_marks(200, "pwd", "0"))

    assert tracker.cwd == "/b"
    assert first[0].block.cwd == "/a"
    assert second[0].block.cwd == "/b"


def test_blocks_have_distinct_ids_and_utc_start_times() -> None:
    tracker = BlockTracker()

    events = tracker.apply(command_marks(0, "a", "0") + command_marks(200, "b", "0"))

    blocks = [event.block for event in events if event.kind == "block_started"]
    assert blocks[0].id != blocks[1].id
    assert all(block.started_at.utcoffset() == timedelta(0) for block in blocks)
