"""Readiness checks shared by concurrent probes for a moment.

A burst of probes (a load balancer, several replicas' health checks, a benchmark) would
otherwise open a database connection and ping the broker once each. One check runs at a time;
probes arriving meanwhile, or within ``HEALTH_CHECK_CACHE_SECONDS`` after it, get its result.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class SharedCheck(Generic[T]):
    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._seconds = seconds
        self._clock = clock
        self._lock = asyncio.Lock()
        self._result: T | None = None
        self._at = float("-inf")

    def _fresh(self) -> T | None:
        if self._result is not None and self._clock() - self._at < self._seconds:
            return self._result
        return None

    async def get(self, check: Callable[[], Awaitable[T]]) -> T:
        fresh = self._fresh()
        if fresh is not None:
            return fresh
        async with self._lock:
            fresh = self._fresh()
            if fresh is not None:
                return fresh
            result = await check()
            self._result, self._at = result, self._clock()
            return result
