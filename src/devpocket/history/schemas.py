"""Bodies and query parameters of ``/api/v1/history`` (entry keys from CONTRACT.md)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, field_validator

from devpocket.inputs import AppInput, as_utc

ResultType = Literal["success", "error", "warning", "info"]
RESULT_TYPES: tuple[ResultType, ...] = ("success", "error", "warning", "info")
SortField = Literal["executed_at", "command", "execution_time_ms", "exit_code"]
MAX_TAGS = 20
MAX_TAG_LENGTH = 50
MAX_PAGE = 500


def normalize_tags(values: list[str]) -> list[str]:
    """Stripped, lowercase, each once, in the order given; empty ones dropped."""
    tags = list(dict.fromkeys(t.strip().lower() for t in values if t and t.strip()))
    for tag in tags:
        if len(tag) > MAX_TAG_LENGTH:
            raise ValueError(f"a tag has at most {MAX_TAG_LENGTH} characters")
    if len(tags) > MAX_TAGS:
        raise ValueError(f"at most {MAX_TAGS} tags")
    return tags


_Input = AppInput


class CommandFields(_Input):
    """What an entry can say. On update only the keys sent change; ``null`` clears an optional
    field (``output``, ``exit_code`` …) and is ignored for the others."""

    command: str | None = Field(default=None, min_length=1, max_length=65536)
    output: str | None = Field(default=None, max_length=262144)
    result_type: ResultType | None = None
    exit_code: int | None = Field(default=None, ge=-(2**31), lt=2**31)
    execution_time_ms: int | None = Field(default=None, ge=0, lt=2**31)
    session_id: str | None = Field(default=None, max_length=64)
    working_directory: str | None = Field(default=None, max_length=4096)
    shell_type: str | None = Field(default=None, max_length=32)
    executed_at: datetime | None = None
    ssh_profile_id: uuid.UUID | None = None
    device_id: uuid.UUID | None = None
    is_favorite: bool | None = None
    tags: list[str] | None = Field(default=None, max_length=200)

    @field_validator("result_type", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else normalize_tags(value)

    @field_validator("executed_at")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return as_utc(value)


class CommandCreate(CommandFields):
    id: uuid.UUID | None = Field(
        default=None, description="The device's own id: a repeat with it updates the entry."
    )
    command: str = Field(min_length=1, max_length=65536)


class CommandOut(BaseModel):
    id: uuid.UUID
    command: str
    output: str | None
    result_type: str
    exit_code: int | None
    execution_time_ms: int | None
    session_id: str | None
    working_directory: str | None
    shell_type: str | None
    executed_at: datetime
    ssh_profile_id: uuid.UUID | None
    is_favorite: bool
    tags: list[str]
    device_id: uuid.UUID | None
    created_at: datetime
    updated_at: datetime


class CommandList(BaseModel):
    commands: list[CommandOut]
    total: int = Field(description="Entries matching, beyond this page too.")


class RecentCommands(BaseModel):
    commands: list[CommandOut]


class BulkDelete(_Input):
    ids: list[uuid.UUID] = Field(min_length=1, max_length=1000)


class Deleted(BaseModel):
    deleted: int


class FavoriteRequest(_Input):
    is_favorite: bool | None = Field(default=None, description="Absent: toggle.")


class TagsRequest(_Input):
    tags: list[str] = Field(min_length=1, max_length=200)

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: list[str]) -> list[str]:
        return normalize_tags(value)


class CommandCount(BaseModel):
    command: str
    count: int


class HistoryStats(BaseModel):
    total_commands: int
    successful_commands: int = Field(description="result_type success")
    failed_commands: int = Field(description="result_type error")
    favorite_commands: int
    commands_by_type: dict[str, int] = Field(description="Every result type, zero included.")
    commands_by_device: dict[str, int] = Field(description="Device id → entries (with a device).")
    commands_by_session: dict[str, int] = Field(
        description="Session id → entries, the 50 sessions with most entries."
    )
    first_command_at: datetime | None
    last_command_at: datetime | None
    average_execution_time_ms: float = Field(description="Of timed entries; 0.0 when none.")
    top_commands: list[CommandCount] = Field(description="The 10 most run commands.")
    recent_working_directories: list[str] = Field(description="Up to 10, most recent first.")


# --- Query parameters --------------------------------------------------------------------------


def _split(value: object) -> object:
    """``a,b`` and repeated keys alike; blanks dropped."""
    if value is None:
        return None
    items = value if isinstance(value, list) else [value]
    return [part.strip() for item in items for part in str(item).split(",") if part.strip()]


class HistoryFilters(BaseModel):
    """The filters of the list and the export; all must hold."""

    query: str | None = Field(
        default=None, max_length=200, description="Case-insensitive substring of the command."
    )
    result_types: list[ResultType] | None = Field(
        default=None, description="Any of these (comma-separated or repeated)."
    )
    tags: list[str] | None = Field(
        default=None, description="Entries with all of these tags (comma-separated or repeated)."
    )
    session_id: str | None = Field(default=None, max_length=64)
    ssh_profile_id: uuid.UUID | None = None
    device_id: uuid.UUID | None = None
    start_date: datetime | None = Field(default=None, description="executed_at on or after")
    end_date: datetime | None = Field(default=None, description="executed_at on or before")
    favorites_only: bool = False

    @field_validator("result_types", mode="before")
    @classmethod
    def _split_types(cls, value: object) -> object:
        split = _split(value)
        return [str(v).lower() for v in split] if isinstance(split, list) else split

    @field_validator("tags", mode="before")
    @classmethod
    def _split_tags(cls, value: object) -> object:
        return _split(value)

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else normalize_tags(value)

    @field_validator("start_date", "end_date")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return as_utc(value)


class ListQuery(HistoryFilters):
    sort_by: SortField = "executed_at"
    sort_desc: bool = True
    limit: int = Field(default=50, ge=1, le=MAX_PAGE)
    offset: int = Field(default=0, ge=0)


class ExportQuery(HistoryFilters):
    format: Literal["json", "csv"] = "json"


class BulkDeleteQuery(BaseModel):
    before: datetime | None = Field(default=None, description="executed_at strictly before")
    session_id: str | None = Field(default=None, max_length=64)

    @field_validator("before")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return as_utc(value)
