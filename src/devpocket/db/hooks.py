"""Work that must wait until the transaction has committed (mail, broker notices)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncSession

AfterCommit = Callable[[], Awaitable[None]]
_KEY = "devpocket.after_commit"


def after_commit(db: AsyncSession, callback: AfterCommit) -> None:
    db.info.setdefault(_KEY, []).append(callback)


async def run_after_commit(db: AsyncSession) -> None:
    callbacks: list[AfterCommit] = db.info.pop(_KEY, [])
    for callback in callbacks:
        await callback()


def discard_after_commit(db: AsyncSession) -> None:
    db.info.pop(_KEY, None)
