"""Notices that a user's feed has new changes, for one open connection (WebSocket or SSE).

A connection subscribes to ``sync.user.<user_id>`` on the broker first, then reads the feed's
head and reports it: a change committed in between is then either below that head or announced
on the subscription, never missed. Later notices carry the new head and the device that made the
change; a connection that named its own device does not hear of its own changes.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import orjson
import structlog

from devpocket.auth.deps import Authenticated, recheck
from devpocket.broker import BrokerUnavailable, Subscription
from devpocket.context import AppContext
from devpocket.errors import Unauthenticated
from devpocket.sync import repository
from devpocket.sync.changes import channel

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class FeedNotice:
    cursor: int
    device_id: str | None

    def payload(self) -> dict[str, Any]:
        return {"cursor": self.cursor, "device_id": self.device_id}


def parse_device(value: str | None) -> uuid.UUID | None:
    """The ``?device_id=`` a connection names as its own; an unreadable one names none."""
    try:
        return uuid.UUID(value) if value else None
    except ValueError:
        return None


class Listener:
    """The notices of one connection: the head first, then each change not its own."""

    def __init__(self, subscription: Subscription, head: int, own_device: uuid.UUID | None) -> None:
        self._subscription = subscription
        self.head = head
        self._own = str(own_device) if own_device else None

    async def next(self, timeout: float) -> FeedNotice | None:  # noqa: ASYNC109 - None on silence
        """The next notice of another device's change, or None after ``timeout`` seconds."""
        message = await self._subscription.get(timeout)
        if message is None:
            return None
        try:
            body = orjson.loads(message.data)
            notice = FeedNotice(int(body["cursor"]), body.get("device_id"))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            log.warning("sync.notice_unreadable")
            return None
        return None if self._own is not None and notice.device_id == self._own else notice

    async def updates(self, every: float) -> AsyncIterator[FeedNotice | None]:
        """Notices as they come, and None each time ``every`` seconds have passed (a heartbeat
        is due), however busy the channel."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + every
        while True:
            notice = await self.next(max(0.0, deadline - loop.time()))
            if notice is not None:
                yield notice
            if loop.time() >= deadline:
                deadline = loop.time() + every
                yield None


@asynccontextmanager
async def listening(
    ctx: AppContext, user_id: uuid.UUID, own_device: uuid.UUID | None
) -> AsyncIterator[Listener]:
    """Raises ``BrokerUnavailable`` when the broker cannot be reached."""
    async with ctx.broker.subscribe(channel(user_id)) as subscription:
        async with ctx.sessionmaker() as db:
            head = await repository.feed_head(db, user_id)
        yield Listener(subscription, head, own_device)


def sse(event: str, data: Any) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


async def event_stream(
    ctx: AppContext, auth: Authenticated, own_device: uuid.UUID | None
) -> AsyncIterator[bytes]:
    """``sync`` events (the head first), a ``heartbeat`` when quiet, an ``error`` at the end."""
    every = ctx.settings.terminal_heartbeat_seconds
    try:
        async with listening(ctx, auth.user_id, own_device) as listener:
            # EventSource reconnects after `retry` ms; it reads the feed from its cursor anyway.
            yield b"retry: 1000\n" + sse("sync", {"cursor": listener.head, "device_id": None})
            async for notice in listener.updates(every):
                if notice is not None:
                    yield sse("sync", notice.payload())
                    continue
                await recheck(ctx, auth.claims)
                yield sse("heartbeat", "ping")
    except Unauthenticated as error:
        yield sse("error", {"code": error.code, "message": error.message})
    except BrokerUnavailable:
        log.warning("sync.events_broker_unavailable")
        yield sse("error", {"code": "notices_unavailable", "message": "Reconnect shortly."})
