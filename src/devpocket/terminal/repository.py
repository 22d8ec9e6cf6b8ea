"""Named queries over terminal session records and the command blocks they produced."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from devpocket.db.models import CommandHistory, TerminalSession


async def list_sessions_for_user(
    db: AsyncSession, user_id: uuid.UUID, *, limit: int, offset: int
) -> tuple[list[TerminalSession], int]:
    rows = await db.scalars(
        select(TerminalSession)
        .where(TerminalSession.user_id == user_id)
        .order_by(TerminalSession.created_at.desc(), TerminalSession.id)
        .limit(limit)
        .offset(offset)
    )
    total = await db.scalar(
        select(func.count()).select_from(TerminalSession).where(TerminalSession.user_id == user_id)
    )
    return list(rows), int(total or 0)


async def get_session_for_user(
    db: AsyncSession, user_id: uuid.UUID, session_id: uuid.UUID
) -> TerminalSession | None:
    record = await db.get(TerminalSession, session_id)
    return record if record is not None and record.user_id == user_id else None


async def commands_of_session(
    db: AsyncSession, user_id: uuid.UUID, session_id: str, *, limit: int
) -> list[str]:
    rows = await db.scalars(
        select(CommandHistory.command)
        .where(CommandHistory.user_id == user_id, CommandHistory.session_id == session_id)
        .order_by(CommandHistory.executed_at, CommandHistory.created_at)
        .limit(limit)
    )
    return list(rows)


async def get_block(
    db: AsyncSession, user_id: uuid.UUID, block_id: uuid.UUID
) -> CommandHistory | None:
    entry = await db.get(CommandHistory, block_id)
    return entry if entry is not None and entry.user_id == user_id else None


async def mark_alive(db: AsyncSession, live: list[uuid.UUID], now: datetime) -> None:
    if live:
        await db.execute(
            update(TerminalSession).where(TerminalSession.id.in_(live)).values(seen_at=now)
        )


async def end_lost(db: AsyncSession, seen_before: datetime, now: datetime) -> int:
    """End the records of sessions whose server stopped vouching for them (it crashed)."""
    result = await db.execute(
        update(TerminalSession)
        .where(TerminalSession.status == "active", TerminalSession.seen_at < seen_before)
        .values(status="ended", ended_at=now, end_reason="server_lost")
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def session_counts(db: AsyncSession, user_id: uuid.UUID) -> dict[str, int]:
    rows = await db.execute(
        select(TerminalSession.type, func.count())
        .where(TerminalSession.user_id == user_id)
        .group_by(TerminalSession.type)
    )
    return {str(kind): int(count) for kind, count in rows}


async def usage_seconds_ms(db: AsyncSession, user_id: uuid.UUID, now: datetime) -> int:
    """Total time of the user's sessions in milliseconds (running ones count up to ``now``)."""
    rows = await db.execute(
        select(TerminalSession.created_at, TerminalSession.ended_at).where(
            TerminalSession.user_id == user_id
        )
    )
    total = 0.0
    for started, ended in rows:
        total += ((ended or now) - started).total_seconds()
    return int(total * 1000)


async def top_commands(
    db: AsyncSession, user_id: uuid.UUID, *, limit: int
) -> list[tuple[str, int]]:
    count = func.count().label("count")
    rows = await db.execute(
        select(CommandHistory.command, count)
        .where(CommandHistory.user_id == user_id, CommandHistory.session_id.is_not(None))
        .group_by(CommandHistory.command)
        .order_by(count.desc(), CommandHistory.command)
        .limit(limit)
    )
    return [(str(command), int(n)) for command, n in rows]


async def count_session_commands(db: AsyncSession, user_id: uuid.UUID) -> int:
    total = await db.scalar(
        select(func.count())
        .select_from(CommandHistory)
        .where(CommandHistory.user_id == user_id, CommandHistory.session_id.is_not(None))
    )
    return int(total or 0)


async def count_active(db: AsyncSession, user_id: uuid.UUID) -> int:
    total = await db.scalar(
        select(func.count())
        .select_from(TerminalSession)
        .where(TerminalSession.user_id == user_id, TerminalSession.status == "active")
    )
    return int(total or 0)
