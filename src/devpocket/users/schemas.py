"""Bodies of ``/api/v1/users``: preferences, devices, account deletion."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from devpocket.auth.schemas import RequestModel

ACCOUNT_DELETION_CONFIRMATION = "DELETE"


class _Section(BaseModel):
    # Keys the app adds later are kept, not dropped: preferences lose nothing.
    model_config = ConfigDict(extra="allow")


class TerminalPreferences(_Section):
    theme: str = "dark"
    font_family: str = "JetBrains Mono"
    font_size: int = Field(default=14, ge=6, le=48)
    cursor_style: Literal["block", "underline", "bar"] = "block"
    cursor_blink: bool = True
    scrollback_lines: int = Field(default=10_000, ge=100, le=1_000_000)
    bell: bool = False
    default_shell: str | None = None


class AiPreferences(_Section):
    enabled: bool = True
    default_model: str = "openai/gpt-4o-mini"
    suggest_commands: bool = True
    explain_errors: bool = True


class SecurityPreferences(_Section):
    biometric_lock: bool = False
    lock_after_minutes: int = Field(default=5, ge=0, le=1440)
    confirm_dangerous_commands: bool = True


class SyncPreferences(_Section):
    enabled: bool = True
    sync_profiles: bool = True
    sync_history: bool = True
    sync_preferences: bool = True
    wifi_only: bool = False


class Preferences(_Section):
    terminal: TerminalPreferences = Field(default_factory=TerminalPreferences)
    ai: AiPreferences = Field(default_factory=AiPreferences)
    security: SecurityPreferences = Field(default_factory=SecurityPreferences)
    sync: SyncPreferences = Field(default_factory=SyncPreferences)


class PreferencesUpdate(_Section):
    """Any subset of the sections and their keys; what is sent is merged into what is kept."""

    terminal: dict[str, Any] | None = None
    ai: dict[str, Any] | None = None
    security: dict[str, Any] | None = None
    sync: dict[str, Any] | None = None


class DeviceOut(BaseModel):
    id: uuid.UUID
    name: str
    platform: str | None
    app_version: str | None
    last_ip: str | None
    created_at: datetime
    last_seen_at: datetime
    is_current: bool
    active_sessions: int


class DeviceList(BaseModel):
    devices: list[DeviceOut]
    total: int


class DeviceUpdate(RequestModel):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    platform: str | None = Field(default=None, max_length=50)
    app_version: str | None = Field(
        default=None, max_length=50, validation_alias=AliasChoices("app_version", "appVersion")
    )


class AccountDeletionRequest(RequestModel):
    password: str | None = Field(default=None, max_length=128)
    confirmation: str = Field(
        description=f"Must be `{ACCOUNT_DELETION_CONFIRMATION}`.", max_length=64
    )
