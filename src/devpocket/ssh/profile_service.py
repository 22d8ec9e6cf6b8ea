"""Saved hosts: create (idempotent sync upload), update, delete, list; secrets only encrypted."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from devpocket.billing import repository as billing_repository
from devpocket.billing.plans import limit_reached, plan_for, within
from devpocket.context import AppContext
from devpocket.db.models import SshProfile
from devpocket.errors import Conflict, InvalidInput, NotFound
from devpocket.ssh import repository
from devpocket.ssh.schemas import ProfileCreate, ProfileFields, ProfileOut
from devpocket.ssh.secrets import context_for
from devpocket.sync.changes import Origin, lock_feed
from devpocket.sync.entities import profile_data, record_delete, record_profile

CREDENTIALS = ("password", "private_key", "passphrase")
# A null sent for these clears them; for the other plain fields it is ignored.
_CLEARABLE = frozenset({"description", "color"})
_PLAIN_FIELDS = (
    "name", "host", "port", "username", "auth_type", "description", "color", "status",
    "last_connected_at", "strict_host_key", "keepalive_interval", "connect_timeout", "tags",
    "is_default",
)  # fmt: skip
_JUMP_DEPTH = 3


def profile_out(profile: SshProfile) -> ProfileOut:
    return ProfileOut(
        id=profile.id,
        name=profile.name,
        host=profile.host,
        port=profile.port,
        username=profile.username,
        auth_type=profile.auth_type,
        has_password=profile.password_encrypted is not None,
        has_private_key=profile.private_key_encrypted is not None or profile.key_id is not None,
        has_passphrase=profile.passphrase_encrypted is not None,
        key_id=profile.key_id,
        jump_profile_id=profile.jump_profile_id,
        description=profile.description,
        tags=list(profile.tags or []),
        color=profile.color,
        is_default=profile.is_default,
        status=profile.status,
        last_connected_at=profile.last_connected_at,
        host_key_type=profile.host_key_type,
        host_key_fingerprint=profile.host_key_fingerprint,
        pending_host_key_fingerprint=profile.pending_host_key_fingerprint,
        strict_host_key=profile.strict_host_key,
        keepalive_interval=profile.keepalive_interval,
        connect_timeout=profile.connect_timeout,
        created_at=profile.created_at,
        updated_at=profile.updated_at,
    )


async def owned_profile(db: AsyncSession, user_id: uuid.UUID, profile_id: uuid.UUID) -> SshProfile:
    """The user's profile; another user's is as unknown as a missing one (404)."""
    profile = await repository.get_profile(db, profile_id)
    if profile is None or profile.user_id != user_id:
        raise _unknown_profile()
    return profile


def _unknown_profile() -> NotFound:
    return NotFound("No such SSH profile.", code="profile_not_found")


async def _lock_and_reload(db: AsyncSession, profile: SshProfile) -> None:
    """Take the feed lock; when it was not held yet, reload the profile as committed (the feed
    records what changed). A profile deleted while this request waited for the lock is as
    unknown as a missing one (404)."""
    if (
        await lock_feed(db, profile.user_id)
        and await repository.current_profile(db, profile.id) is None
    ):
        raise _unknown_profile()


async def list_profiles(
    db: AsyncSession, user_id: uuid.UUID, *, query: str | None, tag: str | None
) -> list[ProfileOut]:
    profiles = await repository.list_profiles_for_user(db, user_id, query=query)
    if tag:
        wanted = tag.strip().lower()
        profiles = [p for p in profiles if wanted in {t.lower() for t in p.tags or []}]
    return [profile_out(p) for p in profiles]


async def create_profile(
    db: AsyncSession,
    ctx: AppContext,
    user_id: uuid.UUID,
    data: ProfileCreate,
    *,
    origin: Origin | None = None,
) -> tuple[SshProfile, bool]:
    """Create; a repeat of a POST with the app's own ``id`` updates instead (sync upload).

    True with the profile when it was created, False when an existing one was updated.
    """
    # The feed lock first: a retried POST racing its first attempt then finds the profile the
    # first one made (and the count below is exact under concurrent creates).
    await lock_feed(db, user_id)
    if data.id is not None:
        existing = await repository.get_profile(db, data.id)
        if existing is not None:
            if existing.user_id != user_id:
                raise Conflict("This profile id is already in use.", code="profile_id_taken")
            return await update_profile(db, ctx, existing, data, origin=origin), False
    await _check_profile_limit(db, ctx, user_id)
    now = datetime.now(UTC)
    profile = SshProfile(
        id=data.id or uuid.uuid4(),
        user_id=user_id,
        port=22,
        auth_type="PASSWORD",
        tags=[],
        status="unknown",
        is_default=False,
        strict_host_key=False,
        keepalive_interval=30,
        connect_timeout=10,
        created_at=now,
        updated_at=now,
    )
    db.add(profile)
    cleared = await _apply(db, ctx, profile, data)
    await _record(db, profile, None, cleared, origin)
    return profile, True


async def _check_profile_limit(db: AsyncSession, ctx: AppContext, user_id: uuid.UUID) -> None:
    plan = plan_for(ctx.settings, await billing_repository.user_tier(db, user_id))
    saved = await repository.count_profiles(db, user_id)
    if not within(plan.limits.ssh_connections, saved):
        raise limit_reached(
            plan,
            "ssh_connections",
            saved,
            code="profile_limit_reached",
            message=f"The {plan.name} plan allows {plan.limits.ssh_connections} saved SSH "
            "profiles (ssh_connections): delete one or upgrade.",
        )


async def update_profile(
    db: AsyncSession,
    ctx: AppContext,
    profile: SshProfile,
    data: ProfileFields,
    *,
    origin: Origin | None = None,
) -> SshProfile:
    await _lock_and_reload(db, profile)
    before = profile_data(profile)
    profile.updated_at = datetime.now(UTC)
    cleared = await _apply(db, ctx, profile, data)
    await _record(db, profile, before, cleared, origin)
    return profile


async def _record(
    db: AsyncSession,
    profile: SshProfile,
    before: dict[str, object] | None,
    cleared: list[SshProfile],
    origin: Origin | None,
) -> None:
    """The profile's change, and those of the profiles that stopped being the default."""
    await record_profile(db, profile, before, origin)
    for other in cleared:
        await record_profile(db, other, {**profile_data(other), "is_default": True}, origin)


