"""Named queries of the change feed, the entities' sync state and pushed changes."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import bindparam, func, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from devpocket.db.models import Device, SyncAppliedChange, SyncChange, SyncEntity, User
from devpocket.sync.changes import Entity, keep


async def feed_head(db: AsyncSession, user_id: uuid.UUID) -> int:
    """The cursor of the user's last committed change (0 before the first)."""
    head = await db.scalar(select(User.sync_cursor).where(User.id == user_id))
    return int(head or 0)


async def changes_between(
    db: AsyncSession,
    user_id: uuid.UUID,
    *,
    after: int,
    upto: int,
    limit: int,
    exclude_device: uuid.UUID | None = None,
) -> list[SyncChange]:
    """Changes with ``after < cursor <= upto``, oldest first, at most ``limit``."""
    statement = select(SyncChange).where(
        SyncChange.user_id == user_id, SyncChange.cursor > after, SyncChange.cursor <= upto
    )
    if exclude_device is not None:
        statement = statement.where(
            or_(SyncChange.device_id.is_(None), SyncChange.device_id != exclude_device)
        )
    rows = await db.scalars(statement.order_by(SyncChange.cursor).limit(limit))
    return list(rows.all())


async def entity_state(
    db: AsyncSession, user_id: uuid.UUID, entity: Entity, entity_id: uuid.UUID
) -> SyncEntity | None:
    key = (user_id, entity, entity_id)
    state = await db.get(SyncEntity, key)
    keep(db, key, state)
    return state


# Built once, run once per pushed change (see ``changes._CURSOR_STEP``).
_SNAPSHOT_AT = (
    select(SyncChange.data)
    .where(
        SyncChange.user_id == bindparam("user_id"),
        SyncChange.entity == bindparam("entity"),
        SyncChange.entity_id == bindparam("entity_id"),
        SyncChange.cursor <= bindparam("cursor"),
    )
    .order_by(SyncChange.cursor.desc())
    .limit(1)
)


async def snapshot_at(
    db: AsyncSession, user_id: uuid.UUID, entity: Entity, entity_id: uuid.UUID, cursor: int
) -> dict[str, Any] | None:
    """The entity's synced fields as of ``cursor`` (its latest change up to there), if known."""
    params = {"user_id": user_id, "entity": entity, "entity_id": entity_id, "cursor": cursor}
    data = await db.scalar(_SNAPSHOT_AT, params)
    return dict(data) if isinstance(data, dict) else None


async def applied_results(
    db: AsyncSession, user_id: uuid.UUID, change_ids: list[uuid.UUID]
) -> dict[uuid.UUID, dict[str, Any]]:
    """The first answers to changes pushed before, by change id."""
    if not change_ids:
        return {}
    rows = await db.execute(
        select(SyncAppliedChange.change_id, SyncAppliedChange.result).where(
            SyncAppliedChange.user_id == user_id, SyncAppliedChange.change_id.in_(change_ids)
        )
    )
    return {change_id: dict(result) for change_id, result in rows.all()}


async def keep_results(
    db: AsyncSession, user_id: uuid.UUID, results: dict[uuid.UUID, dict[str, Any]]
) -> None:
    """Store a push's answers by change id, in one statement."""
    if results:
        rows = [{"user_id": user_id, "change_id": k, "result": v} for k, v in results.items()]
        await db.execute(insert(SyncAppliedChange), rows)


async def first_devices(db: AsyncSession, user_id: uuid.UUID, count: int) -> set[uuid.UUID]:
    """The user's ``count`` oldest devices (the ones a plan's device limit lets sync)."""
    rows = await db.scalars(
        select(Device.id)
        .where(Device.user_id == user_id)
        .order_by(Device.created_at, Device.id)
        .limit(count)
    )
    return set(rows)


async def count_devices(db: AsyncSession, user_id: uuid.UUID) -> int:
    total = await db.scalar(
        select(func.count()).select_from(Device).where(Device.user_id == user_id)
    )
    return int(total or 0)


async def owns_device(db: AsyncSession, user_id: uuid.UUID, device_id: uuid.UUID) -> bool:
    device = await db.get(Device, device_id)
    return device is not None and device.user_id == user_id
