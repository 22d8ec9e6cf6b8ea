"""Housekeeping that every server process runs on a timer, each run in a transaction of its own.

The jobs (history retention, sync feed retention) are idempotent deletes: several processes
doing the same work do no harm, and a run that fails is logged and tried again next time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import structlog
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

log = structlog.get_logger(__name__)

Job = Callable[[AsyncSession, datetime], Awaitable[None]]


async def every(
    seconds: float, name: str, sessionmaker: async_sessionmaker[AsyncSession], job: Job
) -> None:
    """Run ``job`` now and then every ``seconds``, committing each run, while the server runs."""
    while True:
        try:
            async with sessionmaker() as db:
                await job(db, datetime.now(UTC))
                await db.commit()
        except (SQLAlchemyError, OSError):
            log.exception("maintenance.failed", job=name)
        await asyncio.sleep(seconds)