async def _apply(
    db: AsyncSession, ctx: AppContext, profile: SshProfile, data: ProfileFields
) -> list[SshProfile]:
    """Write what ``data`` sends; returns the profiles that stopped being the default."""
    sent = data.model_fields_set
    for field in _PLAIN_FIELDS:
        value = getattr(data, field)
        if field in sent and (value is not None or field in _CLEARABLE):
            setattr(profile, field, value)
    if "last_connected_at" in sent and data.last_connected_at is None:
        profile.last_connected_at = None
    for field in CREDENTIALS:
        if field in sent:
            value = getattr(data, field)
            token = (
                ctx.secrets.encrypt(value, context=context_for("ssh_profiles", profile.id, field))
                if value
                else None
            )
            setattr(profile, f"{field}_encrypted", token)
    if "host_key_fingerprint" in sent:
        # A fingerprint the user knows beforehand is pinned as if seen on a first connection.
        profile.host_key_fingerprint = data.host_key_fingerprint
        profile.host_key_type = None
        profile.pending_host_key_fingerprint = profile.pending_host_key_type = None
    if "key_id" in sent:
        profile.key_id = await _own_key(db, profile.user_id, data.key_id)
    if "jump_profile_id" in sent:
        profile.jump_profile_id = await _valid_jump(db, profile, data.jump_profile_id)
    await db.flush()
    if not profile.is_default:
        return []
    return await repository.clear_default(db, profile.user_id, keep=profile.id)


async def _own_key(
    db: AsyncSession, user_id: uuid.UUID, key_id: uuid.UUID | None
) -> uuid.UUID | None:
    if key_id is None:
        return None
    key = await repository.get_key(db, key_id)
    if key is None or key.user_id != user_id:
        raise NotFound("No such SSH key.", code="key_not_found")
    return key.id


async def _valid_jump(
    db: AsyncSession, profile: SshProfile, jump_id: uuid.UUID | None
) -> uuid.UUID | None:
    """Another of the user's profiles, without a loop back to this one, at most 3 hops."""
    current = jump_id
    for _ in range(_JUMP_DEPTH):
        if current is None:
            return jump_id
        if current == profile.id:
            raise InvalidInput(
                "A profile cannot reach itself through jump hosts.", code="jump_loop"
            )
        hop = await repository.get_profile(db, current)
        if hop is None or hop.user_id != profile.user_id:
            raise NotFound("No such jump host profile.", code="jump_profile_not_found")
        current = hop.jump_profile_id
    if current is not None:
        raise InvalidInput(
            f"At most {_JUMP_DEPTH} jump hosts in a row.", code="jump_chain_too_long"
        )
    return jump_id


async def delete_profile(
    db: AsyncSession, profile: SshProfile, *, origin: Origin | None = None
) -> None:
    """Delete; profiles that jumped through it lose their jump host, in the feed too."""
    await _lock_and_reload(db, profile)
    for other in await repository.profiles_jumping_through(db, profile):
        before = profile_data(other)
        other.jump_profile_id = None
        await record_profile(db, other, before, origin)
    await db.delete(profile)
    await record_delete(db, "ssh_profile", profile.user_id, profile.id, origin)


async def accept_host_key(db: AsyncSession, profile: SshProfile, fingerprint: str) -> SshProfile:
    """Pin the key a server presented, once the user has checked its fingerprint."""
    await _lock_and_reload(db, profile)
    if profile.pending_host_key_fingerprint != fingerprint:
        raise Conflict(
            "That is not the key this server presented; test the connection again.",
            code="host_key_not_presented",
        )
    profile.host_key_fingerprint = profile.pending_host_key_fingerprint
    profile.host_key_type = profile.pending_host_key_type
    profile.pending_host_key_fingerprint = profile.pending_host_key_type = None
    profile.updated_at = datetime.now(UTC)
    return profile


async def forget_host_key(db: AsyncSession, profile: SshProfile) -> SshProfile:
    await _lock_and_reload(db, profile)
    profile.host_key_fingerprint = profile.host_key_type = None
    profile.pending_host_key_fingerprint = profile.pending_host_key_type = None
    profile.updated_at = datetime.now(UTC)
    return profile
