"""Shared state between workers: Redis or in-process behind one interface."""

from devpocket.broker.base import Broker, BrokerUnavailable, Message, Subscription

__all__ = ["Broker", "BrokerUnavailable", "Message", "Subscription", "create_broker"]


def create_broker(redis_url: str | None, *, prefix: str = "devpocket:") -> Broker:
    """Redis when a URL is configured, in-process otherwise. Nothing connects until first use."""
    if redis_url:
        from devpocket.broker.redis import RedisBroker

        return RedisBroker(redis_url, prefix=prefix)
    from devpocket.broker.memory import MemoryBroker

    return MemoryBroker()
