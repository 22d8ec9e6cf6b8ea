"""Named queries for accounts, login sessions, refresh and action tokens."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from devpocket.db.models import ActionToken, AuthSession, RefreshToken, User


async def get_user(db: AsyncSession, user_id: uuid.UUID) -> User | None:
    return await db.get(User, user_id)


async def get_user_by_email(db: AsyncSession, email: str) -> User | None:
    return await db.scalar(select(User).where(User.email == email.lower()))


async def get_user_by_username(db: AsyncSession, username: str) -> User | None:
    return await db.scalar(select(User).where(User.username_key == username.lower()))


async def get_user_by_login(db: AsyncSession, identifier: str) -> User | None:
    """The `email` field of a login holds an email address or a username."""
    if "@" in identifier:
        return await get_user_by_email(db, identifier)
    return await get_user_by_username(db, identifier)


async def get_user_by_google_subject(db: AsyncSession, subject: str) -> User | None:
    return await db.scalar(select(User).where(User.google_subject == subject))


# Built once: this runs on every authenticated request.
_USER_WITH_SESSION = (
    select(User, AuthSession)
    .join(AuthSession, AuthSession.user_id == User.id)
    .where(User.id == bindparam("user_id"), AuthSession.id == bindparam("session_id"))
)


async def get_user_with_session(
    db: AsyncSession, user_id: uuid.UUID, session_id: uuid.UUID
) -> tuple[User, AuthSession] | None:
    """The user and the login session of an access token, in one round trip."""
    params = {"user_id": user_id, "session_id": session_id}
    row = (await db.execute(_USER_WITH_SESSION, params)).first()
    return None if row is None else (row[0], row[1])


async def get_refresh_token(db: AsyncSession, token_hash: str) -> RefreshToken | None:
    return await db.scalar(select(RefreshToken).where(RefreshToken.token_hash == token_hash))


async def get_successor_token(db: AsyncSession, token_id: uuid.UUID) -> RefreshToken | None:
    """The refresh token issued when ``token_id`` was rotated."""
    return await db.scalar(select(RefreshToken).where(RefreshToken.parent_id == token_id))


async def mark_refresh_token_rotated(db: AsyncSession, token_id: uuid.UUID, now: datetime) -> bool:
    """Rotate atomically: False when a concurrent request rotated it first."""
    result = await db.execute(
        update(RefreshToken)
        .where(RefreshToken.id == token_id, RefreshToken.rotated_at.is_(None))
        .values(rotated_at=now)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def get_auth_session(db: AsyncSession, session_id: uuid.UUID) -> AuthSession | None:
    return await db.get(AuthSession, session_id)


async def revoke_sessions(
    db: AsyncSession,
    user_id: uuid.UUID,
    *,
    reason: str,
    now: datetime,
    device_id: uuid.UUID | None = None,
    keep: uuid.UUID | None = None,
) -> list[uuid.UUID]:
    """Revoke a user's live sessions (or one device's); returns the revoked ids."""
    query = select(AuthSession.id).where(
        AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None)
    )
    if device_id is not None:
        query = query.where(AuthSession.device_id == device_id)
    if keep is not None:
        query = query.where(AuthSession.id != keep)
    ids = list((await db.scalars(query)).all())
    if ids:
        await db.execute(
            update(AuthSession)
            .where(AuthSession.id.in_(ids))
            .values(revoked_at=now, revoked_reason=reason)
            .execution_options(synchronize_session=False)
        )
    return ids


async def get_action_token(db: AsyncSession, token_hash: str, purpose: str) -> ActionToken | None:
    return await db.scalar(
        select(ActionToken).where(
            ActionToken.token_hash == token_hash, ActionToken.purpose == purpose
        )
    )


async def expire_action_tokens(
    db: AsyncSession, user_id: uuid.UUID, purpose: str, now: datetime
) -> None:
    """Earlier unused links of the same kind stop working when a new one is sent."""
    await db.execute(
        update(ActionToken)
        .where(
            ActionToken.user_id == user_id,
            ActionToken.purpose == purpose,
            ActionToken.used_at.is_(None),
        )
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
