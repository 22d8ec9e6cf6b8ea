"""Redis broker: state and pub/sub shared by every worker and node."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from itertools import chain
from typing import Any, Self, cast

from limits.aio.storage import RedisStorage, Storage
from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from devpocket.broker.base import BrokerUnavailable, Message

CONNECT_TIMEOUT = 2.0
READ_TIMEOUT = 5.0
OPERATION_TIMEOUT = 5.0
"""Upper bound on one call, retries included; socket timeouts alone do not cover backoff."""
HEALTH_CHECK_INTERVAL = 30
POLL_INTERVAL = 1.0
"""How long one pub/sub read waits; short enough to notice a closed subscription promptly."""

_UNAVAILABLE = (RedisConnectionError, RedisTimeoutError, TimeoutError, OSError)


def _milliseconds(ttl: float) -> int:
    # Redis rejects a zero or negative expiry with an unhelpful error; say what is wrong instead.
    if ttl <= 0:
        raise ValueError(f"ttl must be positive, got {ttl}")
    return max(1, round(ttl * 1000))


@asynccontextmanager
async def _guarded(seconds: float = OPERATION_TIMEOUT) -> AsyncIterator[None]:
    """Bound a Redis call in time and report an unreachable server as ``BrokerUnavailable``."""
    try:
        async with asyncio.timeout(seconds):
            yield
    except _UNAVAILABLE as error:
        raise BrokerUnavailable(f"Redis did not answer: {error}") from error


class RedisSubscription:
    """Messages from a ``PubSub``, with the broker prefix taken off channel names."""

    def __init__(self, pubsub: PubSub, prefix: str) -> None:
        self._pubsub = pubsub
        self._prefix = prefix
        # Messages that arrived while subscribe confirmations were still being read.
        self._early: deque[Message] = deque()
        self._closed = False

    async def confirm(self, channels: int) -> None:
        """Wait until the server has confirmed every channel, so no later publish is missed."""
        confirmed = 0
        async with _guarded():
            while confirmed < channels:
                raw = await self._pubsub.get_message(timeout=POLL_INTERVAL)
                if raw is None:
                    continue
                if raw["type"] == "subscribe":
                    confirmed += 1
                elif (message := self._convert(raw)) is not None:
                    self._early.append(message)

    async def close(self) -> None:
        self._closed = True
        try:
            # Closing the connection below ends the subscription on the server anyway, so a
            # failed UNSUBSCRIBE is not worth reporting.
            with suppress(BrokerUnavailable, RedisError):
                await self._unsubscribe()
        finally:
            # redis-py leaves PubSub.aclose unannotated.
            await self._pubsub.aclose()  # type: ignore[no-untyped-call]

    async def _unsubscribe(self) -> None:
        if not self._pubsub.subscribed:
            return  # SUBSCRIBE never went out; nothing to undo.
        async with _guarded(READ_TIMEOUT):
            await self._pubsub.unsubscribe()
            # Waiting for the confirmation makes "after exit, no longer subscribed" hold for
            # publishers on other connections too.
            while self._pubsub.subscribed:
                await self._pubsub.get_message(timeout=POLL_INTERVAL)

    def _convert(self, raw: dict[str, Any]) -> Message | None:
        if raw["type"] != "message":
            return None
        channel = bytes(raw["channel"]).decode()
        return Message(channel.removeprefix(self._prefix), bytes(raw["data"]))

    async def _read(self, wait: float) -> Message | None:
        if self._early:
            return self._early.popleft()
        async with _guarded(wait + READ_TIMEOUT):
            raw = await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=wait)
        return None if raw is None else self._convert(raw)

    async def get(self, timeout: float) -> Message | None:  # noqa: ASYNC109 (Subscription API)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self._closed:
            remaining = deadline - loop.time()
            message = await self._read(max(0.0, min(remaining, POLL_INTERVAL)))
            if message is not None or remaining <= 0:
                return message
        return None

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Message:
        while not self._closed:
            message = await self._read(POLL_INTERVAL)
            if message is not None:
                return message
        raise StopAsyncIteration


class _Reads:
    """GETs asked for in one turn of the event loop, sent to Redis as one MGET.

    Every authenticated request reads one key (the user's stamp, ``auth/cache.py``), and a
    Redis command costs far more in client code than in Redis. Requests that arrive together
    reach their read in the same turn of the loop; one MGET answers them all, read after each
    of them asked, so every answer is as fresh as a GET of its own would have been.
    """

    def __init__(self, broker: RedisBroker) -> None:
        self._broker = broker
        self._waiting: dict[str, list[asyncio.Future[bytes | None]]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def get(self, key: str) -> bytes | None:
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[bytes | None] = loop.create_future()
        if not self._waiting:
            loop.call_soon(self._send)
        self._waiting.setdefault(key, []).append(answer)
        return await answer

    def _send(self) -> None:
        waiting, self._waiting = self._waiting, {}
        task = asyncio.get_running_loop().create_task(self._answer(waiting))
        self._tasks.add(task)  # the loop keeps only a weak reference to tasks
        task.add_done_callback(self._tasks.discard)

    async def _answer(self, waiting: dict[str, list[asyncio.Future[bytes | None]]]) -> None:
        keys = list(waiting)
        try:
            async with _guarded():
                values = await self._broker.raw_mget(keys)
        except (BrokerUnavailable, RedisError) as error:
            for answer in chain.from_iterable(waiting.values()):
                if not answer.done():
                    answer.set_exception(error)
            return
        except asyncio.CancelledError:  # the broker is closing: nobody is left waiting
            for answer in chain.from_iterable(waiting.values()):
                answer.cancel()
            raise
        for key, value in zip(keys, values, strict=True):
            for answer in waiting[key]:
                if not answer.done():  # a request that gave up (its client left) is skipped
                    answer.set_result(value)


class RedisBroker:
    name = "redis"

    def __init__(self, url: str, *, prefix: str = "devpocket:") -> None:
        self._url = url
        self._prefix = prefix
        self._pool: ConnectionPool | None = None
        self._redis: Redis | None = None
        self._limits: RedisStorage | None = None
        self._reads = _Reads(self)

    @property
    def _client(self) -> Redis:
        """The client, building its pool on first use; building does not connect."""
        if self._redis is None:
            self._pool = ConnectionPool.from_url(
                self._url,
                socket_connect_timeout=CONNECT_TIMEOUT,
                socket_timeout=READ_TIMEOUT,
                health_check_interval=HEALTH_CHECK_INTERVAL,
                retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), retries=2),
            )
            self._redis = Redis(connection_pool=self._pool)
        return self._redis

    def _key(self, key: str) -> str:
        return self._prefix + key

    async def get(self, key: str) -> bytes | None:
        return await self._reads.get(key)

    async def raw_mget(self, keys: list[str]) -> list[bytes | None]:
        """One MGET of ``keys`` (unprefixed); ``get`` batches through it."""
        values = await self._client.mget([self._key(key) for key in keys])
        # The pool does not decode responses, so values are bytes.
        return cast(list[bytes | None], values)

    async def set(self, key: str, value: bytes, *, ttl: float | None = None) -> None:
        px = None if ttl is None else _milliseconds(ttl)
        async with _guarded():
            await self._client.set(self._key(key), value, px=px)

    async def set_if_absent(self, key: str, value: bytes, *, ttl: float | None = None) -> bool:
        px = None if ttl is None else _milliseconds(ttl)
        async with _guarded():
            stored = await self._client.set(self._key(key), value, px=px, nx=True)
        return bool(stored)

    async def delete(self, *keys: str) -> int:
        if not keys:
            return 0  # DEL without arguments is a Redis error.
        async with _guarded():
            return int(await self._client.delete(*(self._key(key) for key in keys)))

    async def incr(self, key: str, *, ttl: float) -> int:
        px = _milliseconds(ttl)
        async with _guarded(), self._client.pipeline(transaction=True) as pipe:
            # MULTI/EXEC keeps count and expiry together: no counter is left without a window.
            pipe.incr(self._key(key))
            pipe.pexpire(self._key(key), px, nx=True)
            count, _ = await pipe.execute()
        return int(count)

    async def ttl(self, key: str) -> float | None:
        async with _guarded():
            milliseconds = int(await self._client.pttl(self._key(key)))
        # PTTL answers -2 for a missing key and -1 for a key without expiry.
        return None if milliseconds < 0 else milliseconds / 1000

    async def publish(self, channel: str, data: bytes) -> int:
        async with _guarded():
            return int(await self._client.publish(self._key(channel), data))

    @asynccontextmanager
    async def subscribe(self, *channels: str) -> AsyncIterator[RedisSubscription]:
        if not channels:
            raise ValueError("subscribe needs at least one channel")
        pubsub = self._client.pubsub()
        subscription = RedisSubscription(pubsub, self._prefix)
        try:
            async with _guarded():
                await pubsub.subscribe(*(self._key(channel) for channel in channels))
            await subscription.confirm(len(set(channels)))
            yield subscription
        finally:
            await subscription.close()

    @property
    def limits_storage(self) -> Storage:
        if self._limits is None:
            self._limits = RedisStorage(
                "async+" + self._url,
                implementation="redispy",
                wrap_exceptions=True,
                key_prefix=self._prefix + "limits",
                # Documented by limits but missing from its annotation; sharing the pool keeps
                # one set of connections, timeouts and one place that closes them.
                connection_pool=self._client.connection_pool,  # type: ignore[arg-type]
            )
        return self._limits

    async def ping(self) -> None:
        async with _guarded():
            await self._client.ping()

    async def aclose(self) -> None:
        # The limits storage borrows the pool and has no close method; closing the pool is enough.
        self._limits = None
        redis, pool = self._redis, self._pool
        self._redis = self._pool = None
        if redis is not None:
            await redis.aclose()
        if pool is not None:
            await pool.aclose()
