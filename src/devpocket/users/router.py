"""``/api/v1/users``: profile, preferences, devices, account deletion."""

from __future__ import annotations

import uuid

from devpocket.api import API_PREFIX, make_router
from devpocket.auth.deps import CurrentAuth, CurrentSession, CurrentUser
from devpocket.auth.schemas import ProfileUpdateRequest, UserOut
from devpocket.db.session import DbSession
from devpocket.deps import Client, Ctx
from devpocket.envelope import Envelope, error_responses, ok
from devpocket.sync.changes import Origin
from devpocket.users import service
from devpocket.users.schemas import (
    AccountDeletionRequest,
    DeviceList,
    DeviceOut,
    DeviceUpdate,
    Preferences,
    PreferencesUpdate,
)

router = make_router(f"{API_PREFIX}/users", "users", responses=error_responses(401, 422))


@router.get("/profile", summary="The signed-in user's profile")
async def get_profile(auth: CurrentAuth) -> Envelope[UserOut]:
    return ok(auth.profile)


@router.put("/profile", summary="Update the profile (only the keys sent change)")
async def update_profile(
    data: ProfileUpdateRequest, user: CurrentUser, db: DbSession, ctx: Ctx
) -> Envelope[UserOut]:
    return ok(UserOut.of(await service.update_profile(db, ctx, user, data)), "Profile updated.")


@router.get("/preferences", summary="Preferences, with defaults for what was never set")
async def get_preferences(user: CurrentUser) -> Envelope[Preferences]:
    return ok(service.preferences_of(user))


@router.put(
    "/preferences",
    responses=error_responses(400),
    summary="Merge the sections and keys sent into the preferences",
)
async def update_preferences(
    data: PreferencesUpdate, user: CurrentUser, auth: CurrentAuth, db: DbSession
) -> Envelope[Preferences]:
    origin = Origin.now(auth.device_id)
    return ok(await service.update_preferences(db, user, data, origin=origin), "Preferences saved.")


@router.get("/devices", summary="Devices with a signed-in session")
async def list_devices(auth: CurrentAuth, db: DbSession) -> Envelope[DeviceList]:
    devices = await service.list_devices(db, auth.user_id, auth.device_id)
    return ok(DeviceList(devices=devices, total=len(devices)))


@router.post("/devices", summary="Name and describe the device of this session")
async def register_device(
    data: DeviceUpdate, session: CurrentSession, db: DbSession, ctx: Ctx
) -> Envelope[DeviceOut]:
    device_id = await service.update_current_device(db, ctx, session, data)
    devices = await service.list_devices(db, session.user_id, device_id)
    return ok(next(d for d in devices if d.id == device_id), "Device saved.")


@router.delete(
    "/devices/{device_id}",
    responses=error_responses(404),
    summary="Sign a device out and forget it",
)
async def remove_device(
    device_id: uuid.UUID, user: CurrentUser, db: DbSession, ctx: Ctx
) -> Envelope[None]:
    await service.remove_device(db, ctx, user, device_id)
    return ok(None, "Device signed out.")


@router.delete(
    "/account",
    responses=error_responses(400, 429),
    summary="Delete the account and all its data",
)
async def delete_account(
    data: AccountDeletionRequest, user: CurrentUser, db: DbSession, ctx: Ctx, client: Client
) -> Envelope[None]:
    await service.delete_account(db, ctx, user, data, client)
    return ok(None, "Account deleted.")
