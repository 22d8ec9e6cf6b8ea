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
# Not in the first moments of a start: the first requests would race the deletes (an entry
# recorded then could be pruned under them), and a start that fails at once (the port taken)
# would cancel them mid-statement.
FIRST_RUN_AFTER_SECONDS = 60.0


async def every(
    seconds: float,
    name: str,
    sessionmaker: async_sessionmaker[AsyncSession],
    job: Job,
    *,
    first_after: float = FIRST_RUN_AFTER_SECONDS,
) -> None:
    """Run ``job`` after ``first_after`` seconds, then every ``seconds``, committing each run,
    while the server runs."""
    await asyncio.sleep(first_after)
    while True:
        try:
            async with sessionmaker() as db:
                await job(db, datetime.now(UTC))
                await db.commit()
        except (SQLAlchemyError, OSError):
            log.exception("maintenance.failed", job=name)
        await asyncio.sleep(seconds)
