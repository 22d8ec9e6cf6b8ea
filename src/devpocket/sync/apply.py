"""How a pushed change reaches each kind of entity: through the services of its domain.

Each applier loads the user's row, snapshots its synced fields, checks what a device sent
(``normalize``: the values as the server would store them, or ``InvalidInput``), and creates,
updates or deletes through the same service functions as the ordinary endpoints, so limits,
validation and the feed are the same whichever way a change arrives.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, ClassVar, Protocol, TypeVar

from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from devpocket.context import AppContext
from devpocket.db.models import CommandHistory, SshKey, SshProfile, User
from devpocket.errors import Conflict, InvalidInput, NotFound
from devpocket.history.schemas import CommandFields
from devpocket.ssh import key_service, profile_service
from devpocket.ssh.schemas import KeyUpdateRequest, ProfileCreate, ProfileFields
from devpocket.sync import entities
from devpocket.sync.changes import Entity, Origin
from devpocket.users import service as users_service
from devpocket.users.schemas import Preferences

Row = Any
M = TypeVar("M", bound=BaseModel)
R = TypeVar("R", SshProfile, SshKey, CommandHistory)


class Applier(Protocol):
    entity: ClassVar[Entity]

    async def load(self, db: AsyncSession, user_id: uuid.UUID, entity_id: uuid.UUID) -> Row: ...

    def snapshot(self, row: Row) -> dict[str, Any]: ...

    def normalize(self, data: dict[str, Any]) -> dict[str, Any]: ...

    async def create(
        self, db: AsyncSession, ctx: AppContext, user_id: uuid.UUID, entity_id: uuid.UUID,
        writes: dict[str, Any], origin: Origin,
    ) -> Row: ...  # fmt: skip

    async def update(
        self, db: AsyncSession, ctx: AppContext, row: Row, writes: dict[str, Any], origin: Origin
    ) -> None: ...

    async def delete(self, db: AsyncSession, row: Row, origin: Origin) -> None: ...


def _check_names(data: dict[str, Any], known: Iterable[str], required: Iterable[str]) -> None:
    secrets = sorted(entities.SECRET_FIELDS & data.keys())
    if secrets:
        raise InvalidInput(
            "Credentials do not sync: they stay in the server's vault.",
            code="secrets_not_synced",
            details={"fields": secrets},
        )
    unknown = sorted(data.keys() - set(known))
    if unknown:
        raise InvalidInput(
            f"Fields that do not sync: {', '.join(unknown)}.",
            code="unknown_fields",
            details={"fields": unknown},
        )
    empty = sorted(f for f in required if f in data and data[f] is None)
    if empty:
        raise InvalidInput(
            f"These fields cannot be null: {', '.join(empty)}.",
            code="field_required",
            details={"fields": empty},
        )


def _validated(model: type[M], data: dict[str, Any]) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise InvalidInput(
            "Some values are not valid.",
            code="invalid_change",
            details=[{"loc": list(e["loc"]), "msg": e["msg"]} for e in error.errors()],
        ) from None


def _owned(row: R | None, user_id: uuid.UUID) -> R | None:
    if row is not None and row.user_id != user_id:
        raise Conflict("This id belongs to something else.", code="entity_id_taken")
    return row


def _sent(model: BaseModel, data: dict[str, Any]) -> dict[str, Any]:
    """The fields sent, as the server stores them (defaults filled in, tags cleaned …)."""
    stored = model.model_dump(mode="json")
    return {f: stored[f] for f in data}


class ProfileApplier:
    entity: ClassVar[Entity] = "ssh_profile"
    _REQUIRED = ("name", "host", "username")
    _NOT_NULL = (
        "name", "host", "port", "username", "auth_type", "tags", "is_default",
        "strict_host_key", "keepalive_interval", "connect_timeout",
    )  # fmt: skip

    async def load(self, db: AsyncSession, user_id: uuid.UUID, entity_id: uuid.UUID) -> Row:
        return _owned(await db.get(SshProfile, entity_id), user_id)

    def snapshot(self, row: Row) -> dict[str, Any]:
        return entities.profile_data(row)

    def normalize(self, data: dict[str, Any]) -> dict[str, Any]:
        _check_names(data, entities.PROFILE_FIELDS, self._NOT_NULL)
        return _sent(_validated(ProfileFields, data), data)

    async def create(
        self, db: AsyncSession, ctx: AppContext, user_id: uuid.UUID, entity_id: uuid.UUID,
        writes: dict[str, Any], origin: Origin,
    ) -> Row:  # fmt: skip
        missing = [f for f in self._REQUIRED if f not in writes]
        if missing:
            raise InvalidInput(
                f"A new profile needs {', '.join(missing)}.",
                code="field_required",
                details={"fields": missing},
            )
        data = _validated(ProfileCreate, {**writes, "id": str(entity_id)})
        profile, _ = await profile_service.create_profile(db, ctx, user_id, data, origin=origin)
        return profile

    async def update(
        self, db: AsyncSession, ctx: AppContext, row: Row, writes: dict[str, Any], origin: Origin
    ) -> None:
        data = _validated(ProfileFields, writes)
        await profile_service.update_profile(db, ctx, row, data, origin=origin)

    async def delete(self, db: AsyncSession, row: Row, origin: Origin) -> None:
        await profile_service.delete_profile(db, row, origin=origin)


class _NoCreate:
    """Entities made only by their own endpoints (they need what does not sync)."""

    how: ClassVar[str]

    async def create(
        self, db: AsyncSession, ctx: AppContext, user_id: uuid.UUID, entity_id: uuid.UUID,
        writes: dict[str, Any], origin: Origin,
    ) -> Row:  # fmt: skip
        raise InvalidInput(self.how, code="create_not_synced")


class KeyApplier(_NoCreate):
    entity: ClassVar[Entity] = "ssh_key"
    how = "Keys are generated or imported on the server: POST /ssh/keys/generate or /ssh/keys."
    _WRITABLE = frozenset({"name", "comment"})

    async def load(self, db: AsyncSession, user_id: uuid.UUID, entity_id: uuid.UUID) -> Row:
        return _owned(await db.get(SshKey, entity_id), user_id)

    def snapshot(self, row: Row) -> dict[str, Any]:
        return entities.key_data(row)

    def normalize(self, data: dict[str, Any]) -> dict[str, Any]:
        _check_names(data, entities.KEY_FIELDS, ("name",))
        writable = {f: v for f, v in data.items() if f in self._WRITABLE}  # the rest is read-only
        return _sent(_validated(KeyUpdateRequest, writable), writable)

    async def update(
        self, db: AsyncSession, ctx: AppContext, row: Row, writes: dict[str, Any], origin: Origin
    ) -> None:
        data = _validated(KeyUpdateRequest, writes)
        await key_service.rename(db, row, data, origin=origin)

    async def delete(self, db: AsyncSession, row: Row, origin: Origin) -> None:
        # A delete wins: profiles that used the key lose it, as with force=true.
        await key_service.delete(db, row, force=True, origin=origin)


class HistoryApplier(_NoCreate):
    entity: ClassVar[Entity] = "history"
    how = "Commands are recorded with POST /history/commands; sync marks and tags them."
    _WRITABLE = frozenset({"is_favorite", "tags"})

    async def load(self, db: AsyncSession, user_id: uuid.UUID, entity_id: uuid.UUID) -> Row:
        return _owned(await db.get(CommandHistory, entity_id), user_id)

    def snapshot(self, row: Row) -> dict[str, Any]:
        return entities.history_data(row)

    def normalize(self, data: dict[str, Any]) -> dict[str, Any]:
        _check_names(data, entities.HISTORY_FIELDS, self._WRITABLE)
        writable = {f: v for f, v in data.items() if f in self._WRITABLE}
        return _sent(_validated(CommandFields, writable), writable)

    async def update(
        self, db: AsyncSession, ctx: AppContext, row: Row, writes: dict[str, Any], origin: Origin
    ) -> None:
        before = entities.history_data(row)
        for field, value in writes.items():
            setattr(row, field, value)
        row.updated_at = datetime.now(UTC)
        await entities.record_history(db, row, before, origin)

    async def delete(self, db: AsyncSession, row: Row, origin: Origin) -> None:
        await db.delete(row)
        await entities.record_delete(db, "history", row.user_id, row.id, origin)


class PreferencesApplier(_NoCreate):
    """The user's preferences: one entity whose id is the user's; each section is a field."""

    entity: ClassVar[Entity] = "preferences"
    how = "Preferences always exist: update them."

    async def load(self, db: AsyncSession, user_id: uuid.UUID, entity_id: uuid.UUID) -> Row:
        if entity_id != user_id:
            raise NotFound("Preferences are the user's: their id is the user's.")
        return await db.get(User, user_id)

    def snapshot(self, row: Row) -> dict[str, Any]:
        return entities.preferences_data(row)

    def normalize(self, data: dict[str, Any]) -> dict[str, Any]:
        _check_names(data, data.keys(), data.keys())
        return _sent(_validated(Preferences, data), data)

    async def update(
        self, db: AsyncSession, ctx: AppContext, row: Row, writes: dict[str, Any], origin: Origin
    ) -> None:
        values = {**entities.preferences_data(row), **writes}
        await users_service.save_preferences(db, row, values, origin=origin)

    async def delete(self, db: AsyncSession, row: Row, origin: Origin) -> None:
        raise InvalidInput("Preferences cannot be deleted.", code="delete_not_synced")


APPLIERS: dict[Entity, Applier] = {
    applier.entity: applier
    for applier in (ProfileApplier(), KeyApplier(), HistoryApplier(), PreferencesApplier())
}
