"""One contract for both brokers: the in-process one and Redis.

Expiry is checked by polling with short TTLs rather than sleeping a fixed time: the tests state
what happens, not how fast.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from limits import RateLimitItemPerMinute
from limits.aio.strategies import FixedWindowRateLimiter
from redis.asyncio import Redis

from devpocket.broker import Broker, BrokerUnavailable, Message
from devpocket.broker.memory import QUEUE_LIMIT, MemoryBroker
from devpocket.broker.redis import RedisBroker

SHORT_TTL = 0.2
WAIT = 5.0
"""Upper bound for anything expected to happen; reached only when the behaviour is broken."""
POLL = 0.02


@pytest.fixture(params=["memory", "redis"])
def make_broker(request: pytest.FixtureRequest) -> Callable[[], Broker]:
    """Builds the broker under test; Redis fixtures are requested only for the redis param."""
    if request.param == "memory":
        return MemoryBroker
    url: str = request.getfixturevalue("redis_server_url")
    prefix: str = request.getfixturevalue("redis_prefix")
    return lambda: RedisBroker(url, prefix=prefix)


@pytest.fixture
async def broker(make_broker: Callable[[], Broker]) -> AsyncIterator[Broker]:
    instance = make_broker()
    yield instance
    await instance.aclose()


async def wait_until(check: Callable[[], Awaitable[bool]]) -> None:
    # Polling, because nothing announces that a key expired.
    for _ in range(int(WAIT / POLL)):
        if await check():
            return
        await asyncio.sleep(POLL)
    pytest.fail(f"condition still false after {WAIT} s")


async def is_gone(broker: Broker, key: str) -> bool:
    return await broker.get(key) is None


async def test_get_returns_what_set_stored(broker: Broker) -> None:
    assert await broker.get("missing") is None
    await broker.set("key", b"one")
    await broker.set("key", b"two")
    assert await broker.get("key") == b"two"


async def test_concurrent_gets_each_answer_their_own_key(broker: Broker) -> None:
    await broker.set("a", b"first")
    await broker.set("b", b"second")
    keys = ["a", "b", "missing", "a", "b", "a"]
    answers = await asyncio.gather(*(broker.get(key) for key in keys))
    assert answers == [b"first", b"second", None, b"first", b"second", b"first"]


async def test_a_get_sees_a_set_that_finished_before_it(broker: Broker) -> None:
    async def set_then_get(value: bytes) -> bytes | None:
        await broker.set("shared", value)
        return await broker.get("shared")

    await broker.set("shared", b"old")
    answers = await asyncio.gather(broker.get("shared"), set_then_get(b"new"))
    assert answers[1] == b"new"


async def test_key_disappears_after_its_ttl(broker: Broker) -> None:
    await broker.set("key", b"value", ttl=SHORT_TTL)
    assert await broker.get("key") == b"value"
    await wait_until(lambda: is_gone(broker, "key"))
    assert await broker.ttl("key") is None
    assert await broker.delete("key") == 0


@pytest.mark.parametrize("ttl", [0, -1.0])
async def test_non_positive_ttl_is_refused(broker: Broker, ttl: float) -> None:
    with pytest.raises(ValueError, match="ttl"):
        await broker.set("key", b"value", ttl=ttl)
    with pytest.raises(ValueError, match="ttl"):
        await broker.incr("counter", ttl=ttl)


async def test_set_if_absent_keeps_the_first_value(broker: Broker) -> None:
    assert await broker.set_if_absent("key", b"first", ttl=SHORT_TTL)
    assert not await broker.set_if_absent("key", b"second")
    assert await broker.get("key") == b"first"
    await wait_until(lambda: is_gone(broker, "key"))
    assert await broker.set_if_absent("key", b"third")
    assert await broker.get("key") == b"third"


async def test_delete_counts_only_existing_keys(broker: Broker) -> None:
    await broker.set("a", b"1")
    await broker.set("b", b"2")
    assert await broker.delete("a", "b", "c") == 2
    assert await broker.get("a") is None
    assert await broker.delete() == 0


async def test_incr_counts_from_one(broker: Broker) -> None:
    assert [await broker.incr("counter", ttl=60) for _ in range(3)] == [1, 2, 3]
    assert await broker.get("counter") == b"3"


async def test_incr_window_restarts_after_expiry(broker: Broker) -> None:
    assert await broker.incr("counter", ttl=SHORT_TTL) == 1
    assert await broker.incr("counter", ttl=SHORT_TTL) == 2
    await wait_until(lambda: is_gone(broker, "counter"))
    assert await broker.incr("counter", ttl=60) == 1


async def test_incr_keeps_the_expiry_of_the_first_increment(broker: Broker) -> None:
    await broker.incr("counter", ttl=60)
    await broker.incr("counter", ttl=SHORT_TTL)
    remaining = await broker.ttl("counter")
    assert remaining is not None
    assert remaining > 1


async def test_ttl_reports_remaining_seconds(broker: Broker) -> None:
    await broker.set("expiring", b"x", ttl=60)
    await broker.set("lasting", b"x")
    remaining = await broker.ttl("expiring")
    assert remaining is not None
    assert 0 < remaining <= 60
    assert await broker.ttl("lasting") is None
    assert await broker.ttl("missing") is None


async def test_publish_reaches_every_subscriber(broker: Broker) -> None:
    async with broker.subscribe("news") as first, broker.subscribe("news") as second:
        assert await broker.publish("news", b"hello") == 2
        assert await first.get(WAIT) == Message("news", b"hello")
        assert await second.get(WAIT) == Message("news", b"hello")


async def test_subscriber_receives_only_its_channels(broker: Broker) -> None:
    async with broker.subscribe("a", "b") as subscription:
        assert await broker.publish("elsewhere", b"skip") == 0
        await broker.publish("b", b"1")
        await broker.publish("a", b"2")
        assert await subscription.get(WAIT) == Message("b", b"1")
        assert await subscription.get(WAIT) == Message("a", b"2")
        assert await subscription.get(0.05) is None


async def test_messages_before_subscribing_are_not_delivered(broker: Broker) -> None:
    await broker.publish("news", b"early")
    async with broker.subscribe("news") as subscription:
        await broker.publish("news", b"late")
        assert await subscription.get(WAIT) == Message("news", b"late")


async def test_get_returns_none_when_nothing_arrives(broker: Broker) -> None:
    async with broker.subscribe("quiet") as subscription:
        assert await subscription.get(0.1) is None


async def test_iterating_yields_published_messages(broker: Broker) -> None:
    async with broker.subscribe("news") as subscription:
        await broker.publish("news", b"1")
        await broker.publish("news", b"2")
        received: list[bytes] = []
        async with asyncio.timeout(WAIT):
            async for message in subscription:
                received.append(message.data)
                if len(received) == 2:
                    break
    assert received == [b"1", b"2"]


async def test_leaving_the_subscription_unsubscribes(broker: Broker) -> None:
    async with broker.subscribe("news") as subscription:
        pass
    assert await broker.publish("news", b"unheard") == 0
    assert await subscription.get(0.05) is None
    assert [message async for message in subscription] == []


async def test_ping_succeeds_when_backend_is_up(broker: Broker) -> None:
    await broker.ping()


async def test_limits_storage_exhausts_a_fixed_window(broker: Broker, unique: str) -> None:
    limiter = FixedWindowRateLimiter(broker.limits_storage)
    item = RateLimitItemPerMinute(2)
    assert await limiter.hit(item, "login", unique)
    assert await limiter.hit(item, "login", unique)
    assert not await limiter.hit(item, "login", unique)
    assert not await limiter.test(item, "login", unique)
    assert await limiter.test(item, "login", "someone-else")


async def test_slow_subscriber_queue_stays_bounded() -> None:
    broker = MemoryBroker()
    try:
        async with broker.subscribe("flood") as subscription:
            for number in range(QUEUE_LIMIT + 500):
                await broker.publish("flood", str(number).encode())
            assert subscription.pending == QUEUE_LIMIT
            assert subscription.dropped == 500
            assert await subscription.get(0) == Message("flood", b"500")
    finally:
        await broker.aclose()


async def test_memory_sweeps_expired_keys_nobody_reads() -> None:
    broker = MemoryBroker(sweep_interval=0)

    async def swept() -> bool:
        await broker.set("trigger", b"x")  # Sweeps happen on writes.
        return broker.held_keys == 1

    try:
        for number in range(50):
            await broker.set(f"key-{number}", b"x", ttl=SHORT_TTL)
        assert broker.held_keys == 50
        await wait_until(swept)
    finally:
        await broker.aclose()


async def test_redis_prefixes_isolate_keys_and_channels(
    redis_server_url: str, redis_prefix: str
) -> None:
    first = RedisBroker(redis_server_url, prefix=f"{redis_prefix}a:")
    second = RedisBroker(redis_server_url, prefix=f"{redis_prefix}b:")
    raw = Redis.from_url(redis_server_url)
    try:
        await first.set("key", b"first")
        assert await second.get("key") is None
        assert await raw.get(f"{redis_prefix}a:key") == b"first"
        async with second.subscribe("news") as subscription:
            assert await first.publish("news", b"other prefix") == 0
            assert await subscription.get(0.05) is None
        await FixedWindowRateLimiter(first.limits_storage).hit(RateLimitItemPerMinute(1), "x")
        assert await raw.keys(f"{redis_prefix}a:limits:*")
    finally:
        await first.aclose()
        await second.aclose()
        await raw.aclose()


async def test_redis_sends_gets_asked_together_as_one_mget(
    redis_server_url: str, redis_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    broker = RedisBroker(redis_server_url, prefix=redis_prefix)
    batches: list[list[str]] = []
    send = broker.raw_mget

    async def counted(keys: list[str]) -> list[bytes | None]:
        batches.append(keys)
        return await send(keys)

    monkeypatch.setattr(broker, "raw_mget", counted)
    try:
        await broker.set("one", b"1")
        answers = await asyncio.gather(*(broker.get(key) for key in ["one", "two", "one"] * 10))
        assert answers == [b"1", None, b"1"] * 10
        assert batches == [["one", "two"]]
        assert await broker.get("one") == b"1"
        assert batches[1:] == [["one"]]
    finally:
        await broker.aclose()


async def test_redis_get_whose_caller_gave_up_leaves_the_others_answered(
    redis_server_url: str, redis_prefix: str
) -> None:
    broker = RedisBroker(redis_server_url, prefix=redis_prefix)
    try:
        await broker.set("key", b"value")
        abandoned = asyncio.ensure_future(broker.get("key"))
        kept = asyncio.ensure_future(broker.get("key"))
        await asyncio.sleep(0)
        abandoned.cancel()
        assert await kept == b"value"
        assert abandoned.cancelled()
    finally:
        await broker.aclose()


async def test_redis_gets_raise_when_unreachable() -> None:
    broker = RedisBroker("redis://127.0.0.1:1/0")
    try:
        answers = await asyncio.gather(
            broker.get("a"), broker.get("b"), broker.get("a"), return_exceptions=True
        )
        assert all(isinstance(answer, BrokerUnavailable) for answer in answers), answers
    finally:
        await broker.aclose()


async def test_redis_ping_raises_when_unreachable() -> None:
    broker = RedisBroker("redis://127.0.0.1:1/0")
    try:
        with pytest.raises(BrokerUnavailable):
            await broker.ping()
    finally:
        await broker.aclose()
