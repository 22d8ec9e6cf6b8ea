"""The mark scanner: every mark, both terminators, byte offsets, and marks split across chunks."""

from __future__ import annotations

import sys
from types import FrameType
from typing import Any

import pytest

from devpocket.terminal.marks import MAX_SEQUENCE, Mark, MarkKind, MarkScanner, parse_payload

BEL = "\x07"
ST = "\x1b\\"

# Prompt, command line, output with multi-byte characters, end, cwd: what a shell writes.
SESSION = (
    "héllo 😀\r\n"
    "\x1b]133;A\x07$ \x1b]133;B\x1b\\ls 'é;😀'\r\n"
    "\x1b]633;E;ls 'é\\x3b😀';nonce\x07\x1b]133;C\x07"
    "\x1b[1mbold\x1b[0m \x1b]0;a title\x07naïve 😀\r\n"
    "\x1b]133;D;0\x1b\\\x1b]633;P;Cwd=/srv/d\\x3bir\x07"
    "\x1b]133;A\x07é$ \x1b]133;B\x07"
)


def scan(*chunks: str, start: int = 0) -> list[Mark]:
    """Feed ``chunks`` to one scanner as consecutive pieces of a stream starting at ``start``."""
    scanner = MarkScanner()
    marks: list[Mark] = []
    offset = start
    for chunk in chunks:
        marks.extend(scanner.feed(chunk, offset))
        offset += len(chunk.encode())
    return marks


def byte_offset(text: str, index: int) -> int:
    return len(text[:index].encode())


@pytest.mark.parametrize(
    ("sequence", "kind", "value"),
    [
        ("\x1b]133;A", "prompt_start", None),
        ("\x1b]133;A;cl=m;aid=1", "prompt_start", None),
        ("\x1b]133;B", "command_start", None),
        ("\x1b]133;C", "output_start", None),
        ("\x1b]133;D", "command_end", None),
        ("\x1b]133;D;", "command_end", ""),
        ("\x1b]133;D;0", "command_end", "0"),
        ("\x1b]133;D;130;aid=1", "command_end", "130"),
        ("\x1b]633;A", "prompt_start", None),
        ("\x1b]633;B", "command_start", None),
        ("\x1b]633;C", "output_start", None),
        ("\x1b]633;D;2", "command_end", "2"),
        ("\x1b]633;E;git status", "command_line", "git status"),
        ("\x1b]633;E;git status;5f3a9c", "command_line", "git status"),
        ("\x1b]633;E", "command_line", ""),
        ("\x1b]633;P;Cwd=/home/me", "cwd", "/home/me"),
        ("\x1b]633;P;Cwd=/home/My Files/é", "cwd", "/home/My Files/é"),
    ],
)
def test_each_mark_kind_is_found_with_its_value(
    sequence: str, kind: MarkKind, value: str | None
) -> None:
    text = "output" + sequence + BEL + "more"

    marks = scan(text)

    assert marks == [Mark(kind, 6, 6 + len(sequence.encode()) + 1, value)]


@pytest.mark.parametrize("terminator", [BEL, ST])
def test_mark_ends_after_either_terminator(terminator: str) -> None:
    text = "ab\x1b]133;D;7" + terminator + "cd"

    marks = scan(text)

    assert marks == [Mark("command_end", 2, len(text) - 2, "7")]


def test_offsets_count_utf8_bytes_from_the_chunk_offset() -> None:
    text = "é😀\x1b]133;C\x07"

    marks = scan(text, start=1000)

    assert marks == [Mark("output_start", 1006, 1006 + 8, None)]


@pytest.mark.parametrize("start", [0, 123])
def test_marks_split_at_every_position_are_found_once_with_the_same_offsets(start: int) -> None:
    whole = scan(SESSION, start=start)

    for index in range(len(SESSION) + 1):
        pieces = scan(SESSION[:index], SESSION[index:], start=start)
        assert pieces == whole, f"split at {index}"
    assert [mark.kind for mark in whole] == [
        "prompt_start",
        "command_start",
        "command_line",
        "output_start",
        "command_end",
        "cwd",
        "prompt_start",
        "command_start",
    ]
    assert whole[2].value == "ls 'é;😀'"
    assert whole[5].value == "/srv/d;ir"
    assert whole[0].offset == start + byte_offset(SESSION, SESSION.index("\x1b]133;A"))


def test_marks_fed_one_character_at_a_time_match_the_whole() -> None:
    assert scan(*SESSION) == scan(SESSION)


def test_marks_split_in_three_pieces_match_the_whole() -> None:
    text = "é\x1b]633;E;a\\x3bb\x1b\\😀\x1b]133;C\x07"
    whole = scan(text)

    for first in range(len(text) + 1):
        for second in range(first, len(text) + 1):
            assert scan(text[:first], text[first:second], text[second:]) == whole


@pytest.mark.parametrize(
    "sequence",
    [
        "\x1b]0;window title\x07",
        "\x1b]8;;https://example.com\x1b\\",
        "\x1b]1337;SetUserVar=a=b\x07",
        "\x1b]1330;A\x07",
        "\x1b]133\x07",
        "\x1b]133;Z\x07",
        "\x1b]133;E;ls\x07",
        "\x1b]633;P;Other=1\x07",
        "\x1b]633;Q\x07",
        "\x1b[31m",
        "\x1b[?2004h",
    ],
)
def test_other_escape_sequences_are_ignored(sequence: str) -> None:
    text = "a" + sequence + "b\x1b]133;B\x07"

    marks = scan(text)

    assert marks == [Mark("command_start", len(text) - 8, len(text), None)]


