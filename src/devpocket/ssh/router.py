"""``/api/v1/ssh``: saved hosts (profiles), the key vault, connection tests, key validation."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Query, Response

from devpocket.api import API_PREFIX, make_router
from devpocket.auth.deps import CurrentAuth
from devpocket.db.session import DbSession
from devpocket.deps import Ctx
from devpocket.envelope import Envelope, error_responses, ok
from devpocket.ssh import key_service, probe, profile_service
from devpocket.ssh.keys import validate_key_async
from devpocket.ssh.schemas import (
    ConnectionTestRequest,
    ConnectionTestResult,
    HostKeyAcceptance,
    KeyGenerateRequest,
    KeyImportRequest,
    KeyList,
    KeyOut,
    KeyUpdateRequest,
    KeyValidationOut,
    KeyValidationRequest,
    ProfileCreate,
    ProfileFields,
    ProfileList,
    ProfileOut,
)
from devpocket.sync.changes import Origin

router = make_router(f"{API_PREFIX}/ssh", "ssh", responses=error_responses(401, 422))
_OWNED = error_responses(404)


@router.get("/profiles", summary="Saved hosts, default first, then by name")
async def list_profiles(
    auth: CurrentAuth,
    db: DbSession,
    q: Annotated[str | None, Query(max_length=100, description="In name or host")] = None,
    tag: Annotated[str | None, Query(max_length=50)] = None,
) -> Envelope[ProfileList]:
    profiles = await profile_service.list_profiles(db, auth.user_id, query=q, tag=tag)
    return ok(ProfileList(profiles=profiles, total=len(profiles)))


@router.post(
    "/profiles",
    status_code=201,
    responses=error_responses(403, 404, 409),
    summary="Save a host; a repeat with the app's own id updates it (200)",
)
async def create_profile(
    data: ProfileCreate, auth: CurrentAuth, db: DbSession, ctx: Ctx, response: Response
) -> Envelope[ProfileOut]:
    profile, created = await profile_service.create_profile(
        db, ctx, auth.user_id, data, origin=Origin.now(auth.device_id)
    )
    if not created:
        response.status_code = 200
    return ok(profile_service.profile_out(profile))


@router.get("/profiles/{profile_id}", responses=_OWNED, summary="One saved host")
async def get_profile(
    profile_id: uuid.UUID, auth: CurrentAuth, db: DbSession
) -> Envelope[ProfileOut]:
    profile = await profile_service.owned_profile(db, auth.user_id, profile_id)
    return ok(profile_service.profile_out(profile))


@router.put(
    "/profiles/{profile_id}",
    responses=error_responses(404, 409),
    summary="Change a host; credentials absent stay, null removes them",
)
async def update_profile(
    profile_id: uuid.UUID, data: ProfileFields, auth: CurrentAuth, db: DbSession, ctx: Ctx
) -> Envelope[ProfileOut]:
    profile = await profile_service.owned_profile(db, auth.user_id, profile_id)
    await profile_service.update_profile(db, ctx, profile, data, origin=Origin.now(auth.device_id))
    return ok(profile_service.profile_out(profile))


@router.delete("/profiles/{profile_id}", responses=_OWNED, summary="Forget a host")
async def delete_profile(profile_id: uuid.UUID, auth: CurrentAuth, db: DbSession) -> Envelope[None]:
    profile = await profile_service.owned_profile(db, auth.user_id, profile_id)
    await profile_service.delete_profile(db, profile, origin=Origin.now(auth.device_id))
    return ok(None, "Profile deleted.")


@router.post(
    "/profiles/{profile_id}/test",
    responses=error_responses(403, 404, 429),
    summary="Connect and authenticate, run nothing; pins the host key on first use",
)
async def test_profile(
    profile_id: uuid.UUID, auth: CurrentAuth, db: DbSession, ctx: Ctx
) -> Envelope[ConnectionTestResult]:
    profile = await profile_service.owned_profile(db, auth.user_id, profile_id)
    return ok(await probe.test_profile(db, ctx, profile))


@router.post(
    "/profiles/{profile_id}/host-key",
    responses=error_responses(404, 409),
    summary="Accept the new host key the server presented, by its verified fingerprint",
)
async def accept_host_key(
    profile_id: uuid.UUID, data: HostKeyAcceptance, auth: CurrentAuth, db: DbSession
) -> Envelope[ProfileOut]:
    profile = await profile_service.owned_profile(db, auth.user_id, profile_id)
    await profile_service.accept_host_key(db, profile, data.fingerprint)
    return ok(profile_service.profile_out(profile), "Host key accepted.")


@router.delete(
    "/profiles/{profile_id}/host-key",
    responses=_OWNED,
    summary="Forget the pinned host key (the next connection pins again)",
)
async def forget_host_key(
    profile_id: uuid.UUID, auth: CurrentAuth, db: DbSession
) -> Envelope[ProfileOut]:
    profile = await profile_service.owned_profile(db, auth.user_id, profile_id)
    return ok(profile_service.profile_out(await profile_service.forget_host_key(db, profile)))


@router.post(
    "/test-connection",
    responses=error_responses(403, 429),
    summary="Test an unsaved profile (nothing is stored)",
)
async def test_connection(
    data: ConnectionTestRequest, auth: CurrentAuth, ctx: Ctx
) -> Envelope[ConnectionTestResult]:
    return ok(await probe.test_unsaved(ctx, auth.user_id, data))


@router.post("/validate-key", summary="Check a private key without storing it")
async def validate_private_key(
    data: KeyValidationRequest, auth: CurrentAuth
) -> Envelope[KeyValidationOut]:
    result = await validate_key_async(data.private_key, data.passphrase)
    return ok(
        KeyValidationOut(
            is_valid=result.is_valid,
            key_type=result.key_type,
            key_size=result.key_size,
            fingerprint=result.fingerprint,
            error=result.error,
            code=result.code,
        )
    )


@router.get("/keys", summary="The key vault")
async def list_keys(auth: CurrentAuth, db: DbSession) -> Envelope[KeyList]:
    keys = await key_service.list_keys(db, auth.user_id)
    return ok(KeyList(keys=keys, total=len(keys)))


@router.post(
    "/keys/generate",
    status_code=201,
    responses=error_responses(400, 409),
    summary="Generate a key pair (ed25519, RSA 3072/4096, ECDSA P-256/384)",
)
async def generate_key(
    data: KeyGenerateRequest, auth: CurrentAuth, db: DbSession, ctx: Ctx
) -> Envelope[KeyOut]:
    key = await key_service.generate(db, ctx, auth.user_id, data, origin=Origin.now(auth.device_id))
    return ok(key_service.key_out(key, 0), "Key generated.")


@router.post(
    "/keys",
    status_code=201,
    responses=error_responses(400, 409),
    summary="Import a private key (OpenSSH or PEM, with its passphrase)",
)
async def import_key(
    data: KeyImportRequest, auth: CurrentAuth, db: DbSession, ctx: Ctx
) -> Envelope[KeyOut]:
    key = await key_service.import_(db, ctx, auth.user_id, data, origin=Origin.now(auth.device_id))
    return ok(key_service.key_out(key, 0), "Key imported.")


@router.put("/keys/{key_id}", responses=_OWNED, summary="Rename a key or change its comment")
async def update_key(
    key_id: uuid.UUID, data: KeyUpdateRequest, auth: CurrentAuth, db: DbSession
) -> Envelope[KeyOut]:
    key = await key_service.owned_key(db, auth.user_id, key_id)
    await key_service.rename(db, key, data, origin=Origin.now(auth.device_id))
    used = await key_service.usage(db, key)
    return ok(key_service.key_out(key, used))


@router.delete(
    "/keys/{key_id}",
    responses=error_responses(404, 409),
    summary="Delete a key; refused while profiles use it unless force=true",
)
async def delete_key(
    key_id: uuid.UUID,
    auth: CurrentAuth,
    db: DbSession,
    force: Annotated[bool, Query(description="Detach it from the profiles that use it")] = False,
) -> Envelope[None]:
    key = await key_service.owned_key(db, auth.user_id, key_id)
    detached = await key_service.delete(db, key, force=force, origin=Origin.now(auth.device_id))
    return ok(
        None,
        f"Key deleted; {detached} profile(s) no longer use it." if detached else "Key deleted.",
    )
