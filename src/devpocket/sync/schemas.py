"""Bodies of ``/api/v1/sync``: the change feed and pushes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, WithJsonSchema, field_validator

from devpocket.sync.changes import Entity, Op

MAX_PUSH = 1000
PushStatus = Literal["applied", "merged", "conflict_resolved", "rejected", "duplicate"]


class ChangeOut(BaseModel):
    cursor: int
    entity: Entity
    entity_id: uuid.UUID
    op: Op
    data: dict[str, Any] | None = Field(description="The synced fields after the change.")
    fields: list[str] = Field(description="The fields this change set.")
    device_id: uuid.UUID | None = Field(description="The device that made the change.")
    changed_at: datetime


class ChangePage(BaseModel):
    changes: list[ChangeOut]
    cursor: int = Field(description="Ask from here next (`since`).")
    has_more: bool


class PushChange(BaseModel):
    """One change a device made, based on the entity version it had (0 for a new entity)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    change_id: uuid.UUID = Field(
        description="The device's own id for this change: a repeat is answered `duplicate`.",
        validation_alias=AliasChoices("change_id", "changeId"),
    )
    entity: Entity
    entity_id: uuid.UUID = Field(validation_alias=AliasChoices("entity_id", "entityId"))
    op: Op
    base_version: int = Field(
        ge=0,
        description="The entity's version (or any later feed cursor) the change was based on.",
        validation_alias=AliasChoices("base_version", "baseVersion"),
    )
    changed_at: datetime = Field(validation_alias=AliasChoices("changed_at", "changedAt"))
    data: dict[str, Any] = Field(
        default_factory=dict, description="For an upsert, the fields the device changed."
    )

    @field_validator("changed_at")
    @classmethod
    def _as_utc(cls, value: datetime) -> datetime:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class PushRequest(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    device_id: uuid.UUID = Field(
        description="One of the user's devices (`GET /users/devices`).",
        validation_alias=AliasChoices("device_id", "deviceId"),
    )
    # Each change is checked on its own: a malformed one is rejected, not the whole batch.
    changes: list[
        Annotated[dict[str, Any], WithJsonSchema(PushChange.model_json_schema(by_alias=False))]
    ] = Field(max_length=MAX_PUSH)


class FieldConflictOut(BaseModel):
    field: str
    server_value: Any
    client_value: Any
    winner: Literal["server", "client"]


class PushError(BaseModel):
    code: str
    message: str
    details: Any = None


class PushResult(BaseModel):
    change_id: str
    status: PushStatus
    first_status: PushStatus | None = Field(
        default=None, description="For a duplicate: the status the change got the first time."
    )
    entity: Entity | None = None
    entity_id: uuid.UUID | None = None
    version: int | None = Field(default=None, description="The entity's version after the push.")
    server: dict[str, Any] | None = Field(
        default=None, description="The server's state before the change, when it differed."
    )
    client: dict[str, Any] | None = Field(default=None, description="What was sent, likewise.")
    resolved: dict[str, Any] | None = Field(
        default=None, description="The entity after the push (null when deleted)."
    )
    conflicts: list[FieldConflictOut] = Field(default_factory=list)
    error: PushError | None = None


class PushAnswer(BaseModel):
    results: list[PushResult]
    cursor: int = Field(description="The feed's cursor after the push.")
