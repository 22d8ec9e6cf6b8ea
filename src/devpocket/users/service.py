"""The signed-in user's profile, preferences, devices and account deletion."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from devpocket.auth.schemas import ProfileUpdateRequest
from devpocket.auth.service import confirm_password
from devpocket.auth.sessions import (
    ClientInfo,
    announce_deleted,
    announce_revoked,
    auth_changed,
    revoke_user_sessions,
)
from devpocket.context import AppContext
from devpocket.db.models import AuthSession, Device, User
from devpocket.errors import InvalidInput, NotFound
from devpocket.sync.changes import Origin, lock_feed
from devpocket.sync.entities import preferences_data, record_preferences
from devpocket.users.schemas import (
    ACCOUNT_DELETION_CONFIRMATION,
    AccountDeletionRequest,
    DeviceOut,
    DeviceUpdate,
    Preferences,
    PreferencesUpdate,
)


async def update_profile(
    db: AsyncSession, ctx: AppContext, user: User, data: ProfileUpdateRequest
) -> User:
    """Only the keys sent change; an explicit null clears a field."""
    for field, value in data.model_dump(exclude_unset=True).items():
        if field in {"email_notifications", "push_notifications"} and value is None:
            continue
        setattr(user, field, value)
    user.updated_at = datetime.now(UTC)
    await db.flush()
    auth_changed(db, ctx, user.id)
    return user


def preferences_of(user: User) -> Preferences:
    return Preferences.model_validate(user.preferences or {})


async def update_preferences(
    db: AsyncSession, user: User, data: PreferencesUpdate, *, origin: Origin | None = None
) -> Preferences:
    if await lock_feed(db, user.id):
        await db.refresh(user)  # as committed before the lock: two saves merge, neither is lost
    merged: dict[str, Any] = dict(user.preferences or {})
    for section, values in data.model_dump(exclude_unset=True).items():
        if isinstance(values, dict) and isinstance(merged.get(section), dict):
            merged[section] = {**merged[section], **values}
        else:
            merged[section] = values
    return await save_preferences(db, user, merged, origin=origin)


async def save_preferences(
    db: AsyncSession, user: User, values: dict[str, Any], *, origin: Origin | None = None
) -> Preferences:
    """Replace the preferences with ``values`` once they validate; the feed records the change."""
    try:
        preferences = Preferences.model_validate(values)
    except ValidationError as error:
        raise InvalidInput(
            "Some preferences have invalid values.",
            code="preferences_invalid",
            details=[{"loc": list(e["loc"]), "msg": e["msg"]} for e in error.errors()],
        ) from None
    before = preferences_data(user)
    user.preferences = preferences.model_dump(mode="json")
    user.updated_at = datetime.now(UTC)
    await record_preferences(db, user, before, origin)
    return preferences


async def list_devices(
    db: AsyncSession, user_id: uuid.UUID, current_device: uuid.UUID | None
) -> list[DeviceOut]:
    live = func.count(AuthSession.id).filter(AuthSession.revoked_at.is_(None))
    rows = await db.execute(
        select(Device, live)
        .outerjoin(AuthSession, AuthSession.device_id == Device.id)
        .where(Device.user_id == user_id)
        .group_by(Device.id)
        .having(live > 0)
        .order_by(Device.last_seen_at.desc(), Device.id)
    )
    return [
        DeviceOut(
            id=device.id,
            name=device.name,
            platform=device.platform,
            app_version=device.app_version,
            last_ip=device.last_ip,
            created_at=device.created_at,
            last_seen_at=device.last_seen_at,
            is_current=device.id == current_device,
            active_sessions=count,
        )
        for device, count in rows.all()
    ]


async def update_current_device(
    db: AsyncSession, ctx: AppContext, current: AuthSession, data: DeviceUpdate
) -> uuid.UUID:
    device = await db.get(Device, current.device_id) if current.device_id else None
    if device is None:
        device = Device(user_id=current.user_id, name=data.name or "Unknown device")
        db.add(device)
        await db.flush()
        current.device_id = device.id
        auth_changed(db, ctx, current.user_id)
    device.name = data.name or device.name
    device.platform = data.platform or device.platform
    device.app_version = data.app_version or device.app_version
    device.last_seen_at = datetime.now(UTC)
    await db.flush()
    return device.id


async def remove_device(
    db: AsyncSession, ctx: AppContext, user: User, device_id: uuid.UUID
) -> None:
    """Sign the device out (all its sessions) and forget it."""
    # The feed lock first, as every sync writer takes it: the database clears the device from
    # the user's history entries, rows that a push holding the lock may be changing.
    await lock_feed(db, user.id)
    device = await db.get(Device, device_id)
    if device is None or device.user_id != user.id:
        raise NotFound("No such device.", code="device_not_found")
    await revoke_user_sessions(
        db, ctx, user.id, reason="device_removed", now=datetime.now(UTC), device_id=device.id
    )
    await db.delete(device)


async def delete_account(
    db: AsyncSession,
    ctx: AppContext,
    user: User,
    data: AccountDeletionRequest,
    client: ClientInfo,
) -> None:
    """Delete the user and, by cascade, everything they own; every token stops working."""
    if data.confirmation != ACCOUNT_DELETION_CONFIRMATION:
        raise InvalidInput(
            f"Type {ACCOUNT_DELETION_CONFIRMATION} to confirm deleting the account.",
            code="confirmation_mismatch",
        )
    if user.password_hash is not None:
        await confirm_password(ctx, user, data.password or "", client)
    session_ids = list(
        (await db.scalars(select(AuthSession.id).where(AuthSession.user_id == user.id))).all()
    )
    await db.execute(delete(User).where(User.id == user.id))
    db.expunge(user)
    auth_changed(db, ctx, user.id)
    announce_revoked(db, ctx, session_ids)
    announce_deleted(db, ctx, user.id, fallback=ctx.terminals.account_deleted)
