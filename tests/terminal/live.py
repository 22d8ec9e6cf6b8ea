"""A live server on loopback and a terminal client speaking the WebSocket protocol to it."""

from __future__ import annotations

import asyncio
import json
import re
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI
from websockets.asyncio.client import ClientConnection, connect

from devpocket.app import create_app
from devpocket.settings import Settings
from devpocket.terminal.going_away import GoingAwayProtocol
from tests.helpers import Account, register
from tests.terminal.schema import check_frame

Frame = dict[str, Any]


@dataclass
class LiveServer:
    app: FastAPI
    port: int
    http: httpx.AsyncClient
    server: uvicorn.Server

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/terminal"

    async def account(self) -> Account:
        return await register(self.http)

    @asynccontextmanager
    async def terminal(
        self, account: Account, *, receive_buffer: int | None = None, **options: Any
    ) -> AsyncIterator[Terminal]:
        """A client socket; ``receive_buffer`` fixes the kernel's buffer (no autotuning)."""
        url = f"{self.ws_url}?token={account.access_token}"
        if receive_buffer is not None:
            raw = socket.socket()
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
            raw.setblocking(False)
            await asyncio.get_running_loop().sock_connect(raw, ("127.0.0.1", self.port))
            # Uncompressed too: compressed, megabytes of repeated output fit in a few frames.
            options.update(sock=raw, max_queue=2, compression=None)
        async with connect(url, max_size=None, **options) as socket_:
            yield Terminal(socket_, self.home)

    @property
    def home(self) -> Path:
        """The shells' home: the machine's own rc files are not part of any test."""
        home: Path = self.app.state.settings.data_dir / "home"
        home.mkdir(exist_ok=True)
        return home


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@asynccontextmanager
async def live_server(settings: Settings) -> AsyncIterator[LiveServer]:
    app = create_app(settings)
    port = _free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        ws=GoingAwayProtocol,
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    for _ in range(500):
        if server.started or task.done():
            break
        await asyncio.sleep(0.01)
    if task.done():
        await task
        raise AssertionError("the server did not start")
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            yield LiveServer(app, port, http, server)
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 30)


@dataclass
class Terminal:
    """A client socket: frames checked against the schema; output gathered per session."""

    socket: ClientConnection
    home: Path
    output: dict[str, str] = field(default_factory=dict)
    next_seq: dict[str, int] = field(default_factory=dict)
    controls: list[Frame] = field(default_factory=list)
    checked: bool = True

    async def send(self, kind: str, data: Any, session_id: str | None = None) -> None:
        frame: Frame = {"type": kind, "data": data, "timestamp": "2026-11-26T00:00:00Z"}
        if session_id is not None:
            frame["sessionId"] = session_id
        await self.socket.send(json.dumps(frame))

    async def control(self, session_id: str | None = None, **data: Any) -> None:
        await self.send("control", data, session_id)

    async def recv(self, timeout: float = 10.0) -> Frame:  # noqa: ASYNC109
        text = await asyncio.wait_for(self.socket.recv(), timeout)
        assert isinstance(text, str), "frames are text"
        frame: Frame = json.loads(text)
        if self.checked:
            check_frame(frame)
        if frame["type"] == "data":
            self._take(frame)
        elif frame["type"] == "control":
            self.controls.append(frame)
        return frame

    def _take(self, frame: Frame) -> None:
        session_id = frame["sessionId"]
        expected = self.next_seq.get(session_id)
        if expected is not None:
            assert frame["seq"] == expected, (frame["seq"], expected)
        self.output[session_id] = self.output.get(session_id, "") + frame["data"]
        self.next_seq[session_id] = frame["seq"] + len(frame["data"].encode())

    async def until(
        self,
        condition: Callable[[Frame], bool],
        timeout: float = 10.0,  # noqa: ASYNC109
    ) -> Frame:
        async with asyncio.timeout(timeout):
            while True:
                frame = await self.recv(timeout)
                if condition(frame):
                    return frame

    async def action(self, name: str, timeout: float = 10.0) -> Frame:  # noqa: ASYNC109
        return await self.until(
            lambda f: (
                f["type"] == "control"
                and isinstance(f["data"], dict)
                and f["data"].get("action") == name
            ),
            timeout,
        )

    async def output_contains(self, session_id: str, text: str, timeout: float = 10.0) -> str:  # noqa: ASYNC109
        if text in self.output.get(session_id, ""):
            return self.output[session_id]
        await self.until(lambda f: text in self.output.get(session_id, ""), timeout)
        return self.output[session_id]

    async def create_local(self, **options: Any) -> str:
        options.setdefault("env", {})
        options["env"].setdefault("HOME", str(self.home))
        await self.control(action="create_session", type="local", **options)
        frame = await self.until(
            lambda f: (
                f["type"] == "control"
                and isinstance(f["data"], dict)
                and f["data"].get("action") in {"session_created", "session_error"}
            )
        )
        assert frame["data"]["action"] == "session_created", frame
        session_id: str = frame["data"]["session_id"]
        self.next_seq[session_id] = 0
        return session_id

    async def ready(self, session_id: str) -> None:
        """Wait until the shell has started and runs commands (whatever its prompt)."""
        await self.run(session_id, "echo ready-$((20+22))")
        await self.output_contains(session_id, "ready-42")

    async def run(self, session_id: str, line: str) -> None:
        await self.send("data", line + "\r", session_id)

    async def printed_number(self, session_id: str, name: str, line: str) -> int:
        """Run ``line``, which prints ``<name>=<number>``, and answer the number."""
        pattern = re.compile(rf"{name}=(\d+)\r\n")
        await self.run(session_id, line)
        await self.until(lambda f: pattern.search(self.output.get(session_id, "")) is not None)
        match = pattern.search(self.output[session_id])
        assert match is not None
        return int(match.group(1))


def open_descriptors() -> dict[str, int]:
    """PTY masters and pipes this process holds open: what a session must give back."""
    counts = {"ptmx": 0, "pipe": 0}
    for fd in Path("/proc/self/fd").iterdir():
        try:
            target = str(fd.readlink())
        except OSError:  # closed while listing
            continue
        if target == "/dev/ptmx":
            counts["ptmx"] += 1
        elif target.startswith("pipe:"):
            counts["pipe"] += 1
    return counts
