"""A streaming scanner for the shell integration marks (OSC 133 and OSC 633) in terminal output.

The shell (see ``shell_integration``) writes ``ESC ] 133 ; A BEL`` and friends around prompts
and commands. The scanner finds them in the decoded output as it streams past, chunk by chunk,
without changing it: clients get the output untouched and ignore the marks as any terminal does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

MarkKind = Literal[
    "prompt_start", "command_start", "output_start", "command_end", "command_line", "cwd"
]

MAX_SEQUENCE = 8192
"""Characters an OSC sequence may span, ESC to terminator; a longer one is abandoned."""

_OSC = "\x1b]"
_ESC = "\x1b"
_BEL = "\x07"
_ST_FINAL = "\\"
_LETTERS: dict[str, MarkKind] = {
    "A": "prompt_start",
    "B": "command_start",
    "C": "output_start",
    "D": "command_end",
}
_ESCAPED = re.compile(r"\\(?:\\|x([0-9a-fA-F]{2}))")
# A complete OSC 133 or 633 sequence that stands for a mark (see parse_payload). Its payload
# holds no BEL or ESC: the first one ends it. Possessive: a failed candidate is not retried.
_MARK = re.compile(
    r"\x1b\]((?:133;[A-D]|633;[A-E])(?:;[^\x1b\x07]*+)?|633;P;Cwd=[^\x1b\x07]*+)(?:\x07|\x1b\\)"
)
_PAYLOAD_MAX = MAX_SEQUENCE - 3  # ESC, "]" and the terminator's first character


@dataclass(frozen=True, slots=True)
class Mark:
    kind: MarkKind
    offset: int  # stream offset (in UTF-8 bytes) of the mark's first byte (the ESC)
    end: int  # stream offset just after the mark's terminator
    value: str | None  # exit code text of command_end, the command line, the cwd path


def unescape(value: str) -> str:
    """Invert the shell's escaping: ``\\\\`` is a backslash, ``\\xHH`` the character HH."""
    if "\\" not in value:
        return value
    return _ESCAPED.sub(lambda match: chr(int(match[1], 16)) if match[1] else "\\", value)


def parse_payload(payload: str) -> tuple[MarkKind, str | None] | None:
    """The mark an OSC payload (between ``ESC ]`` and the terminator) stands for, if any."""
    code, _, rest = payload.partition(";")
    if code not in ("133", "633"):
        return None
    letter, separator, arguments = rest.partition(";")
    kind = _LETTERS.get(letter)
    if kind == "command_end":
        return kind, arguments.partition(";")[0] if separator else None
    if kind is not None:
        return kind, None
    if code != "633":
        return None
    # A literal ";" ends the value: the shell escapes its own, and VS Code appends a nonce.
    value = arguments.partition(";")[0]
    if letter == "E":
        return "command_line", unescape(value)
    if letter == "P" and value.startswith("Cwd="):
        return "cwd", unescape(value[4:])
    return None


def _byte_length(text: str) -> int:
    # surrogateescape: output decoded with it counts as the bytes it came from.
    return len(text.encode("utf-8", "surrogateescape"))


class MarkScanner:
    """Finds marks in consecutive chunks of decoded output, including marks split across chunks.

    The unfinished tail of a chunk (an OSC whose terminator has not arrived yet, or a final ESC)
    is kept, at most ``MAX_SEQUENCE`` characters, and completed with the next chunk.

    A chunk costs a few Python steps plus a few per mark found, whatever else it holds: complete
    marks are found by one regular expression, and only the chunk's last OSC can be unfinished.
    This rests on how an OSC ends: at the first BEL or ESC after its ``ESC ]`` (an ESC other than
    ST's cuts it short), so sequences never overlap and each ``ESC ]`` starts one.
    """

    __slots__ = ("_pending", "_searched")

    def __init__(self) -> None:
        self._pending = ""
        self._searched = 0  # how far into _pending a terminator is known to be absent

    def feed(self, text: str, offset: int) -> list[Mark]:
        """The marks that end in ``text``, whose first character is at stream byte ``offset``."""
        pending = self._pending
        if not pending:
            # One character searched for runs at memory speed: plain output costs next to nothing.
            return self._scan(text, offset) if _ESC in text else []
        self._pending = ""
        buffer = pending + text
        if pending.startswith(_OSC):
            # Still unfinished: keep it without searching again what was searched before.
            payload_end, end = _terminator(buffer, 0, max(2, self._searched))
            if end == _INCOMPLETE:
                self._keep(buffer, 0, payload_end)
                return []
        # The kept tail is the end of the previous chunk, so it sits just before ``offset``.
        return self._scan(buffer, offset - _byte_length(pending))

    def _scan(self, buffer: str, base: int) -> list[Mark]:
        marks: list[Mark] = []
        cursor, cursor_byte = 0, base  # a character index and its stream byte offset
        for match in _MARK.finditer(buffer):
            payload = match[1]
            found = parse_payload(payload) if len(payload) <= _PAYLOAD_MAX else None
            if found is not None:
                start, end = match.span()
                cursor_byte += _byte_length(buffer[cursor:start])
                end_byte = cursor_byte + _byte_length(buffer[start:end])
                marks.append(Mark(found[0], cursor_byte, end_byte, found[1]))
                cursor, cursor_byte = end, end_byte
        self._keep_tail(buffer)
        return marks

    def _keep_tail(self, buffer: str) -> None:
        """Keep the last OSC if it has no terminator yet, or else a final ESC."""
        last = buffer.rfind(_ESC)
        if last < 0:
            return
        if last + 1 == len(buffer):
            # A final ESC starts a sequence, or is the first half of the ST of an open OSC.
            start = buffer.rfind(_ESC, 0, last)
            if start >= 0 and _open_osc(buffer, start, last):
                self._keep(buffer, start, last)
            else:
                self._pending, self._searched = _ESC, 0
        elif _open_osc(buffer, last, len(buffer)):
            self._keep(buffer, last, len(buffer))

    def _keep(self, buffer: str, start: int, searched_to: int) -> None:
        self._pending = buffer[start:]
        self._searched = searched_to - start


def _open_osc(buffer: str, start: int, until: int) -> bool:
    """Whether an OSC starts at ``start``, with no BEL before ``until`` and still in its limit.

    ``until`` is the end of the buffer or the final ESC, and no other ESC lies between them.
    """
    return (
        buffer.startswith(_OSC, start)
        and until - start < MAX_SEQUENCE
        and buffer.find(_BEL, start + 2, until) < 0
    )


_INCOMPLETE = -1
_ABANDONED = -2


def _terminator(buffer: str, start: int, search_from: int) -> tuple[int, int]:
    """Where the payload of the OSC at ``start`` ends and where the sequence ends.

    The sequence end is ``_INCOMPLETE`` when more text is needed (the payload end then says how
    far the search got) or ``_ABANDONED`` when there is no valid terminator (the payload end then
    says where to scan on).
    """
    limit = min(len(buffer), start + MAX_SEQUENCE)
    bell = buffer.find(_BEL, search_from, limit)
    escape = buffer.find(_ESC, search_from, limit if bell < 0 else bell)
    if escape >= 0:
        if escape + 1 == len(buffer):
            return escape, _INCOMPLETE
        if buffer[escape + 1] == _ST_FINAL:
            return escape, escape + 2
        # Another escape sequence cuts the OSC short, as it does on a terminal.
        return escape, _ABANDONED
    if bell >= 0:
        return bell, bell + 1
    if limit == len(buffer) and len(buffer) - start < MAX_SEQUENCE:
        return limit, _INCOMPLETE
    return limit, _ABANDONED
