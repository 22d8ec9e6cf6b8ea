"""Concurrent readiness probes share one check for a moment."""

from __future__ import annotations

import asyncio

from devpocket.health.probe import SharedCheck


async def test_concurrent_probes_share_one_check() -> None:
    now = [0.0]
    shared: SharedCheck[int] = SharedCheck(1.0, clock=lambda: now[0])
    runs = 0

    async def check() -> int:
        nonlocal runs
        runs += 1
        await asyncio.sleep(0.01)
        return runs

    results = await asyncio.gather(*(shared.get(check) for _ in range(10)))
    assert results == [1] * 10
    now[0] = 0.5
    assert await shared.get(check) == 1
    now[0] = 1.5
    assert await shared.get(check) == 2


async def test_zero_seconds_checks_every_time() -> None:
    shared: SharedCheck[int] = SharedCheck(0.0)
    runs = 0

    async def check() -> int:
        nonlocal runs
        runs += 1
        return runs

    assert [await shared.get(check) for _ in range(3)] == [1, 2, 3]
