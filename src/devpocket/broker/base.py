"""The broker: shared state between workers and nodes.

Token-revocation notices, rate-limit counters, caches and pub/sub go through one interface with
two implementations: Redis (``REDIS_URL`` set) and in-process (one worker, no Redis). Both pass
the same contract tests in ``tests/broker/test_contract.py``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Protocol

from limits.aio.storage import Storage


@dataclass(frozen=True, slots=True)
class Message:
    channel: str
    data: bytes


class Subscription(Protocol):
    """Messages published on the subscribed channels after the subscription started."""

    def __aiter__(self) -> AsyncIterator[Message]: ...

    # A per-call wait is the point of this method, so ASYNC109's advice (wrap the call in
    # asyncio.timeout) does not apply: a timeout here is an answer (None), not an error.
    async def get(self, timeout: float) -> Message | None:  # noqa: ASYNC109
        """The next message, or None when none arrives within ``timeout`` seconds."""
        ...


class Broker(Protocol):
    name: str

    async def get(self, key: str) -> bytes | None: ...

    async def set(self, key: str, value: bytes, *, ttl: float | None = None) -> None:
        """Store ``value``; with ``ttl`` (seconds) it disappears after that long."""
        ...

    async def set_if_absent(self, key: str, value: bytes, *, ttl: float | None = None) -> bool:
        """Store only when the key is absent; True when stored."""
        ...

    async def delete(self, *keys: str) -> int:
        """Remove keys; returns how many existed."""
        ...

    async def incr(self, key: str, *, ttl: float) -> int:
        """Add one and return the new value; the first increment starts a ``ttl`` expiry."""
        ...

    async def ttl(self, key: str) -> float | None:
        """Seconds until the key expires; None when absent or without expiry."""
        ...

    async def publish(self, channel: str, data: bytes) -> int:
        """Send to current subscribers of ``channel`` in every process; returns local count or
        the server's receiver count."""
        ...

    def subscribe(self, *channels: str) -> AbstractAsyncContextManager[Subscription]: ...

    @property
    def limits_storage(self) -> Storage:
        """A ``limits`` storage over the same backend, for rate limiting."""
        ...

    async def ping(self) -> None:
        """Raise ``BrokerUnavailable`` when the backend cannot be reached."""
        ...

    async def aclose(self) -> None: ...


class BrokerUnavailable(Exception):
    """The broker's backend did not answer."""
