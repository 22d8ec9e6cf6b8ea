"""The numbered output buffer: offsets in UTF-8 bytes, whole characters, bounded memory."""

from __future__ import annotations

import random

import pytest

from devpocket.terminal.output import OutputStream

TEXT = "plain ascii, é, ü, 漢字, 😀 and more 🚀 " * 50


def _split(data: bytes, sizes: list[int]) -> list[bytes]:
    pieces, index = [], 0
    for size in sizes:
        pieces.append(data[index : index + size])
        index += size
    pieces.append(data[index:])
    return pieces


@pytest.mark.parametrize("seed", range(5))
def test_characters_split_across_reads_come_out_whole(seed: int) -> None:
    rng = random.Random(seed)
    data = TEXT.encode()
    stream = OutputStream(1 << 20)
    texts = []
    for piece in _split(data, [rng.randint(1, 7) for _ in range(400)]):
        offset, text = stream.append(piece)
        assert offset == stream.end - len(text.encode())
        texts.append(text)
    assert "".join(texts) == TEXT
    assert stream.end == len(data)


def test_invalid_bytes_are_replaced_and_offsets_count_the_replacement() -> None:
    stream = OutputStream(1 << 20)
    _, first = stream.append(b"ok \xff\xfe end")
    assert first == "ok \ufffd\ufffd end"
    assert stream.end == len(first.encode())
    offset, second = stream.append(b"!")
    assert offset == len(first.encode())
    assert second == "!"


def test_an_unfinished_character_at_the_end_is_replaced_when_final() -> None:
    stream = OutputStream(1 << 20)
    _, text = stream.append("é".encode()[:1])
    assert text == ""
    _, text = stream.append(b"", final=True)
    assert text == "\ufffd"


def test_old_output_is_dropped_beyond_the_capacity_in_whole_characters() -> None:
    stream = OutputStream(64 * 1024)
    total = 0
    for _ in range(200):
        _, text = stream.append(TEXT.encode())
        total += len(text.encode())
    assert stream.end == total
    assert 64 * 1024 <= stream.kept <= 64 * 1024 + 16 * 1024
    assert stream.start == total - stream.kept
    # The oldest kept byte starts a character.
    stream.read(stream.start, 4).decode()


def test_read_stops_before_a_split_character_and_aligned_moves_past_one() -> None:
    stream = OutputStream(1 << 20)
    stream.append("a😀b".encode())
    assert stream.read(0, 3) == b"a"
    assert stream.aligned(2) == 5  # inside the emoji: the next character starts at 5
    assert stream.read(stream.aligned(2), 10) == b"b"


def test_aligned_clamps_into_the_kept_range() -> None:
    stream = OutputStream(64 * 1024)
    for _ in range(10):
        stream.append(b"x" * 20_000)
    assert stream.aligned(0) == stream.start
    assert stream.aligned(10**9) == stream.end


def test_text_between_offsets_is_the_kept_text() -> None:
    stream = OutputStream(1 << 20)
    stream.append(b"one\ntwo\nthree")
    assert stream.text(4, 7) == "two"
