"""Explanations as server-sent events, with upstream errors before the first byte still enveloped.

The upstream stream is read by a task of the lifespan's task group and handed over through a
bounded queue: the endpoint waits for the first event, so a bad key or an unknown model is an
ordinary error answer; once streaming, an error becomes a final ``error`` event. When the client
goes away, the reader is cancelled.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import orjson

from devpocket.ai.client import StreamEvent
from devpocket.context import AppContext
from devpocket.errors import AppError

_QUEUE = 64
_Item = StreamEvent | BaseException | None


async def open_stream(
    ctx: AppContext, events: Callable[[], AsyncIterator[StreamEvent]]
) -> AsyncIterator[StreamEvent]:
    queue: asyncio.Queue[_Item] = asyncio.Queue(maxsize=_QUEUE)
    scope = anyio.CancelScope()

    async def pump() -> None:
        with scope:
            try:
                async for event in events():
                    await queue.put(event)
                await queue.put(None)
            except Exception as error:  # noqa: BLE001 - relayed to the request, which raises it
                await queue.put(error)

    ctx.tasks.start_soon(pump)
    first = await queue.get()
    if isinstance(first, BaseException):
        scope.cancel()
        raise first
    return _drain(first, queue, scope)


async def _drain(
    first: _Item, queue: asyncio.Queue[_Item], scope: anyio.CancelScope
) -> AsyncIterator[StreamEvent]:
    item = first
    try:
        while item is not None:
            if isinstance(item, BaseException):
                raise item
            yield item
            item = await queue.get()
    finally:
        scope.cancel()


def sse(event: str, data: dict[str, Any]) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


async def sse_body(
    stream: AsyncIterator[StreamEvent], done: Callable[[StreamEvent | None], dict[str, Any]]
) -> AsyncIterator[bytes]:
    """``delta`` events with text, then ``done`` with the accounting, or a final ``error``."""
    usage_event: StreamEvent | None = None
    try:
        async for event in stream:
            if event.kind == "delta" and event.text:
                yield sse("delta", {"text": event.text})
            elif event.kind == "usage":
                usage_event = event
    except AppError as error:
        yield sse("error", {"code": error.code, "message": error.message})
        return
    yield sse("done", done(usage_event))
