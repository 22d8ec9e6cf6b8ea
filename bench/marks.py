"""Mark scanner cost per chunk of output, by content: what a session's reader spends on the loop.

    python bench/marks.py [--chunks 64]

Feeds 128 KiB chunks to one ``MarkScanner`` and prints the milliseconds per chunk for plain
text, text full of abandoned OSC introducers (``ESC ] 133 ;`` with no terminator), other escape
sequences (colours), and complete marks. The scanner runs on the event loop for every read of
every session, so a chunk should cost about the same whatever it holds. Reports, never fails.
"""

from __future__ import annotations

import argparse
import time

from devpocket.terminal.marks import MarkScanner

CHUNK = 128 * 1024
CONTENTS = {
    "plain text": "ls -la /usr/share/doc\r\n",
    "abandoned introducers": "\x1b]133;",
    "colours": "\x1b[1;32mok\x1b[0m ",
    "bare escapes": "\x1b",
    "complete marks": "\x1b]133;A\x07$ \x1b]133;B\x07ls\r\n\x1b]133;C\x07x\x1b]133;D;0\x07",
}


def _chunk(pattern: str) -> str:
    return (pattern * (CHUNK // len(pattern) + 1))[:CHUNK]


def per_chunk_ms(pattern: str, chunks: int) -> tuple[float, int]:
    """Milliseconds per chunk, and the marks found in all of them."""
    text = _chunk(pattern)
    scanner = MarkScanner()
    found = 0
    started = time.perf_counter()
    for index in range(chunks):
        found += len(scanner.feed(text, index * CHUNK))
    return (time.perf_counter() - started) * 1000 / chunks, found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=64)
    args = parser.parse_args()
    for name, pattern in CONTENTS.items():
        ms, found = per_chunk_ms(pattern, args.chunks)
        print(f"{name:>22}: {ms:8.3f} ms per 128 KiB chunk, {found} marks")


if __name__ == "__main__":
    main()
