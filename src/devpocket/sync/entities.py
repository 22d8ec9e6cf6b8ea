"""What syncs of each entity (never a secret), its snapshot, and recording a service's change.

Services call these after changing a synced row, in the same transaction: ``before`` is the
snapshot taken before the change, and only fields whose value changed are recorded.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from devpocket.db.models import CommandHistory, SshKey, SshProfile, User
from devpocket.sync.changes import Entity, Origin, record_change
from devpocket.users.schemas import Preferences

PROFILE_FIELDS = (
    "name", "host", "port", "username", "auth_type", "description", "tags", "color",
    "is_default", "key_id", "jump_profile_id", "strict_host_key", "keepalive_interval",
    "connect_timeout",
)  # fmt: skip
KEY_FIELDS = ("name", "comment", "key_type", "bits", "fingerprint", "public_key")
HISTORY_FIELDS = (
    "command", "result_type", "exit_code", "execution_time_ms", "session_id",
    "working_directory", "shell_type", "executed_at", "ssh_profile_id", "device_id",
    "is_favorite", "tags",
)  # fmt: skip
# Never in the feed: they stay in the server's vault (docs/sync.md).
SECRET_FIELDS = frozenset({"password", "private_key", "passphrase"})


def _json(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list):
        return list(value)
    return value


def profile_data(profile: SshProfile) -> dict[str, Any]:
    return {field: _json(getattr(profile, field)) for field in PROFILE_FIELDS}


def key_data(key: SshKey) -> dict[str, Any]:
    return {field: _json(getattr(key, field)) for field in KEY_FIELDS}


def history_data(entry: CommandHistory) -> dict[str, Any]:
    return {field: _json(getattr(entry, field)) for field in HISTORY_FIELDS}


def preferences_data(user: User) -> dict[str, Any]:
    """Every section, defaults included; each top-level key is a field of its own."""
    return Preferences.model_validate(user.preferences or {}).model_dump(mode="json")


def changed_fields(before: dict[str, Any] | None, after: dict[str, Any]) -> list[str]:
    if before is None:
        return list(after)
    return [field for field, value in after.items() if before.get(field) != value]


async def record_upsert(
    db: AsyncSession,
    entity: Entity,
    user_id: uuid.UUID,
    entity_id: uuid.UUID,
    before: dict[str, Any] | None,
    after: dict[str, Any],
    origin: Origin | None,
) -> int | None:
    """Record the fields that changed (all of them for a new entity); None when none did."""
    fields = changed_fields(before, after)
    if not fields:
        return None
    origin = origin or Origin.now()
    return await record_change(
        db, user_id, entity, entity_id, "upsert", after, fields=fields,
        device_id=origin.device_id, changed_at=origin.changed_at, change_id=origin.change_id,
    )  # fmt: skip


async def record_delete(
    db: AsyncSession,
    entity: Entity,
    user_id: uuid.UUID,
    entity_id: uuid.UUID,
    origin: Origin | None,
) -> int:
    origin = origin or Origin.now()
    return await record_change(
        db, user_id, entity, entity_id, "delete", None, fields=[],
        device_id=origin.device_id, changed_at=origin.changed_at, change_id=origin.change_id,
    )  # fmt: skip


async def record_profile(
    db: AsyncSession, profile: SshProfile, before: dict[str, Any] | None, origin: Origin | None
) -> int | None:
    after = profile_data(profile)
    return await record_upsert(
        db, "ssh_profile", profile.user_id, profile.id, before, after, origin
    )


async def record_key(
    db: AsyncSession, key: SshKey, before: dict[str, Any] | None, origin: Origin | None
) -> int | None:
    return await record_upsert(db, "ssh_key", key.user_id, key.id, before, key_data(key), origin)


async def record_history(
    db: AsyncSession, entry: CommandHistory, before: dict[str, Any] | None, origin: Origin | None
) -> int | None:
    after = history_data(entry)
    return await record_upsert(db, "history", entry.user_id, entry.id, before, after, origin)


async def record_preferences(
    db: AsyncSession, user: User, before: dict[str, Any], origin: Origin | None
) -> int | None:
    """The preferences are one entity per user, whose id is the user's."""
    after = preferences_data(user)
    return await record_upsert(db, "preferences", user.id, user.id, before, after, origin)
