"""Terminal benchmarks: output throughput, keystroke echo, many sessions, reattach with replay.

    python bench/terminal.py [--quick] [--output reports/bench-terminal.json]

One `devpocket serve` process on SQLite (production mode, as bench/run.py runs it) with local
shells (/bin/bash, each with a clean temporary HOME), driven over `/ws/terminal` by `websockets`
clients in this process. Measures:
- output throughput: 64 MiB from a session's shell to a client, uncompressed and with
  permessage-deflate, in MB/s (10^6 bytes) and as a share of the ceiling: the same output read
  straight from a PTY master, no server, measured just before each run. Three rounds of each
  (one with --quick); the round with the median share is the figure, every round is reported;
- keystroke echo: a character or a backspace sent, until its echo arrives; p50 and p99 over 500
  keystrokes 10 ms apart, idle and while another process signs in as fast as the server lets
  it; beside them, the same keystrokes typed into bash on a PTY with no server, a bare FastAPI
  WebSocket echo, list_sessions round trips (the WebSocket path without the shell), 300
  keystrokes back to back (each sent as the last echo arrives: warm caches), and a fixed piece of
  Python timed back to back and after a 10 ms sleep (what waking from a pause costs here);
- 200 sessions, a socket each, printing a line every 100 ms for 20 s (`read -t 0.1` waits, as
  `sleep 0.1` would fork 2000 times a second): lines received, how far behind the sessions' ends
  the sockets are, the server's CPU and resident memory per session (the shells are processes of
  their own); measured first, as memory freed by the other parts would hide theirs;
- reattach: a new socket asking for the last 2 MiB of a session, until it has all of it (20 times).
CPU use of the server, of this process and of the machine is reported beside the figures, and
how busy the machine was before the run: on a machine doing other work no figure holds.
--quick: 100 keystrokes, 50 sessions for 5 s, 5 reattaches, one output round. Prints each
figure next to its target and writes a JSON report. Fails (exit 1) on a protocol error, lost or
repeated output or a session error, not on timings.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import operator
import os
import re
import select
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from multiprocessing.queues import SimpleQueue
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

import httpx
import orjson
import uvloop
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import server  # noqa: E402 - bench/ is the script's directory, as for bench/run.py
from report import percentile  # noqa: E402

MB = 1_000_000
OUTPUT_BYTES = 64 * 1024 * 1024
PRINT = f"head -c {OUTPUT_BYTES} /dev/zero | tr '\\000' 'a'"
REPLAY_BYTES = 2 * 1024 * 1024
FILL = "head -c 2200000 /dev/zero | tr '\\000' 'b'; echo fill-$((1+1))\r"
# A line every 100 ms. read -t, a builtin, waits on the terminal (nothing is typed) where sleep
# would fork: 200 shells forking 10 times a second keep 2 CPUs busy on their own.
LOOP = 'n=0; while :; do echo "line $((n+=1))"; read -t 0.1; done\r'
LINE_PERIOD_S = 0.1
PROMPT_END = "\x1b]133;B\x07"  # the shell integration's mark after every prompt
KEY_GAP_S = 0.01  # between keystrokes: 100 frames/s, half the server's default frame budget
BACK_TO_BACK_KEYS = 300  # each key sent when the last one's echo arrives, no pause
LOGIN_CLIENTS = 6
ACCOUNT = {"email": "term@example.com", "username": "termbench", "password": "bench-Passw0rd-x"}
_RUN = re.compile("a+")
_FAILURES = frozenset({"error", "session_error", "output_lost"})


PHASES = ("many_sessions", "output", "keystroke_echo", "reattach")


class ProtocolError(server.ServerError):
    """A frame the protocol does not allow, lost or repeated output, or a session error."""


@dataclass(frozen=True)
class Plan:
    keystrokes: int
    sessions: int
    window_s: float
    reattaches: int
    output_rounds: int
    phases: tuple[str, ...] = ()  # all when empty


# A client -----------------------------------------------------------------------------------------


@dataclass
class Terminal:
    """One socket attached to one session: offsets followed, failures raised."""

    socket: ClientConnection
    session_id: str | None = None
    next_seq: int = 0
    pending: str = ""
    controls: list[dict[str, Any]] = field(default_factory=list)
    transcript: list[str] | None = None

    async def send(self, kind: str, data: Any) -> None:
        frame = {"type": kind, "data": data, "sessionId": self.session_id}
        await self.socket.send(orjson.dumps(frame).decode())

    async def type(self, text: str) -> None:
        await self.send("data", text)

    async def frame(self) -> dict[str, Any]:
        frame: dict[str, Any] = orjson.loads(await self.socket.recv())
        if frame.get("type") == "data":
            self._follow(frame)
        elif frame.get("type") == "control":
            self.controls.append(frame["data"])
            if frame["data"].get("action") in _FAILURES:
                raise ProtocolError(f"session {self.session_id}: {frame['data']}")
        return frame

    def _follow(self, frame: dict[str, Any]) -> None:
        if frame.get("sessionId") != self.session_id or frame.get("seq") != self.next_seq:
            raise ProtocolError(
                f"output of {frame.get('sessionId')} at offset {frame.get('seq')}: expected "
                f"{self.session_id} at {self.next_seq} (output lost or sent twice)"
            )
        self.next_seq += len(frame["data"].encode())
        if self.transcript is not None:
            self.transcript.append(frame["data"])

    async def output(self) -> str:
        """The next output; a session that ends here is an error."""
        while True:
            frame = await self.frame()
            if frame["type"] == "data":
                text: str = frame["data"]
                return text
            if frame["type"] == "control" and frame["data"].get("action") == "session_closed":
                raise ProtocolError(f"session {self.session_id} ended: {frame['data']}")

    async def wait_for(self, token: str, timeout: float = 30) -> None:  # noqa: ASYNC109
        """Read output until ``token`` (then forget the output up to its end)."""
        async with asyncio.timeout(timeout):
            while token not in self.pending:
                self.pending = self.pending[-64:] + await self.output()
        self.pending = self.pending[self.pending.index(token) + len(token) :]

    async def create(self, home: Path) -> None:
        """Start a local shell, and wait for its prompt after a first command."""
        self.next_seq = 0
        options = {"cols": 120, "rows": 40, "env": {"HOME": str(home)}}
        await self.send("control", {"action": "create_session", "type": "local", **options})
        async with asyncio.timeout(30):
            while self.session_id is None:
                frame = await self.frame()
                if frame["type"] == "control" and frame["data"]["action"] == "session_created":
                    self.session_id = frame["data"]["session_id"]
        await self.type("echo ready-$((20+22))\r")
        await self.wait_for("ready-42")
        await self.wait_for(PROMPT_END)

    async def close_session(self) -> None:
        await self.send("control", {"action": "close_session", "session_id": self.session_id})
        async with asyncio.timeout(30):
            while not self.controls or self.controls[-1].get("action") != "session_closed":
                await self.frame()


@contextlib.asynccontextmanager
async def terminal(url: str, compression: str | None = None) -> AsyncIterator[Terminal]:
    async with connect(url, max_size=None, compression=compression) as socket:
        yield Terminal(socket)


def _summary(samples: list[float]) -> dict[str, float]:
    return {
        "count": len(samples),
        "p50_ms": round(statistics.median(samples), 3),
        "p99_ms": round(percentile(samples, 0.99), 3),
        "max_ms": round(max(samples), 3),
    }


# The server, and where the time goes --------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    server: server.Server
    url: str  # the terminal socket, with the access token
    home: Path  # every shell's HOME: the machine's own startup files are not measured


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process (not of its children), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_ticks() -> tuple[int, int]:
    """Busy and all CPU ticks of the machine, every CPU together, from /proc/stat."""
    ticks = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(ticks) - ticks[3] - ticks[4], sum(ticks)  # idle and iowait are not busy


class Usage:
    """CPU use of the server, of this benchmark and of the whole machine since creation."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.start = self._read()

    def _read(self) -> tuple[float, float, int, int, float]:
        return (cpu_seconds(self.pid), time.process_time(), *machine_ticks(), time.perf_counter())

    def percent(self) -> dict[str, float]:
        """Shares of one CPU for the processes; of all CPUs for the machine."""
        then, now = self.start, self._read()
        wall = now[4] - then[4]
        return {
            "server_cpu_pct": round(100 * (now[0] - then[0]) / wall, 1),
            "bench_cpu_pct": round(100 * (now[1] - then[1]) / wall, 1),
            "machine_busy_pct": round(100 * (now[2] - then[2]) / max(now[3] - then[3], 1), 1),
        }