@pytest.mark.parametrize(
    "payload",
    ["133;A", "133;D;1", "633;E", "633;E;x;y", "633;P;Cwd=/", "633;P;Cwd=/a;n", "0;title", "133",
     "133;", "133;Z", "133;AB", "133;E;ls", "1330;A", "633;P", "633;P;Other=1", "633;Q", ";133;A"],
)  # fmt: skip
def test_a_sequence_is_a_mark_exactly_when_its_payload_parses_as_one(payload: str) -> None:
    """The scanner's quick search and the parser agree on what a mark is."""
    parsed = parse_payload(payload)

    found = scan(f"\x1b]{payload}\x07")

    assert [(mark.kind, mark.value) for mark in found] == ([] if parsed is None else [parsed])


def test_sequence_cut_short_by_another_escape_is_ignored() -> None:
    text = "\x1b]133;A\x1b[0m\x1b]133;B\x07"

    assert scan(text) == [Mark("command_start", 11, len(text), None)]


@pytest.mark.parametrize("chunk_size", [1000, 4096, MAX_SEQUENCE, 100_000])
def test_unterminated_giant_sequence_is_abandoned_and_scanning_resumes(chunk_size: int) -> None:
    giant = "\x1b]633;E;" + "x" * (MAX_SEQUENCE * 4) + BEL
    text = giant + "\x1b]133;A\x07"
    chunks = [text[index : index + chunk_size] for index in range(0, len(text), chunk_size)]

    marks = scan(*chunks)

    assert marks == [Mark("prompt_start", len(giant), len(text), None)]


def test_sequence_just_under_the_limit_is_kept_across_chunks() -> None:
    value = "y" * (MAX_SEQUENCE - 20)
    text = f"\x1b]633;E;{value}\x07"

    marks = scan(text[:100], text[100:5000], text[5000:])

    assert marks == [Mark("command_line", 0, len(text), value)]


@pytest.mark.parametrize("chunk_size", [7, 4096, 1 << 20])
def test_many_abandoned_introducers_give_no_marks_and_the_mark_after_them_is_found(
    chunk_size: int,
) -> None:
    flood = "\x1b]133;" * 20_000 + "\x1b]633;E;ls" * 1000 + "\x1b]" * 1000
    text = flood + "\x1b]133;D;0\x07"
    chunks = [text[index : index + chunk_size] for index in range(0, len(text), chunk_size)]

    assert scan(*chunks) == [Mark("command_end", len(flood), len(text), "0")]


def python_calls_to_scan(text: str) -> int:
    """How many functions (Python or C) one scanner calls to scan ``text`` and a final mark."""
    scanner = MarkScanner()
    calls = 0

    def count(frame: FrameType, event: str, arg: Any) -> None:
        nonlocal calls
        if event in ("call", "c_call"):
            calls += 1

    sys.setprofile(count)
    try:
        scanner.feed(text, 0)
        scanner.feed("\x1b]133;A\x07", 0)
    finally:
        sys.setprofile(None)
    return calls


@pytest.mark.parametrize(
    "sequence",
    [
        "\x1b]133;",
        "\x1b]633;E;x",
        "\x1b]",
        "\x1b]133;\x07",
        "\x1b]133;Z\x1b\\",
        "\x1b]0;t\x07",
        "\x1b",
    ],
)
def test_scanning_work_does_not_grow_with_sequences_that_are_not_marks(sequence: str) -> None:
    """Output made of such sequences once cost a Python loop turn each and blocked the server."""
    few = python_calls_to_scan("ab" + sequence * 10 + "cd")
    many = python_calls_to_scan("ab" + sequence * 20_000 + "cd")

    assert many == few


@pytest.mark.parametrize(
    ("escaped", "command"),
    [
        ("echo a\\x3b echo b", "echo a; echo b"),
        ("printf '%s' c\\\\d", "printf '%s' c\\d"),
        ('echo "x\\x0ay"', 'echo "x\ny"'),
        ("a\\x09b\\x1bc\\x07d", "a\tb\x1bc\x07d"),
        ("literal \\\\x3b", "literal \\x3b"),
        ("\\\\\\\\", "\\\\"),
        ("odd \\xzz \\q", "odd \\xzz \\q"),
        ("é 😀 \\x3B", "é 😀 ;"),
    ],
)
def test_escaped_command_line_is_unescaped(escaped: str, command: str) -> None:
    marks = scan(f"\x1b]633;E;{escaped};nonce\x07")

    assert [mark.value for mark in marks] == [command]


@pytest.mark.parametrize("text", ["", "plain output\r\n", "\x1b[1;32mcolour\x1b[0m", "é😀"])
def test_output_without_marks_gives_nothing(text: str) -> None:
    scanner = MarkScanner()

    assert scanner.feed(text, 0) == []
    assert scanner.feed("\x1b]133;A\x07", len(text.encode())) == [
        Mark("prompt_start", len(text.encode()), len(text.encode()) + 8, None)
    ]
