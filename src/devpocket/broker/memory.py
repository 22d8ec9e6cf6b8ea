"""In-process broker: one worker, no Redis.

Everything lives in this process's memory, so it only serves a single worker; several workers or
nodes need ``RedisBroker``.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Self

from limits.aio.storage import MemoryStorage, Storage

from devpocket.broker.base import Message

QUEUE_LIMIT = 1000
"""Messages a subscriber may have pending before the oldest are dropped."""

SWEEP_INTERVAL = 1.0
"""Seconds between full scans for expired keys that nobody reads again."""


@dataclass(slots=True)
class _Entry:
    value: bytes
    expires_at: float | None


def _check_ttl(ttl: float | None) -> None:
    # Redis rejects a zero or negative expiry; refusing it here keeps both brokers alike.
    if ttl is not None and ttl <= 0:
        raise ValueError(f"ttl must be positive, got {ttl}")


class MemorySubscription:
    """A bounded queue of messages; when full, the oldest message is dropped and counted."""

    def __init__(self, limit: int = QUEUE_LIMIT) -> None:
        self._queue: deque[Message] = deque(maxlen=limit)
        self._ready = asyncio.Event()
        self._closed = False
        self.dropped = 0

    @property
    def pending(self) -> int:
        return len(self._queue)

    def deliver(self, message: Message) -> None:
        if self._closed:
            return
        if len(self._queue) == self._queue.maxlen:
            # Dropping beats blocking the publisher or growing without bound.
            self.dropped += 1
        self._queue.append(message)
        self._ready.set()

    def close(self) -> None:
        self._closed = True
        self._queue.clear()
        self._ready.set()

    async def get(self, timeout: float) -> Message | None:  # noqa: ASYNC109 (Subscription API)
        try:
            async with asyncio.timeout(timeout):
                return await self._next()
        except TimeoutError:
            return None

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Message:
        message = await self._next()
        if message is None:
            raise StopAsyncIteration
        return message

    async def _next(self) -> Message | None:
        """The next message, waiting for one; None once closed."""
        while not self._queue:
            if self._closed:
                return None
            self._ready.clear()
            await self._ready.wait()
        return self._queue.popleft()


class MemoryBroker:
    name = "memory"

    def __init__(self, *, sweep_interval: float = SWEEP_INTERVAL) -> None:
        self._data: dict[str, _Entry] = {}
        self._channels: dict[str, set[MemorySubscription]] = {}
        self._limits: MemoryStorage | None = None
        self._sweep_interval = sweep_interval
        self._next_sweep = time.monotonic() + sweep_interval

    @property
    def held_keys(self) -> int:
        """Entries in memory, counting expired ones that no read or sweep has removed yet."""
        return len(self._data)

    def _live(self, key: str) -> _Entry | None:
        entry = self._data.get(key)
        expires_at = None if entry is None else entry.expires_at
        if expires_at is not None and expires_at <= time.monotonic():
            del self._data[key]
            return None
        return entry

    def _store(self, key: str, value: bytes, ttl: float | None) -> None:
        now = time.monotonic()
        if now >= self._next_sweep:
            # Keys that expire and are never read again would otherwise stay forever.
            self._next_sweep = now + self._sweep_interval
            expired = [k for k, e in self._data.items() if e.expires_at and e.expires_at <= now]
            for expired_key in expired:
                del self._data[expired_key]
        self._data[key] = _Entry(value, None if ttl is None else now + ttl)

    async def get(self, key: str) -> bytes | None:
        entry = self._live(key)
        return None if entry is None else entry.value

    async def set(self, key: str, value: bytes, *, ttl: float | None = None) -> None:
        _check_ttl(ttl)
        self._store(key, value, ttl)

    async def set_if_absent(self, key: str, value: bytes, *, ttl: float | None = None) -> bool:
        _check_ttl(ttl)
        if self._live(key) is not None:
            return False
        self._store(key, value, ttl)
        return True

    async def delete(self, *keys: str) -> int:
        removed = 0
        for key in keys:
            if self._live(key) is not None:
                del self._data[key]
                removed += 1
        return removed

    async def incr(self, key: str, *, ttl: float) -> int:
        _check_ttl(ttl)
        entry = self._live(key)
        if entry is None:
            self._store(key, b"1", ttl)
            return 1
        # Like Redis INCR: a non-integer value raises instead of being overwritten.
        count = int(entry.value) + 1
        entry.value = str(count).encode()
        if entry.expires_at is None:
            # Matches EXPIRE NX on Redis: a key set without expiry gains one here.
            entry.expires_at = time.monotonic() + ttl
        return count

    async def ttl(self, key: str) -> float | None:
        entry = self._live(key)
        if entry is None or entry.expires_at is None:
            return None
        return max(0.0, entry.expires_at - time.monotonic())

    async def publish(self, channel: str, data: bytes) -> int:
        subscribers = self._channels.get(channel, set())
        message = Message(channel, data)
        for subscription in subscribers:
            subscription.deliver(message)
        return len(subscribers)

    @asynccontextmanager
    async def subscribe(self, *channels: str) -> AsyncIterator[MemorySubscription]:
        if not channels:
            raise ValueError("subscribe needs at least one channel")
        subscription = MemorySubscription()
        for channel in channels:
            self._channels.setdefault(channel, set()).add(subscription)
        try:
            yield subscription
        finally:
            subscription.close()
            for channel in channels:
                subscribers = self._channels.get(channel)
                if subscribers is not None:
                    subscribers.discard(subscription)
                    if not subscribers:
                        del self._channels[channel]

    @property
    def limits_storage(self) -> Storage:
        if self._limits is None:
            self._limits = MemoryStorage()
        return self._limits

    async def ping(self) -> None:
        return None

    async def aclose(self) -> None:
        for subscribers in self._channels.values():
            for subscription in subscribers:
                subscription.close()
        self._channels.clear()
        self._data.clear()
        if self._limits is not None:
            # MemoryStorage runs an expiry task of its own; let it finish before forgetting it.
            timer = self._limits.timer
            if timer is not None and not timer.done():
                timer.cancel()
                await asyncio.wait([timer])
            self._limits = None
