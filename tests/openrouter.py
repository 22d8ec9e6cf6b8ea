"""A stand-in for OpenRouter: a real HTTP/1.1 server on loopback speaking the part of its API the
app uses (``/key``, ``/models``, ``/chat/completions`` with and without streaming).

Tests script the answers for a path with :meth:`FakeOpenRouter.script`; unscripted requests get
realistic defaults: keys starting with ``sk-or-good`` are valid, others get OpenRouter's 401,
unknown models its 400, and completions answer :meth:`FakeOpenRouter.default_completion`'s text
(as SSE when the request asks for ``"stream": true``). Every request is recorded
(:meth:`FakeOpenRouter.arrived` waits for them), and a scripted answer can be held until the test
releases it (``FakeResponse.hold``). Plain helper code, no fixtures: a conftest wraps
:func:`serving_openrouter` in a fixture.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import deque
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

HOST = "127.0.0.1"
API_PREFIX = "/api/v1"
GOOD_KEY_PREFIX = "sk-or-good"
GOOD_KEY = "sk-or-good-v1-0d5e3c9a7b4f41c2a8e6f0b1d2c3e4f5"
BAD_KEY = "sk-or-v1-revoked-6f1e2d3c4b5a69788796a5b4c3d2e1f0"
DEFAULT_MODEL = "openai/gpt-4o-mini"
DEFAULT_CONTENT = '{"answer": "42"}'

MODELS: list[dict[str, Any]] = [
    {
        "id": DEFAULT_MODEL,
        "name": "OpenAI: GPT-4o-mini",
        "context_length": 128000,
        "pricing": {"prompt": "0.00000015", "completion": "0.0000006"},
    },
    {
        "id": "anthropic/claude-3.5-haiku",
        "name": "Anthropic: Claude 3.5 Haiku",
        "context_length": 200000,
        "pricing": {"prompt": "0.0000008", "completion": "0.000004"},
    },
    {
        "id": "meta-llama/llama-3.1-8b-instruct:free",
        "name": "Meta: Llama 3.1 8B Instruct (free)",
        "context_length": 131072,
        "pricing": {"prompt": "0", "completion": "0"},
    },
    {
        "id": "openrouter/auto",
        "name": "Auto Router",
        "context_length": None,
        "pricing": {"prompt": "-1", "completion": "-1"},
    },
]

# A stream chunk: a dict is sent as one ``data:`` event; a str is sent as it is (a comment such
# as ": OPENROUTER PROCESSING", or "data: [DONE]"), followed by a blank line.
StreamChunk = Mapping[str, Any] | str


@dataclass(frozen=True)
class FakeResponse:
    """One scripted answer. Without ``json`` and ``stream_chunks``, the body is the default one
    for the request (or OpenRouter's error body when ``status`` is not 200)."""

    status: int = 200
    json: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    stream_chunks: Sequence[StreamChunk] | None = None
    # Before the status line, and before each stream chunk.
    delay: float = 0.0
    chunk_delay: float = 0.0
    # When given, the answer waits for it (after ``delay``): an upstream stalled until released.
    hold: asyncio.Event | None = None


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str  # below the API prefix, e.g. "/chat/completions"
    headers: Mapping[str, str]  # names in lower case
    json: Any

    @property
    def api_key(self) -> str | None:
        scheme, _, token = self.headers.get("authorization", "").partition(" ")
        return token if scheme.lower() == "bearer" and token else None


def error_body(code: int, message: str, **metadata: Any) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if metadata:
        error["metadata"] = metadata
    return {"error": error}


def usage_body(prompt: int = 21, completion: int = 9, cost: float | None = 0.0000126) -> Any:
    usage: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
    if cost is not None:
        usage["cost"] = cost
    return usage


def completion(content: str | None, *, model: str = DEFAULT_MODEL, **usage: Any) -> Any:
    """A chat completion answering ``content``; ``usage`` overrides :func:`usage_body`'s."""
    return {
        "id": "gen-fake-0001",
        "provider": "Fake",
        "model": model,
        "object": "chat.completion",
        "created": 1735689600,
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {"role": "assistant", "content": content},
            }
        ],
        "usage": usage_body(**usage),
    }


def stream_chunks(
    pieces: Sequence[str], *, model: str = DEFAULT_MODEL, done: bool = True, **usage: Any
) -> list[StreamChunk]:
    """What OpenRouter streams for an answer made of ``pieces``: a keep-alive comment, one
    chunk per piece, a last chunk carrying the usage, then ``[DONE]`` (unless ``done=False``)."""

    def chunk(delta: dict[str, Any], **extra: Any) -> dict[str, Any]:
        return {
            "id": "gen-fake-0001",
            "model": model,
            "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": delta, "finish_reason": None}],
            **extra,
        }

    chunks: list[StreamChunk] = [": OPENROUTER PROCESSING"]
    chunks += [chunk({"role": "assistant", "content": piece}) for piece in pieces]
    chunks.append(chunk({"role": "assistant", "content": ""}, usage=usage_body(**usage)))
    if done:
        chunks.append("data: [DONE]")
    return chunks


def stream_error(code: int | str, message: str) -> dict[str, Any]:
    """A chunk reporting an error mid-stream, as OpenRouter sends it once the status is sent."""
    return {
        "id": "gen-fake-0001",
        "object": "chat.completion.chunk",
        "error": {"code": code, "message": message},
        "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "error"}],
    }


def key_info_body(**overrides: Any) -> Any:
    data = {
        "label": "sk-or-good-v1-0d5...4f5",
        "limit": 10.0,
        "usage": 1.25,
        "is_free_tier": False,
        "limit_remaining": 8.75,
        "rate_limit": {"requests": 10, "interval": "10s"},
    }
    return {"data": {**data, **overrides}}


