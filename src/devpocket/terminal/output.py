"""A session's output: UTF-8 text numbered by byte offset, of which the last part is kept.

Offsets count bytes of the UTF-8 text the server sends, not bytes read from the PTY: what the
PTY gives is decoded incrementally (a character split across two reads waits for its second
half) with invalid bytes replaced by U+FFFD, and the text is stored re-encoded. A client adds
the UTF-8 length of each frame's ``data`` to the frame's ``seq`` and gets the next offset, so
the offsets it computes and the ones kept here always agree.
"""

from __future__ import annotations

import codecs

# Continuation bytes of UTF-8 are 0b10xxxxxx: a chunk must neither start nor end inside one.
_CONTINUATION_MASK = 0xC0
_CONTINUATION = 0x80


def _is_continuation(byte: int) -> bool:
    return byte & _CONTINUATION_MASK == _CONTINUATION


class OutputStream:
    """The numbered output; keeps at least ``capacity`` bytes, at most a quarter more.

    Dropping old output happens in steps of a quarter of the capacity: moving the kept bytes
    down once per step costs a few copies of the buffer, instead of one per read.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._slack = max(capacity // 4, 1)
        self._buffer = bytearray()
        self._start = 0
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")

    @property
    def start(self) -> int:
        """The offset of the oldest byte still kept."""
        return self._start

    @property
    def end(self) -> int:
        """The offset the next output will have: the total length of the stream so far."""
        return self._start + len(self._buffer)

    @property
    def kept(self) -> int:
        return len(self._buffer)

    def append(self, raw: bytes, *, final: bool = False) -> tuple[int, str]:
        """Add what the PTY gave; answer the offset and text of what became complete."""
        text = self._decoder.decode(raw, final)
        offset = self.end
        if text:
            self._buffer += text.encode()
            if len(self._buffer) > self.capacity + self._slack:
                self._drop(len(self._buffer) - self.capacity)
        return offset, text

    def _drop(self, count: int) -> None:
        while count < len(self._buffer) and _is_continuation(self._buffer[count]):
            count += 1
        del self._buffer[:count]
        self._start += count

    def aligned(self, offset: int) -> int:
        """``offset`` moved into the kept range and forward to the start of a character."""
        offset = min(max(offset, self._start), self.end)
        index = offset - self._start
        while index < len(self._buffer) and _is_continuation(self._buffer[index]):
            index += 1
        return self._start + index

    def read(self, offset: int, limit: int) -> bytes:
        """Up to ``limit`` bytes from ``offset`` (aligned and kept), whole characters only."""
        index = offset - self._start
        stop = min(index + limit, len(self._buffer))
        if stop < len(self._buffer):
            while stop > index and _is_continuation(self._buffer[stop]):
                stop -= 1
        return bytes(self._buffer[index:stop])

    def text(self, begin: int, end: int) -> str:
        """The kept text between two offsets (clipped to what is kept), for a block's output."""
        begin = self.aligned(begin)
        end = self.aligned(end)
        return self._buffer[begin - self._start : end - self._start].decode("utf-8", "replace")