# 1, 2. Output throughput --------------------------------------------------------------------------


def pty_ceiling_mb_s() -> float:
    """The 64 MiB read straight from a PTY master: what any server could pass on at most."""
    master, slave = os.openpty()
    started = time.perf_counter()
    process = subprocess.Popen(
        ["bash", "--norc", "-c", PRINT], stdin=slave, stdout=slave, stderr=slave,
        start_new_session=True,
    )  # fmt: skip
    os.close(slave)
    received = 0
    with contextlib.suppress(OSError):  # EIO: the program and its terminal are gone
        while chunk := os.read(master, 65536):
            received += len(chunk)
    elapsed = time.perf_counter() - started
    process.wait()
    os.close(master)
    if received != OUTPUT_BYTES:
        raise server.ServerError(f"the PTY gave {received} bytes, not {OUTPUT_BYTES}")
    return round(received / elapsed / MB, 1)


class Runs:
    """The longest run of ``a`` across consecutive chunks of text."""

    def __init__(self) -> None:
        self.current = 0
        self.longest = 0

    def feed(self, text: str) -> None:
        carried, self.current = self.current, 0
        for match in _RUN.finditer(text):
            length = match.end() - match.start() + (carried if match.start() == 0 else 0)
            self.longest = max(self.longest, length)
            self.current = length if match.end() == len(text) else 0


