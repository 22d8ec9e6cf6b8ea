"""Login sessions: starting one, issuing its tokens, revoking and announcing revocations."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from devpocket.auth import repository
from devpocket.auth.schemas import AuthResult, DeviceInfo, UserOut
from devpocket.auth.tokens import hash_opaque_token, new_opaque_token
from devpocket.broker import BrokerUnavailable
from devpocket.context import AppContext
from devpocket.db.hooks import after_commit
from devpocket.db.models import AuthSession, Device, RefreshToken, User

REVOKED_CHANNEL = "auth.session_revoked"
USER_DELETED_CHANNEL = "auth.user_deleted"
log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class ClientInfo:
    ip: str
    user_agent: str | None


def _device_name(info: DeviceInfo, client: ClientInfo) -> str:
    if info.device_name:
        return info.device_name
    if client.user_agent:
        return client.user_agent[:200]
    return "Unknown device"


async def _device_for_login(
    db: AsyncSession, user: User, info: DeviceInfo, client: ClientInfo, now: datetime
) -> Device:
    """Reuse the device the app names when it is this user's; otherwise record a new one."""
    named = await db.get(Device, info.device_id) if info.device_id else None
    device = named if named is not None and named.user_id == user.id else None
    if device is None:
        # Another user's device id is not reused: this login gets a fresh id.
        taken = named is not None
        device = Device(
            id=uuid.uuid4() if taken or info.device_id is None else info.device_id,
            user_id=user.id,
            name=_device_name(info, client),
            created_at=now,
        )
        db.add(device)
    device.name = info.device_name or device.name
    device.platform = info.platform or device.platform
    device.app_version = info.app_version or device.app_version
    device.user_agent = (client.user_agent or "")[:500] or device.user_agent
    device.last_ip = client.ip
    device.last_seen_at = now
    # No relationship() ties sessions to devices, so the device row must exist first.
    await db.flush()
    return device


async def start_session(
    db: AsyncSession,
    ctx: AppContext,
    user: User,
    *,
    method: str,
    device: DeviceInfo,
    client: ClientInfo,
    now: datetime,
) -> AuthResult:
    record = await _device_for_login(db, user, device, client, now)
    session = AuthSession(user_id=user.id, device_id=record.id, method=method, created_at=now)
    db.add(session)
    await db.flush()
    return await issue_tokens(db, ctx, user, session, now)


async def issue_tokens(
    db: AsyncSession,
    ctx: AppContext,
    user: User,
    session: AuthSession,
    now: datetime,
    *,
    parent: RefreshToken | None = None,
) -> AuthResult:
    raw = new_opaque_token()
    db.add(
        RefreshToken(
            session_id=session.id,
            parent_id=parent.id if parent else None,
            token_hash=hash_opaque_token(raw),
            created_at=now,
            expires_at=now + timedelta(days=ctx.settings.jwt_refresh_token_expire_days),
        )
    )
    await db.flush()
    await db.refresh(user)
    return AuthResult(
        user=UserOut.of(user),
        access_token=ctx.access_tokens.issue(user.id, session.id, now),
        refresh_token=raw,
        expires_in=int(ctx.access_tokens.lifetime.total_seconds()),
    )


def auth_changed(db: AsyncSession, ctx: AppContext, user_id: uuid.UUID) -> None:
    """After commit, make every worker re-check this user's sessions (see ``auth/cache.py``)."""

    async def invalidate() -> None:
        await ctx.auth_cache.invalidate(user_id)

    after_commit(db, invalidate)


def announce_revoked(db: AsyncSession, ctx: AppContext, session_ids: list[uuid.UUID]) -> None:
    """After commit, tell every worker (open WebSockets, caches) that these sessions ended."""
    if not session_ids:
        return

    async def publish() -> None:
        try:
            for session_id in session_ids:
                await ctx.broker.publish(REVOKED_CHANNEL, str(session_id).encode())
        except BrokerUnavailable:
            # The revocation is committed and every request checks it; only the nudge to open
            # connections is lost, and those re-check their session on their own schedule.
            log.warning("auth.revocation_notice_failed", sessions=len(session_ids))

    after_commit(db, publish)


def announce_deleted(
    db: AsyncSession,
    ctx: AppContext,
    user_id: uuid.UUID,
    *,
    fallback: Callable[[uuid.UUID], None],
) -> None:
    """After commit, tell every worker that the user is gone (their terminals end at once).

    Without a broker to say it, ``fallback`` does this worker's part.
    """

    async def publish() -> None:
        try:
            await ctx.broker.publish(USER_DELETED_CHANNEL, str(user_id).encode())
        except BrokerUnavailable:
            log.warning("auth.deletion_notice_failed", user_id=str(user_id))
            fallback(user_id)

    after_commit(db, publish)


async def revoke_user_sessions(
    db: AsyncSession,
    ctx: AppContext,
    user_id: uuid.UUID,
    *,
    reason: str,
    now: datetime,
    device_id: uuid.UUID | None = None,
    keep: uuid.UUID | None = None,
) -> list[uuid.UUID]:
    ids = await repository.revoke_sessions(
        db, user_id, reason=reason, now=now, device_id=device_id, keep=keep
    )
    auth_changed(db, ctx, user_id)
    announce_revoked(db, ctx, ids)
    return ids


async def revoke_session(
    db: AsyncSession, ctx: AppContext, session: AuthSession, *, reason: str, now: datetime
) -> None:
    if session.revoked_at is None:
        session.revoked_at = now
        session.revoked_reason = reason
        auth_changed(db, ctx, session.user_id)
        announce_revoked(db, ctx, [session.id])
