"""Named queries for command history: filtered pages, deletes, aggregates, export pages."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, case, cast, delete, func, or_, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Select

from devpocket.db.models import CommandHistory, Device, SshProfile
from devpocket.history.schemas import HistoryFilters, ListQuery

_SORT_COLUMNS = {
    "executed_at": CommandHistory.executed_at,
    "command": CommandHistory.command,
    "execution_time_ms": CommandHistory.execution_time_ms,
    "exit_code": CommandHistory.exit_code,
}
_NULLABLE_SORTS = frozenset({"execution_time_ms", "exit_code"})


def dialect_of(db: AsyncSession) -> str:
    return db.get_bind().dialect.name


async def get_entry(db: AsyncSession, entry_id: uuid.UUID) -> CommandHistory | None:
    return await db.get(CommandHistory, entry_id)


async def current_entry(db: AsyncSession, entry_id: uuid.UUID) -> CommandHistory | None:
    """The entry as the database has it now, also when the session already holds it (its
    object is refreshed in place); None once deleted."""
    return await db.get(CommandHistory, entry_id, populate_existing=True)


async def owns_profile(db: AsyncSession, user_id: uuid.UUID, profile_id: uuid.UUID) -> bool:
    owner = await db.scalar(select(SshProfile.user_id).where(SshProfile.id == profile_id))
    return owner == user_id


async def owns_device(db: AsyncSession, user_id: uuid.UUID, device_id: uuid.UUID) -> bool:
    owner = await db.scalar(select(Device.user_id).where(Device.id == device_id))
    return owner == user_id


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _has_tags(dialect: str, tags: Sequence[str]) -> ColumnElement[bool]:
    """Entries carrying every one of ``tags`` (a JSON array column)."""
    if dialect == "postgresql":
        return cast(CommandHistory.tags, JSONB).contains(list(tags))
    conditions = []
    for tag in tags:
        each = func.json_each(CommandHistory.tags).table_valued("value")
        conditions.append(select(each.c.value).where(each.c.value == tag).exists())
    return and_(*conditions)


def filter_conditions(
    dialect: str, user_id: uuid.UUID, filters: HistoryFilters
) -> list[ColumnElement[bool]]:
    """The WHERE clause of a list or an export, as a list of conditions."""
    return [
        CommandHistory.user_id == user_id,
        *_exact_conditions(filters),
        *_text_and_time_conditions(dialect, filters),
    ]


def _exact_conditions(filters: HistoryFilters) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if filters.result_types:
        conditions.append(CommandHistory.result_type.in_(filters.result_types))
    if filters.session_id is not None:
        conditions.append(CommandHistory.session_id == filters.session_id)
    if filters.ssh_profile_id is not None:
        conditions.append(CommandHistory.ssh_profile_id == filters.ssh_profile_id)
    if filters.device_id is not None:
        conditions.append(CommandHistory.device_id == filters.device_id)
    if filters.favorites_only:
        conditions.append(CommandHistory.is_favorite.is_(True))
    return conditions


def _text_and_time_conditions(dialect: str, filters: HistoryFilters) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if filters.start_date is not None:
        conditions.append(CommandHistory.executed_at >= filters.start_date)
    if filters.end_date is not None:
        conditions.append(CommandHistory.executed_at <= filters.end_date)
    if filters.query:
        needle = f"%{_escape_like(filters.query.lower())}%"
        conditions.append(func.lower(CommandHistory.command).like(needle, escape="\\"))
    if filters.tags:
        conditions.append(_has_tags(dialect, filters.tags))
    return conditions


def _ordered(statement: Select[Any], query: ListQuery) -> Select[Any]:
    column = _SORT_COLUMNS[query.sort_by]
    direction = column.desc() if query.sort_desc else column.asc()
    if query.sort_by in _NULLABLE_SORTS:
        # The same order on both databases (PostgreSQL puts NULLs first when descending).
        direction = direction.nulls_last()
    tiebreak = CommandHistory.executed_at.desc() if query.sort_desc else CommandHistory.executed_at
    ids = CommandHistory.id.desc() if query.sort_desc else CommandHistory.id.asc()
    if query.sort_by == "executed_at":
        return statement.order_by(direction, ids)
    return statement.order_by(direction, tiebreak, ids)


async def list_entries(
    db: AsyncSession, user_id: uuid.UUID, query: ListQuery
) -> tuple[list[CommandHistory], int]:
    """A page of the user's entries matching ``query``, and how many match in all."""
    conditions = filter_conditions(dialect_of(db), user_id, query)
    statement = _ordered(select(CommandHistory).where(*conditions), query)
    rows = await db.scalars(statement.limit(query.limit).offset(query.offset))
    total = await db.scalar(select(func.count()).select_from(CommandHistory).where(*conditions))
    return list(rows), int(total or 0)


