"""Bodies of ``/api/v1/ssh`` (shapes from CONTRACT.md). Credentials go in, never out."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
)

from devpocket.inputs import AppInput, as_utc

AuthType = Literal["PASSWORD", "KEY"]
Status = Literal["unknown", "active", "testing", "failed", "disabled"]
FINGERPRINT_PATTERN = r"^SHA256:[A-Za-z0-9+/]{43}$"


class _Input(AppInput):
    model_config = ConfigDict(str_strip_whitespace=True)


# Credentials are opaque: used exactly as received, spaces and final newlines included
# (CONTRACT.md), unlike every other text field, which is trimmed.
Credential = Annotated[str, StringConstraints(strip_whitespace=False)]


_utc = as_utc


class ProfileFields(_Input):
    """Everything a profile can say; on PUT only the keys sent change."""

    name: str | None = Field(default=None, min_length=1, max_length=100)
    host: str | None = Field(default=None, min_length=1, max_length=255)
    port: int | None = Field(default=None, ge=1, le=65535)
    username: str | None = Field(default=None, min_length=1, max_length=100)
    auth_type: AuthType | None = None
    # Opaque strings, stored encrypted exactly as received (CONTRACT.md). null removes.
    password: Credential | None = Field(default=None, max_length=4096)
    private_key: Credential | None = Field(default=None, max_length=32768)
    passphrase: Credential | None = Field(default=None, max_length=4096)
    key_id: uuid.UUID | None = None
    jump_profile_id: uuid.UUID | None = Field(
        default=None,
        validation_alias=AliasChoices(
            "jump_profile_id", "jumpProfileId", "jump_host_id", "jumpHostId"
        ),
    )
    description: str | None = Field(default=None, max_length=1000)
    tags: list[str] | None = Field(default=None, max_length=50)
    color: str | None = Field(default=None, max_length=32)
    is_default: bool | None = None
    status: Status | None = None
    last_connected_at: datetime | None = None
    host_key_fingerprint: str | None = Field(default=None, pattern=FINGERPRINT_PATTERN)
    strict_host_key: bool | None = None
    keepalive_interval: int | None = Field(default=None, ge=0, le=3600)
    connect_timeout: int | None = Field(default=None, ge=1, le=120)

    @field_validator("auth_type", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("status", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        cleaned = [t.strip()[:50] for t in value if t and t.strip()]
        return list(dict.fromkeys(cleaned))

    @field_validator("last_connected_at")
    @classmethod
    def _as_utc(cls, value: datetime | None) -> datetime | None:
        return _utc(value)


class ProfileCreate(ProfileFields):
    id: uuid.UUID | None = Field(default=None, description="The app's own id (sync upload).")
    name: str = Field(min_length=1, max_length=100)
    host: str = Field(min_length=1, max_length=255)
    username: str = Field(min_length=1, max_length=100)


class ProfileOut(BaseModel):
    id: uuid.UUID
    name: str
    host: str
    port: int
    username: str
    auth_type: AuthType
    has_password: bool
    has_private_key: bool
    has_passphrase: bool
    key_id: uuid.UUID | None
    jump_profile_id: uuid.UUID | None
    description: str | None
    tags: list[str]
    color: str | None
    is_default: bool
    status: Status
    last_connected_at: datetime | None
    host_key_type: str | None
    host_key_fingerprint: str | None
    pending_host_key_fingerprint: str | None
    strict_host_key: bool
    keepalive_interval: int
    connect_timeout: int
    created_at: datetime
    updated_at: datetime


class ProfileList(BaseModel):
    profiles: list[ProfileOut]
    total: int


class HostKeyAcceptance(_Input):
    fingerprint: str = Field(pattern=FINGERPRINT_PATTERN)


class ConnectionTestRequest(ProfileFields):
    """An unsaved profile to test (``POST /ssh/test-connection``)."""

    host: str = Field(min_length=1, max_length=255)
    username: str = Field(min_length=1, max_length=100)


class JumpReport(BaseModel):
    success: bool
    error: str | None
    message: str
    host_key_type: str | None
    host_key_fingerprint: str | None


class ConnectionTestResult(BaseModel):
    success: bool
    message: str
    error: str | None = Field(description="Stable code when it failed: auth_failed, timeout …")
    response_time: int = Field(description="Milliseconds.")
    timestamp: datetime
    server_version: str | None
    host_key_type: str | None
    host_key_fingerprint: str | None
    expected_host_key_fingerprint: str | None
    jump: JumpReport | None = None


class KeyGenerateRequest(_Input):
    name: str = Field(min_length=1, max_length=100)
    key_type: Literal["ed25519", "rsa", "ecdsa"] = "ed25519"
    bits: int | None = Field(default=None, description="RSA 3072/4096; ECDSA 256/384.")
    comment: str | None = Field(default=None, max_length=255)

    @field_validator("key_type", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value


class KeyImportRequest(_Input):
    name: str = Field(min_length=1, max_length=100)
    private_key: Credential = Field(min_length=1, max_length=32768)
    passphrase: Credential | None = Field(default=None, max_length=4096)
    comment: str | None = Field(default=None, max_length=255)


class KeyUpdateRequest(_Input):
    name: str | None = Field(default=None, min_length=1, max_length=100)
    comment: str | None = Field(default=None, max_length=255)


class KeyOut(BaseModel):
    id: uuid.UUID
    name: str
    key_type: str
    bits: int
    public_key: str
    fingerprint: str
    comment: str | None
    used_by_profiles: int
    created_at: datetime
    updated_at: datetime
    last_used_at: datetime | None


class KeyList(BaseModel):
    keys: list[KeyOut]
    total: int


class KeyValidationRequest(_Input):
    private_key: Credential = Field(min_length=1, max_length=32768)
    passphrase: Credential | None = Field(default=None, max_length=4096)


class KeyValidationOut(BaseModel):
    is_valid: bool
    key_type: str | None
    key_size: int | None
    fingerprint: str | None
    error: str | None
    code: str | None
