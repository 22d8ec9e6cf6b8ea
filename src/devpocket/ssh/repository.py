"""Named queries for SSH profiles and keys."""

from __future__ import annotations

import uuid

from sqlalchemy import Select, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from devpocket.db.models import SshKey, SshProfile


async def list_profiles_for_user(
    db: AsyncSession, user_id: uuid.UUID, *, query: str | None = None
) -> list[SshProfile]:
    """One query; default first, then by name, then id (stable)."""
    statement = select(SshProfile).where(SshProfile.user_id == user_id)
    if query:
        needle = f"%{query.lower()}%"
        statement = statement.where(
            or_(func.lower(SshProfile.name).like(needle), func.lower(SshProfile.host).like(needle))
        )
    statement = statement.order_by(
        SshProfile.is_default.desc(), func.lower(SshProfile.name), SshProfile.id
    )
    return list((await db.scalars(statement)).all())


async def get_profile(db: AsyncSession, profile_id: uuid.UUID) -> SshProfile | None:
    return await db.get(SshProfile, profile_id)


async def current_profile(db: AsyncSession, profile_id: uuid.UUID) -> SshProfile | None:
    """The profile as the database has it now, also when the session already holds it (its
    object is refreshed in place); None once deleted."""
    return await db.get(SshProfile, profile_id, populate_existing=True)


async def count_profiles(db: AsyncSession, user_id: uuid.UUID) -> int:
    count = await db.scalar(
        select(func.count()).select_from(SshProfile).where(SshProfile.user_id == user_id)
    )
    return int(count or 0)


async def clear_default(db: AsyncSession, user_id: uuid.UUID, keep: uuid.UUID) -> list[SshProfile]:
    """Unmark the user's other default profiles (at most one); returns them."""
    others = await _current(
        db,
        select(SshProfile).where(
            SshProfile.user_id == user_id, SshProfile.id != keep, SshProfile.is_default
        ),
    )
    for profile in others:
        profile.is_default = False
    return others


async def profiles_jumping_through(db: AsyncSession, hop: SshProfile) -> list[SshProfile]:
    return await _current(
        db,
        select(SshProfile).where(
            SshProfile.user_id == hop.user_id, SshProfile.jump_profile_id == hop.id
        ),
    )


async def profiles_using_key(db: AsyncSession, key: SshKey) -> list[SshProfile]:
    return await _current(db, select(SshProfile).where(SshProfile.key_id == key.id))


async def _current(db: AsyncSession, statement: Select[SshProfile]) -> list[SshProfile]:
    """Rows as the database has them now, also those the session already holds."""
    rows = await db.scalars(statement.execution_options(populate_existing=True))
    return list(rows.all())


async def list_keys_for_user(db: AsyncSession, user_id: uuid.UUID) -> list[tuple[SshKey, int]]:
    """Keys with how many profiles use each, in one query."""
    users = func.count(SshProfile.id)
    rows = await db.execute(
        select(SshKey, users)
        .outerjoin(SshProfile, SshProfile.key_id == SshKey.id)
        .where(SshKey.user_id == user_id)
        .group_by(SshKey.id)
        .order_by(func.lower(SshKey.name), SshKey.id)
    )
    return [(key, int(count)) for key, count in rows.all()]


async def get_key(db: AsyncSession, key_id: uuid.UUID) -> SshKey | None:
    return await db.get(SshKey, key_id)


async def current_key(db: AsyncSession, key_id: uuid.UUID) -> SshKey | None:
    """The key as the database has it now, also when the session already holds it (its object
    is refreshed in place); None once deleted."""
    return await db.get(SshKey, key_id, populate_existing=True)


async def count_profiles_using_key(db: AsyncSession, key_id: uuid.UUID) -> int:
    count = await db.scalar(
        select(func.count()).select_from(SshProfile).where(SshProfile.key_id == key_id)
    )
    return int(count or 0)


async def get_key_by_fingerprint(
    db: AsyncSession, user_id: uuid.UUID, fingerprint: str
) -> SshKey | None:
    return await db.scalar(
        select(SshKey).where(SshKey.user_id == user_id, SshKey.fingerprint == fingerprint)
    )
