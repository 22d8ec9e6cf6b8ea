"""Requests and answers of the terminal endpoints (REST, and the create_session action)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, model_validator

from devpocket.ssh.schemas import ConnectionTestRequest, ProfileFields

SessionType = Literal["local", "ssh"]


class InlineProfile(ProfileFields):
    """A profile as the app holds it.

    With the ``id`` of a saved profile, that profile is used, and credentials sent here (typed
    when connecting) take the place of the stored ones. Otherwise it is connected to as sent:
    ``host`` and ``username`` are then required.
    """

    id: uuid.UUID | None = None

    @model_validator(mode="after")
    def _addressed(self) -> InlineProfile:
        if self.id is None:
            self.unsaved()
        return self

    def unsaved(self) -> ConnectionTestRequest:
        """This profile as an unsaved one; ``ValueError`` without a host and a username."""
        missing = [name for name in ("host", "username") if getattr(self, name) is None]
        if missing:
            raise ValueError(f"{' and '.join(missing)} required for a profile that is not saved")
        return ConnectionTestRequest.model_validate(
            self.model_dump(exclude_unset=True, exclude={"id"})
        )


class SessionCreate(BaseModel):
    """``POST /terminal/sessions``, and the ``create_session`` action of the WebSocket."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    type: SessionType | None = Field(
        default=None, description="Inferred: `ssh` with a profile, otherwise required."
    )
    ssh_profile_id: uuid.UUID | None = Field(
        default=None,
        validation_alias=AliasChoices("ssh_profile_id", "profile_id", "sshProfileId", "profileId"),
    )
    profile: InlineProfile | None = None
    shell: str | None = Field(default=None, max_length=200)
    cwd: str | None = Field(default=None, max_length=4096)
    cols: int = Field(default=80, ge=1, le=1000)
    rows: int = Field(default=24, ge=1, le=1000)
    env: dict[str, str] = Field(default_factory=dict)
    shell_integration: bool = Field(
        default=False,
        validation_alias=AliasChoices("shell_integration", "shellIntegration"),
        description=(
            "SSH sessions: write DevPocket's shell integration on the remote host "
            "(`~/.cache/devpocket/shell-integration.sh`) and source it into the login shell, "
            "so that bash and zsh emit the marks of command blocks. Local shells always have it."
        ),
    )

    @model_validator(mode="after")
    def _kind(self) -> SessionCreate:
        if self.type is None:
            if self.ssh_profile_id is None and self.profile is None:
                raise ValueError("type is required: `local`, or `ssh` with a profile")
            self.type = "ssh"
        if self.type == "ssh" and self.ssh_profile_id is None and self.profile is None:
            raise ValueError("an ssh session needs ssh_profile_id or profile")
        return self


class SessionOut(BaseModel):
    id: uuid.UUID
    type: SessionType
    ssh_profile_id: uuid.UUID | None
    shell: str | None
    status: Literal["active", "ended"]
    created_at: datetime
    last_activity: datetime
    ended_at: datetime | None
    exit_code: int | None
    end_reason: str | None
    bytes_in: int
    bytes_out: int
    attached: int = Field(description="Sockets attached now (0 when detached or ended).")
    output_offset: int | None = Field(
        description="The offset the next output will have: `since` for a reattach that "
        "misses nothing (null once ended)."
    )


class SessionList(BaseModel):
    sessions: list[SessionOut]
    total: int


class CommandCount(BaseModel):
    command: str
    count: int


class TerminalStats(BaseModel):
    total_sessions: int
    active_sessions: int
    total_commands: int
    total_usage_time: int = Field(description="Milliseconds spent in sessions.")
    top_commands: list[CommandCount]
    sessions_by_type: dict[str, int]
