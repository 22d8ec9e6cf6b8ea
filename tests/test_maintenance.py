"""Housekeeping on a timer: each run in its own transaction; a failed run is logged, not fatal."""

from __future__ import annotations

import asyncio
from datetime import datetime

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession
from structlog.testing import capture_logs

from devpocket.db import maintenance


async def test_a_failed_run_is_logged_and_the_next_one_runs(
    app_client: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app = app_client[0]
    runs: list[datetime] = []
    third = asyncio.Event()

    async def job(db: AsyncSession, now: datetime) -> None:
        runs.append(now)
        if len(runs) == 1:
            raise OperationalError("SELECT 1", {}, Exception("the database went away"))
        await db.execute(text("SELECT 1"))
        if len(runs) == 3:
            third.set()

    with capture_logs() as logs:
        task = asyncio.create_task(
            maintenance.every(0.01, "test_job", app.state.ctx.sessionmaker, job, first_after=0)
        )
        try:
            async with asyncio.timeout(10):
                await third.wait()
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
    assert runs == sorted(runs)
    failed = [entry for entry in logs if entry["event"] == "maintenance.failed"]
    assert [entry["job"] for entry in failed] == ["test_job"]


async def test_the_first_run_waits_until_the_start_is_over(
    app_client: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    """Requests of the first moments must not race the deletes."""
    app = app_client[0]
    ran = asyncio.Event()
    started = asyncio.get_running_loop().time()
    ran_at: list[float] = []

    async def job(db: AsyncSession, now: datetime) -> None:
        ran_at.append(asyncio.get_running_loop().time())
        ran.set()

    run = maintenance.every(60, "test_job", app.state.ctx.sessionmaker, job, first_after=0.3)
    task = asyncio.create_task(run)
    try:
        async with asyncio.timeout(10):
            await ran.wait()
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert ran_at[0] - started >= 0.3
