"""The key vault: generate or import key pairs; the private half is kept encrypted, never shown."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from devpocket.context import AppContext
from devpocket.db.models import SshKey
from devpocket.errors import Conflict, NotFound
from devpocket.ssh import repository
from devpocket.ssh.keys import KeyMaterial, generate_key_async, import_key_async
from devpocket.ssh.schemas import KeyGenerateRequest, KeyImportRequest, KeyOut, KeyUpdateRequest
from devpocket.ssh.secrets import context_for
from devpocket.sync.changes import Origin, lock_feed
from devpocket.sync.entities import (
    key_data,
    profile_data,
    record_delete,
    record_key,
    record_profile,
)


def key_out(key: SshKey, used_by: int) -> KeyOut:
    return KeyOut(
        id=key.id,
        name=key.name,
        key_type=key.key_type,
        bits=key.bits,
        public_key=key.public_key,
        fingerprint=key.fingerprint,
        comment=key.comment,
        used_by_profiles=used_by,
        created_at=key.created_at,
        updated_at=key.updated_at,
        last_used_at=key.last_used_at,
    )


async def owned_key(db: AsyncSession, user_id: uuid.UUID, key_id: uuid.UUID) -> SshKey:
    key = await repository.get_key(db, key_id)
    if key is None or key.user_id != user_id:
        raise _unknown_key()
    return key


def _unknown_key() -> NotFound:
    return NotFound("No such SSH key.", code="key_not_found")


async def _lock_and_reload(db: AsyncSession, key: SshKey) -> None:
    """Take the feed lock; when it was not held yet, reload the key as committed (the feed
    records what changed). A key deleted while this request waited for the lock is as unknown
    as a missing one (404)."""
    if await lock_feed(db, key.user_id) and await repository.current_key(db, key.id) is None:
        raise _unknown_key()


async def list_keys(db: AsyncSession, user_id: uuid.UUID) -> list[KeyOut]:
    return [key_out(key, used) for key, used in await repository.list_keys_for_user(db, user_id)]


async def _store(
    db: AsyncSession,
    ctx: AppContext,
    user_id: uuid.UUID,
    name: str,
    material: KeyMaterial,
    origin: Origin | None,
) -> SshKey:
    # The feed lock first: concurrent imports of one key then see each other (one 409, not a
    # unique violation answered 500).
    await lock_feed(db, user_id)
    if await repository.get_key_by_fingerprint(db, user_id, material.fingerprint):
        raise Conflict("This key is already in your vault.", code="key_exists")
    now = datetime.now(UTC)
    key_id = uuid.uuid4()
    key = SshKey(
        id=key_id,
        user_id=user_id,
        name=name,
        key_type=material.key_type,
        bits=material.bits,
        public_key=material.public_key,
        fingerprint=material.fingerprint,
        comment=material.comment,
        # Stored decrypted-then-sealed: the vault's encryption replaces the key's own passphrase.
        private_key_encrypted=ctx.secrets.encrypt(
            material.private_key, context=context_for("ssh_keys", key_id, "private_key")
        ),
        passphrase_encrypted=None,
        created_at=now,
        updated_at=now,
    )
    db.add(key)
    await db.flush()
    await record_key(db, key, None, origin)
    return key


async def generate(
    db: AsyncSession,
    ctx: AppContext,
    user_id: uuid.UUID,
    data: KeyGenerateRequest,
    *,
    origin: Origin | None = None,
) -> SshKey:
    material = await generate_key_async(data.key_type, data.bits, data.comment)
    return await _store(db, ctx, user_id, data.name, material, origin)


async def import_(
    db: AsyncSession,
    ctx: AppContext,
    user_id: uuid.UUID,
    data: KeyImportRequest,
    *,
    origin: Origin | None = None,
) -> SshKey:
    material = await import_key_async(data.private_key, data.passphrase, data.comment)
    return await _store(db, ctx, user_id, data.name, material, origin)


async def usage(db: AsyncSession, key: SshKey) -> int:
    return await repository.count_profiles_using_key(db, key.id)


async def rename(
    db: AsyncSession, key: SshKey, data: KeyUpdateRequest, *, origin: Origin | None = None
) -> SshKey:
    await _lock_and_reload(db, key)
    before = key_data(key)
    if data.name is not None:
        key.name = data.name
    if "comment" in data.model_fields_set:
        key.comment = data.comment
    key.updated_at = datetime.now(UTC)
    await record_key(db, key, before, origin)
    return key


async def delete(
    db: AsyncSession, key: SshKey, *, force: bool, origin: Origin | None = None
) -> int:
    """Refused while profiles use the key, unless forced (they then lose it). Returns that count."""
    await _lock_and_reload(db, key)
    users = await repository.profiles_using_key(db, key)
    if users and not force:
        raise Conflict(
            f"{len(users)} profile(s) use this key; delete with force=true to detach it from them.",
            code="key_in_use",
            details={"profiles": len(users)},
        )
    for profile in users:
        before = profile_data(profile)
        profile.key_id = None
        await record_profile(db, profile, before, origin)
    await db.delete(key)
    await record_delete(db, "ssh_key", key.user_id, key.id, origin)
    return len(users)