async def recent_entries(db: AsyncSession, user_id: uuid.UUID, limit: int) -> list[CommandHistory]:
    rows = await db.scalars(
        select(CommandHistory)
        .where(CommandHistory.user_id == user_id)
        .order_by(CommandHistory.executed_at.desc(), CommandHistory.id.desc())
        .limit(limit)
    )
    return list(rows)


async def export_page(
    db: AsyncSession,
    user_id: uuid.UUID,
    filters: HistoryFilters,
    after: tuple[datetime, uuid.UUID] | None,
    size: int,
) -> list[CommandHistory]:
    """Entries in the order they ran, after ``after`` (keyset paging: stable under inserts)."""
    conditions = filter_conditions(dialect_of(db), user_id, filters)
    if after is not None:
        at, entry_id = after
        conditions.append(
            or_(
                CommandHistory.executed_at > at,
                and_(CommandHistory.executed_at == at, CommandHistory.id > entry_id),
            )
        )
    rows = await db.scalars(
        select(CommandHistory)
        .where(*conditions)
        .order_by(CommandHistory.executed_at, CommandHistory.id)
        .limit(size)
    )
    return list(rows)


async def delete_ids(
    db: AsyncSession, user_id: uuid.UUID, ids: Sequence[uuid.UUID]
) -> list[uuid.UUID]:
    """Delete the user's entries among ``ids``; answers the ids deleted."""
    result = await db.scalars(
        delete(CommandHistory)
        .where(CommandHistory.user_id == user_id, CommandHistory.id.in_(ids))
        .returning(CommandHistory.id)
        .execution_options(synchronize_session=False)
    )
    return list(result)


async def delete_matching(
    db: AsyncSession, user_id: uuid.UUID, *, before: datetime | None, session_id: str | None
) -> list[uuid.UUID]:
    conditions = [CommandHistory.user_id == user_id]
    if before is not None:
        conditions.append(CommandHistory.executed_at < before)
    if session_id is not None:
        conditions.append(CommandHistory.session_id == session_id)
    result = await db.scalars(
        delete(CommandHistory)
        .where(*conditions)
        .returning(CommandHistory.id)
        .execution_options(synchronize_session=False)
    )
    return list(result)


# --- Aggregates for /history/stats --------------------------------------------------------------


async def totals_by_type(db: AsyncSession, user_id: uuid.UUID) -> list[Any]:
    """Per result type: entries, favorites, first and last run, summed and counted durations."""
    favorite = case((CommandHistory.is_favorite.is_(True), 1), else_=0)
    rows = await db.execute(
        select(
            CommandHistory.result_type,
            func.count().label("count"),
            func.sum(favorite).label("favorites"),
            func.min(CommandHistory.executed_at).label("first"),
            func.max(CommandHistory.executed_at).label("last"),
            func.sum(CommandHistory.execution_time_ms).label("time_sum"),
            func.count(CommandHistory.execution_time_ms).label("timed"),
        )
        .where(CommandHistory.user_id == user_id)
        .group_by(CommandHistory.result_type)
    )
    return list(rows)


async def counts_by(
    db: AsyncSession, user_id: uuid.UUID, column: Any, *, limit: int | None = None
) -> list[tuple[Any, int]]:
    """Entries per value of ``column`` (NULLs left out), most entries first."""
    count = func.count().label("count")
    statement = (
        select(column, count)
        .where(CommandHistory.user_id == user_id, column.is_not(None))
        .group_by(column)
        .order_by(count.desc(), column)
    )
    if limit is not None:
        statement = statement.limit(limit)
    return [(value, int(n)) for value, n in await db.execute(statement)]


async def recent_directories(db: AsyncSession, user_id: uuid.UUID, limit: int) -> list[str]:
    last = func.max(CommandHistory.executed_at).label("last")
    rows = await db.execute(
        select(CommandHistory.working_directory, last)
        .where(
            CommandHistory.user_id == user_id,
            CommandHistory.working_directory.is_not(None),
            CommandHistory.working_directory != "",
        )
        .group_by(CommandHistory.working_directory)
        .order_by(last.desc(), CommandHistory.working_directory)
        .limit(limit)
    )
    return [str(directory) for directory, _ in rows]