def _split(content: str, parts: int = 3) -> list[str]:
    size = max(1, -(-len(content) // parts))
    return [content[i : i + size] for i in range(0, len(content), size)]


@dataclass
class FakeOpenRouter:
    host: str = HOST
    port: int = 0
    requests: list[RecordedRequest] = field(default_factory=list)
    completion_content: str = DEFAULT_CONTENT
    _scripts: dict[str, deque[FakeResponse]] = field(default_factory=dict)
    _connections: set[asyncio.Task[None]] = field(default_factory=set)
    _arrival: asyncio.Condition = field(default_factory=asyncio.Condition)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}{API_PREFIX}"

    def script(self, path: str, *responses: FakeResponse) -> None:
        """Queue answers for ``path`` (e.g. "/chat/completions"), used once each, in order."""
        self._scripts.setdefault(_route(path), deque()).extend(responses)

    def default_completion(self, content: str) -> None:
        """What unscripted completions answer (the JSON text a model would write)."""
        self.completion_content = content

    def requests_to(self, path: str) -> list[RecordedRequest]:
        return [request for request in self.requests if request.path == _route(path)]

    async def arrived(self, path: str, count: int = 1) -> None:
        """Wait until ``count`` requests to ``path`` have arrived (answered or held)."""
        async with self._arrival:
            await self._arrival.wait_for(lambda: len(self.requests_to(path)) >= count)

    def _answer(self, request: RecordedRequest) -> FakeResponse:
        queue = self._scripts.get(request.path)
        scripted = queue.popleft() if queue else None
        if scripted is not None and (scripted.json is not None or scripted.stream_chunks):
            return scripted
        if scripted is not None and scripted.status != HTTPStatus.OK:
            phrase = HTTPStatus(scripted.status).phrase
            return replace(scripted, json=error_body(scripted.status, phrase))
        default = self._default(request)
        if scripted is None:
            return default
        return replace(
            default,
            headers={**default.headers, **scripted.headers},
            delay=scripted.delay,
            chunk_delay=scripted.chunk_delay,
            hold=scripted.hold,
        )

    def _default(self, request: RecordedRequest) -> FakeResponse:
        if request.path == "/models":
            return FakeResponse(json={"data": MODELS})
        key = request.api_key
        if key is None or not key.startswith(GOOD_KEY_PREFIX):
            return FakeResponse(401, json=error_body(401, "No auth credentials found"))
        if request.path == "/key":
            return FakeResponse(json=key_info_body())
        if request.path == "/chat/completions" and request.method == "POST":
            return self._default_completion(request.json or {})
        return FakeResponse(404, json=error_body(404, "Not Found"))

    def _default_completion(self, body: Mapping[str, Any]) -> FakeResponse:
        model = body.get("model")
        if model not in {entry["id"] for entry in MODELS}:
            return FakeResponse(400, json=error_body(400, f"{model} is not a valid model ID"))
        if body.get("stream"):
            return FakeResponse(stream_chunks=stream_chunks(_split(self.completion_content)))
        return FakeResponse(json=completion(self.completion_content, model=str(model)))

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            # Keep-alive: one connection carries requests until the client closes it.
            while (request := await _read_request(reader)) is not None:
                async with self._arrival:
                    self.requests.append(request)
                    self._arrival.notify_all()
                response = self._answer(request)
                await asyncio.sleep(response.delay)
                if response.hold is not None:
                    await response.hold.wait()
                if response.stream_chunks is not None:
                    await _write_stream(writer, response)
                else:
                    _write_json(writer, response)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client gave up (a timeout, a closed stream)
        finally:
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()


def _route(path: str) -> str:
    return "/" + path.removeprefix(API_PREFIX).lstrip("/")


async def _read_request(reader: asyncio.StreamReader) -> RecordedRequest | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None  # closed between requests
    request_line, *header_lines = head.decode("latin-1").split("\r\n")
    method, target, _ = request_line.split(" ", 2)
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        if name:
            headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    body = await reader.readexactly(length) if length else b""
    path = _route(urlsplit(target).path)
    return RecordedRequest(method, path, headers, json.loads(body) if body else None)


def _head(status: int, headers: Mapping[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {status} {HTTPStatus(status).phrase}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _write_json(writer: asyncio.StreamWriter, response: FakeResponse) -> None:
    body = json.dumps(response.json).encode()
    headers = {
        "Content-Type": "application/json",
        "Content-Length": str(len(body)),
        **response.headers,
    }
    writer.write(_head(response.status, headers) + body)


async def _write_stream(writer: asyncio.StreamWriter, response: FakeResponse) -> None:
    headers = {
        "Content-Type": "text/event-stream",
        "Cache-Control": "no-cache",
        "Transfer-Encoding": "chunked",
        **response.headers,
    }
    writer.write(_head(response.status, headers))
    for chunk in response.stream_chunks or ():
        await asyncio.sleep(response.chunk_delay)
        text = chunk if isinstance(chunk, str) else f"data: {json.dumps(chunk)}"
        data = (text.rstrip("\n") + "\n\n").encode()
        writer.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        await writer.drain()
    writer.write(b"0\r\n\r\n")


@asynccontextmanager
async def serving_openrouter() -> AsyncIterator[FakeOpenRouter]:
    fake = FakeOpenRouter()
    server = await asyncio.start_server(fake._serve, HOST, 0)
    fake.port = server.sockets[0].getsockname()[1]
    try:
        yield fake
    finally:
        server.close()
        # Connections still open (a client idling on keep-alive, a delayed answer) end here.
        connections = list(fake._connections)
        for connection in connections:
            connection.cancel()
        await asyncio.gather(*connections, return_exceptions=True)
        await server.wait_closed()