async def throughput(target: Target, compression: str | None) -> dict[str, Any]:
    """64 MiB of ``a`` printed by a shell; checks that each one arrives, and only once."""
    async with terminal(target.url, compression) as term:
        await term.create(target.home)
        runs, tail, frames, begin = Runs(), "", 0, term.next_seq
        usage, started = Usage(target.server.process.pid), time.perf_counter()
        await term.type(PRINT + "; echo done-$((1+1))\r")
        async with asyncio.timeout(300):
            while "done-2" not in tail:
                text = await term.output()
                runs.feed(text)
                tail, frames = tail[-8:] + text, frames + 1
        elapsed, cpu = time.perf_counter() - started, usage.percent()
        extensions = [type(ext).__name__ for ext in term.socket.protocol.extensions]
        received = term.next_seq - begin
        await term.close_session()
    if runs.longest != OUTPUT_BYTES:
        raise ProtocolError(f"{runs.longest} of the {OUTPUT_BYTES} characters printed arrived")
    return {
        "compression": compression or "none", "extensions": extensions, "bytes": received,
        "frames": frames, "seconds": round(elapsed, 3),
        "mb_s": round(received / elapsed / MB, 1), **cpu,
    }  # fmt: skip


async def output_phase(target: Target, rounds: int) -> dict[str, Any]:
    """Each mode ``rounds`` times, each time right after a ceiling reading of its own; the
    round with the median share of its ceiling is the figure, all of them are in the report.

    One run is too little here: on two shared CPUs the same code measured 95 and 165 MB/s in
    consecutive runs (the printing program, the relay, the server and this client compete)."""
    part: dict[str, Any] = {"rounds": rounds}
    for mode in (None, "deflate"):
        measured = []
        for _ in range(rounds):
            ceiling = await asyncio.to_thread(pty_ceiling_mb_s)
            run = await throughput(target, mode)
            run["ceiling_mb_s"] = ceiling
            run["share_of_ceiling_pct"] = round(100 * run["mb_s"] / ceiling, 1)
            measured.append(run)
        ordered = sorted(measured, key=lambda run: run["share_of_ceiling_pct"])
        median = ordered[len(ordered) // 2]
        part[mode or "uncompressed"] = {
            **median,
            "all_runs": [
                {key: run[key] for key in ("mb_s", "ceiling_mb_s", "share_of_ceiling_pct")}
                for run in measured
            ],
        }
    return part


# 3. Keystroke echo --------------------------------------------------------------------------------


def pty_echo_floor(count: int, home: Path) -> dict[str, float]:
    """The same keystrokes typed into bash on a PTY read straight from its master, no server."""
    master, slave = os.openpty()
    env = {"HOME": str(home), "PATH": os.environ["PATH"], "TERM": "xterm-256color", "PS1": "$ "}
    process = subprocess.Popen(
        ["bash", "--norc", "-i"], stdin=slave, stdout=slave, stderr=slave, env=env,
        start_new_session=True,
    )  # fmt: skip
    os.close(slave)
    try:
        _pty_wait(master, b"echo ready-$((20+22))\r", b"ready-42")
        while select.select([master], [], [], 0.2)[0]:  # the prompt, until it is all there
            os.read(master, 65536)
        samples = []
        for n in range(count):
            key, echo = (b"x", b"x") if n % 2 == 0 else (b"\x7f", b"\b")
            samples.append(_pty_wait(master, key, echo))
            time.sleep(KEY_GAP_S)
    finally:
        process.kill()
        process.wait()
        os.close(master)
    return _summary(samples)


def _pty_wait(master: int, key: bytes, echo: bytes) -> float:
    """Milliseconds from writing ``key`` until ``echo`` has been read."""
    started, seen = time.perf_counter(), b""
    os.write(master, key)
    while echo not in seen:
        if not select.select([master], [], [], 10)[0]:
            raise server.ServerError(f"bash on a PTY did not echo {echo!r}")
        seen += os.read(master, 65536)
    return (time.perf_counter() - started) * 1000


async def echo_times(term: Terminal, count: int, gap: float = KEY_GAP_S) -> list[float]:
    """A character, then a backspace, and so on: milliseconds until each one's echo."""
    samples: list[float] = []
    for n in range(count):
        key, echo = ("x", "x") if n % 2 == 0 else ("\x7f", "\b")
        term.pending = ""
        started = time.perf_counter()
        await term.type(key)
        await term.wait_for(echo, 10)
        samples.append((time.perf_counter() - started) * 1000)
        await asyncio.sleep(gap)
    return samples


def _frame_work() -> None:
    """What a client does per keystroke, roughly: a frame encoded, one decoded, a timestamp."""
    frame = orjson.loads(orjson.dumps({"type": "data", "data": "x", "sessionId": "s", "seq": 1}))
    for key in frame:
        frame[key] = str(frame[key])
    datetime.now(UTC).isoformat()


def idle_penalty(count: int) -> dict[str, float]:
    """The same few microseconds of Python timed back to back, and each after a KEY_GAP_S sleep.

    A process that has slept runs its next instructions from cold caches; on a virtual machine
    the CPU it wakes on may also have run other guests meanwhile. Every process on the echo's
    path (this client, the server, the shell, the relay) pays this after each pause.
    """
    result = {}
    for name, gap in (("back_to_back_us", 0.0), ("after_gap_us", KEY_GAP_S)):
        samples = []
        for _ in range(count):
            if gap:
                time.sleep(gap)
            started = time.perf_counter()
            _frame_work()
            samples.append((time.perf_counter() - started) * 1_000_000)
        result[name] = round(statistics.median(samples), 1)
    return result


async def control_times(term: Terminal, count: int) -> list[float]:
    """list_sessions, answered without the shell: the WebSocket path alone, at the same pace."""
    samples: list[float] = []
    for _ in range(count):
        seen = len(term.controls)
        started = time.perf_counter()
        await term.send("control", {"action": "list_sessions"})
        async with asyncio.timeout(10):
            while not any(c.get("action") == "sessions" for c in term.controls[seen:]):
                await term.frame()
        samples.append((time.perf_counter() - started) * 1000)
        await asyncio.sleep(KEY_GAP_S)
    return samples


def hammer_logins(base_url: str, stop: Event, results: SimpleQueue[tuple[int, int, float]]) -> None:
    """In a process of its own: logins from several clients at once until ``stop``."""
    results.put(asyncio.run(_hammer(base_url, stop)))


async def _hammer(base_url: str, stop: Event) -> tuple[int, int, float]:
    counts = [0, 0]  # answered 200, answered otherwise
    body = {"email": ACCOUNT["email"], "password": ACCOUNT["password"]}

    async def client(http: httpx.AsyncClient) -> None:
        while not stop.is_set():
            response = await http.post("/api/v1/auth/login", json=body)
            counts[response.status_code != 200] += 1

    started = time.perf_counter()
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as http:
        await asyncio.gather(*(client(http) for _ in range(LOGIN_CLIENTS)))
    return counts[0], counts[1], time.perf_counter() - started


async def under_logins(term: Terminal, target: Target, count: int) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    stop, results = context.Event(), context.SimpleQueue()
    hammer = context.Process(target=hammer_logins, args=(target.server.base_url, stop, results))
    hammer.start()
    try:
        await asyncio.sleep(2)  # the process starts, and the logins get going
        usage = Usage(target.server.process.pid)
        samples = await echo_times(term, count)
        cpu = usage.percent()
    finally:
        stop.set()
        await asyncio.to_thread(hammer.join, 60)
    ok, failed, seconds = results.get()
    if failed:
        raise server.ServerError(f"{failed} of {ok + failed} logins were refused")
    return {**_summary(samples), "logins": ok, "logins_per_s": round(ok / seconds, 1), **cpu}


async def bare_echo_times(count: int) -> list[float]:
    """The keystroke's frame echoed by a bare FastAPI WebSocket (bench/bare_app.py), same pace."""
    log = ROOT / "reports" / "bench-terminal-bare.log"
    with server.serving("bare", server.bare_command(), {**os.environ}, log, "/bare") as srv:
        url = srv.base_url.replace("http://", "ws://") + "/echo"
        async with connect(url, max_size=None, compression=None) as socket:
            samples: list[float] = []
            for n in range(count):
                frame = {"type": "data", "data": "x" if n % 2 == 0 else "\x7f", "sessionId": "s"}
                started = time.perf_counter()
                await socket.send(orjson.dumps(frame).decode())
                orjson.loads(await socket.recv())
                samples.append((time.perf_counter() - started) * 1000)
                await asyncio.sleep(KEY_GAP_S)
    return samples


async def echo_phase(target: Target, count: int) -> dict[str, Any]:
    floor = await asyncio.to_thread(pty_echo_floor, count, target.home)
    bare = _summary(await bare_echo_times(count))
    async with terminal(target.url) as term:
        await term.create(target.home)
        control = _summary(await control_times(term, count))
        idle = _summary(await echo_times(term, count))
        # Within the frame budget's burst (two seconds' worth at the default 200 frames/s).
        warm = _summary(await echo_times(term, min(count, BACK_TO_BACK_KEYS), gap=0.0))
        loaded = await under_logins(term, target, count)
        await term.close_session()
    return {
        "gap_ms": KEY_GAP_S * 1000, "pty_floor": floor, "bare_websocket": bare,
        "list_sessions": control, "idle": idle, "back_to_back": warm,
        "idle_penalty": idle_penalty(count), "under_logins": loaded, "login_clients": LOGIN_CLIENTS,
    }  # fmt: skip


# 4. Many sessions ---------------------------------------------------------------------------------


async def start_sessions(
    target: Target, count: int, stack: contextlib.AsyncExitStack
) -> list[Terminal]:
    terms = [await stack.enter_async_context(terminal(target.url)) for _ in range(count)]
    gate = asyncio.Semaphore(8)

    async def start(term: Terminal) -> None:
        async with gate:
            await term.create(target.home)
            await term.type(LOOP)
            await term.wait_for("line 1\r\n")

    await asyncio.gather(*(start(term) for term in terms))
    return terms


async def count_lines(term: Terminal, lines: list[int], index: int) -> None:
    while True:
        lines[index] += (await term.output()).count("\n")


async def session_ends(url: str) -> dict[str, int]:
    """Each session's output offset, from the server (one more socket asks)."""
    async with terminal(url) as asker:
        await asker.send("control", {"action": "list_sessions"})
        async with asyncio.timeout(30):
            while not asker.controls or asker.controls[-1].get("action") != "sessions":
                await asker.frame()
    return {s["session_id"]: s["output_offset"] for s in asker.controls[-1]["sessions"]}


async def observe(target: Target, terms: list[Terminal], seconds: float) -> dict[str, Any]:
    """Lines each socket receives (readers run), CPU use, memory, and how far behind they are."""
    lines = [0] * len(terms)
    readers = [asyncio.create_task(count_lines(t, lines, n)) for n, t in enumerate(terms)]
    try:
        await asyncio.sleep(1)  # what was printed before is read
        before, usage = list(lines), Usage(target.server.process.pid)
        await asyncio.sleep(seconds)
        counted = [after - first for after, first in zip(lines, before, strict=True)]
        found = {"cpu": usage.percent(), "rss_kib": target.server.rss_kib()}
        ends = await session_ends(target.url)
        await asyncio.sleep(0.5)
        behind = [ends[t.session_id] - t.next_seq for t in terms if t.session_id]
    finally:
        for reader in readers:
            reader.cancel()
        failures = await asyncio.gather(*readers, return_exceptions=True)
    for failure in failures:
        if isinstance(failure, BaseException) and not isinstance(failure, asyncio.CancelledError):
            raise failure
    return {"lines": counted, "behind": [lag for lag in behind if lag > 0], **found}


async def sessions_phase(target: Target, plan: Plan) -> dict[str, Any]:
    async with terminal(target.url) as warm_up:  # code that runs once per process is loaded
        await warm_up.create(target.home)
        await warm_up.close_session()
    rss_before = target.server.rss_kib()
    async with contextlib.AsyncExitStack() as stack:
        terms = await start_sessions(target, plan.sessions, stack)
        seen = await observe(target, terms, plan.window_s)
        relay_kib = relay_rss_kib(target.server.process.pid)
        await asyncio.gather(*(term.close_session() for term in terms))
    expected, lines = plan.window_s / LINE_PERIOD_S, seen["lines"]
    return {
        "sessions": plan.sessions, "sockets": plan.sessions, "window_s": plan.window_s,
        "lines_expected": expected, "lines_min": min(lines),
        "lines_median": statistics.median(lines),
        "lines_min_share_pct": round(100 * min(lines) / expected, 1),
        "sessions_behind": len(seen["behind"]), "behind_max_bytes": max(seen["behind"] or [0]),
        **seen["cpu"],
        "rss_before_mib": round(rss_before / 1024, 1),
        "rss_with_mib": round(seen["rss_kib"] / 1024, 1),
        "rss_per_session_mib": round((seen["rss_kib"] - rss_before) / 1024 / plan.sessions, 3),
        "relay_rss_mib": round(relay_kib / 1024, 1),
    }  # fmt: skip


def relay_rss_kib(server_pid: int) -> int:
    """The resident memory of the server's PTY relay (one per worker, not per session)."""
    for status in Path("/proc").glob("[0-9]*/status"):
        with contextlib.suppress(OSError):
            fields = dict(
                line.split(":", 1) for line in status.read_text().splitlines() if ":" in line
            )
            cmdline = (status.parent / "cmdline").read_bytes()
            if int(fields["PPid"]) == server_pid and b"pty_relay" in cmdline:
                return int(fields["VmRSS"].split()[0])
    raise server.ServerError("the server's PTY relay is not running")


# 5. Reattach --------------------------------------------------------------------------------------


async def replay(url: str, session_id: str, since: int, expected: bytes) -> float:
    """Milliseconds from attach_session on a new socket until it has the session's end."""
    end = since + len(expected)
    async with terminal(url) as term:
        term.session_id, term.next_seq, term.transcript = session_id, since, []
        started = time.perf_counter()
        await term.send(
            "control", {"action": "attach_session", "session_id": session_id, "since": since}
        )
        async with asyncio.timeout(30):
            while term.next_seq < end:
                await term.output()
        elapsed = (time.perf_counter() - started) * 1000
    attached = [c for c in term.controls if c.get("action") == "session_attached"]
    wanted = {"seq": since, "lost": 0, "output_offset": end}
    if not attached or {key: attached[0].get(key) for key in wanted} != wanted:
        raise ProtocolError(f"attach_session since {since} (end {end}) answered {attached}")
    if "".join(term.transcript).encode() != expected:
        raise ProtocolError("the replayed output differs from the output first received")
    return elapsed


async def reattach_phase(target: Target, count: int) -> dict[str, Any]:
    async with terminal(target.url) as term:
        term.transcript = []
        await term.create(target.home)
        await term.type(FILL)
        await term.wait_for("fill-2")
        await term.wait_for(PROMPT_END)
    session_id, since = term.session_id, term.next_seq - REPLAY_BYTES
    expected = "".join(term.transcript).encode()[since:]
    assert session_id is not None
    samples = [await replay(target.url, session_id, since, expected) for _ in range(count)]
    async with terminal(target.url) as closer:
        closer.session_id = session_id
        await closer.close_session()
    return {
        "replay_bytes": REPLAY_BYTES,
        "count": count,
        "median_ms": round(statistics.median(samples), 2),
        "max_ms": round(max(samples), 2),
    }


# The run ------------------------------------------------------------------------------------------


def register(base_url: str) -> str:
    with httpx.Client(base_url=base_url, timeout=30) as client:
        answer = client.post("/api/v1/auth/register", json=ACCOUNT)
    if answer.status_code != 201:
        raise server.ServerError(f"register answered {answer.status_code}")
    token: str = answer.json()["data"]["access_token"]
    return token


async def measure(srv: server.Server, home: Path, plan: Plan, report: dict[str, Any]) -> None:
    """Each part in turn; what is measured before a failure stays in ``report``."""
    report["running"] = "register"
    token = register(srv.base_url)
    url = srv.base_url.replace("http://", "ws://") + f"/ws/terminal?token={token}"
    target = Target(srv, url, home)
    phases = (
        ("many_sessions", partial(sessions_phase, target, plan)),
        ("output", partial(output_phase, target, plan.output_rounds)),
        ("keystroke_echo", partial(echo_phase, target, plan.keystrokes)),
        ("reattach", partial(reattach_phase, target, plan.reattaches)),
    )
    for name, phase in phases:
        if plan.phases and name not in plan.phases:
            continue
        report["running"] = name
        report[name] = await phase()
    del report["running"]


def machine_meta() -> dict[str, Any]:
    """The machine, and how busy it was just before the run: other work skews every figure."""
    first = machine_ticks()
    time.sleep(1)
    busy, total = (now - then for now, then in zip(machine_ticks(), first, strict=True))
    return {"cpus": os.cpu_count(), "busy_before_pct": round(100 * busy / max(total, 1), 1)}


def run(plan: Plan) -> tuple[dict[str, Any], str | None]:
    report: dict[str, Any] = {"plan": vars(plan), "machine": machine_meta()}
    log = ROOT / "reports" / "bench-terminal-server.log"
    with tempfile.TemporaryDirectory(prefix="devpocket-bench-terminal-") as tmp:
        home = Path(tmp) / "home"
        home.mkdir()
        env = server.devpocket_environment(
            Path(tmp), ALLOW_LOCAL_SHELL="true", TERMINAL_SHELL="/bin/bash",
            TERMINAL_SESSIONS_PER_USER_FREE="1000", TERMINAL_SESSIONS_MAX="1000",
        )  # fmt: skip
        command = server.devpocket_command()
        try:
            with server.serving("devpocket", command, env, log, "/health/live") as srv:
                uvloop.run(measure(srv, home, plan, report))
                srv.check_alive()
        except TimeoutError:  # before OSError, of which it is a kind
            return report, f"{report['running']}: an answer or some output never came"
        except (server.ServerError, WebSocketException, httpx.HTTPError, OSError) as error:
            return report, f"{report['running']}: {type(error).__name__}: {error}"
    return report, None


# The summary --------------------------------------------------------------------------------------

Row = tuple[str, str, str, bool | None]
_OPS = {">=": operator.ge, "<=": operator.le, "<": operator.lt}


def _row(label: str, value: float, unit: str, target: tuple[str, float] | None = None) -> Row:
    if target is None:
        return label, f"{value} {unit}", "", None
    op, limit = target
    return label, f"{value} {unit}", f"{op} {limit:g} {unit}", bool(_OPS[op](value, limit))


def output_rows(part: dict[str, Any]) -> list[Row]:
    rows = []
    for name in ("uncompressed", "deflate"):
        run = part[name]
        label = f"median of {part['rounds']}" if part["rounds"] > 1 else "one run"
        rows.append(_row(f"output throughput, {name} ({label})", run["mb_s"], "MB/s", (">=", 80)))
        rows.append(_row("  its PTY ceiling, no server (64 MiB)", run["ceiling_mb_s"], "MB/s"))
        rows.append(_row("  share of the ceiling", run["share_of_ceiling_pct"], "%", (">=", 70)))
        every = ", ".join(f"{r['mb_s']:g}" for r in run["all_runs"])
        rows.append(("  every run", f"{every} MB/s", "", None))
    return rows


def echo_rows(part: dict[str, Any]) -> list[Row]:
    idle, loaded = part["idle"], part["under_logins"]
    floor, control, bare = part["pty_floor"], part["list_sessions"], part["bare_websocket"]
    warm, penalty, gap_ms = part["back_to_back"], part["idle_penalty"], part["gap_ms"]
    return [
        _row(f"keystroke echo p50 ({idle['count']} keys)", idle["p50_ms"], "ms", ("<=", 0.5)),
        _row("keystroke echo p99", idle["p99_ms"], "ms", ("<=", 2)),
        _row("  bash on a PTY, no server: p50", floor["p50_ms"], "ms"),
        _row("  bash on a PTY, no server: p99", floor["p99_ms"], "ms"),
        _row("  bare FastAPI WebSocket echo: p50", bare["p50_ms"], "ms"),
        _row("  bare FastAPI WebSocket echo: p99", bare["p99_ms"], "ms"),
        _row("  list_sessions round trip, no shell: p50", control["p50_ms"], "ms"),
        _row("  list_sessions round trip, no shell: p99", control["p99_ms"], "ms"),
        _row(f"  echo p50, back to back ({warm['count']} keys)", warm["p50_ms"], "ms"),
        _row("  echo p99, back to back", warm["p99_ms"], "ms"),
        _row("  a frame's Python work, back to back: median", penalty["back_to_back_us"], "us"),
        _row(f"  the same after {gap_ms:g} ms asleep: median", penalty["after_gap_us"], "us"),
        _row("keystroke echo p50, logins flat out", loaded["p50_ms"], "ms"),
        _row("keystroke echo p99, logins flat out", loaded["p99_ms"], "ms", ("<=", 10)),
        _row("  logins meanwhile", loaded["logins_per_s"], "/s"),
    ]


def reattach_rows(part: dict[str, Any]) -> list[Row]:
    label = f"reattach, 2 MiB replayed ({part['count']} times)"
    return [
        _row(f"{label}, median", part["median_ms"], "ms", ("<", 100)),
        _row(f"{label}, max", part["max_ms"], "ms", ("<", 100)),
    ]


def sessions_rows(part: dict[str, Any]) -> list[Row]:
    label = f"{part['sessions']} sessions"
    return [
        _row(f"{label}: lines received, fewest", part["lines_min_share_pct"], "%", (">=", 90)),
        _row(f"{label}: sockets behind the end", part["sessions_behind"], "", ("<=", 0)),
        _row(f"{label}: server CPU", part["server_cpu_pct"], "%"),
        _row(f"{label}: server RSS before", part["rss_before_mib"], "MiB"),
        _row(f"{label}: server RSS with them", part["rss_with_mib"], "MiB"),
        _row(f"{label}: server RSS per session", part["rss_per_session_mib"], "MiB", ("<=", 0.5)),
        _row(f"{label}: PTY relay RSS (one per worker)", part["relay_rss_mib"], "MiB"),
    ]


def summary_rows(report: dict[str, Any]) -> list[Row]:
    builders = (
        ("output", output_rows),
        ("keystroke_echo", echo_rows),
        ("reattach", reattach_rows),
        ("many_sessions", sessions_rows),
    )
    return [row for name, build in builders if name in report for row in build(report[name])]


def table(rows: list[Row]) -> str:
    lines = [f"{'':48} {'measured':>14}  {'target':<14}"]
    for label, value, target, met in rows:
        verdict = "" if met is None else ("met" if met else "MISSED")
        lines.append(f"{label:48} {value:>14}  {target:<14} {verdict}".rstrip())
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="100 keys, 50 sessions for 5 s, one output run"
    )
    parser.add_argument("--output", type=Path, default=ROOT / "reports" / "bench-terminal.json")
    parser.add_argument(
        "--phase",
        action="append",
        choices=PHASES,
        default=[],
        help="run only this part (repeatable); default all",
    )
    args = parser.parse_args()
    counts = (100, 50, 5.0, 5, 1) if args.quick else (500, 200, 20.0, 20, 3)
    plan = Plan(*counts, phases=tuple(args.phase))
    report, problem = run(plan)
    rows = summary_rows(report)
    report["targets"] = [
        {"figure": label, "measured": value, "target": target, "met": met}
        for label, value, target, met in rows
        if met is not None
    ]
    report["problems"] = [problem] if problem else []
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    machine = report["machine"]
    print(f"{machine['cpus']} CPUs, {machine['busy_before_pct']} % busy before the run")
    print(table(rows))
    met = sum(1 for row in rows if row[3])
    print(f"\ntargets met: {met}/{len(report['targets'])} (a missed target does not fail the run)")
    print(f"report: {args.output}")
    if problem:
        print(f"ERROR: {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
