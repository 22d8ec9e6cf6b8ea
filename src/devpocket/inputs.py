"""What request bodies have in common: the app's tolerance of extra keys, camelCase or
snake_case names, and naive timestamps read as UTC (CONTRACT.md)."""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import AliasChoices, AliasGenerator, BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


def snake_or_camel(field: str) -> AliasChoices:
    return AliasChoices(field, to_camel(field))


class AppInput(BaseModel):
    """Unknown keys are tolerated (the app sends extras); snake_case or camelCase."""

    model_config = ConfigDict(
        extra="ignore",
        populate_by_name=True,
        alias_generator=AliasGenerator(validation_alias=snake_or_camel),
    )


def as_utc(value: datetime | None) -> datetime | None:
    """Naive timestamps are UTC (CONTRACT.md)."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
