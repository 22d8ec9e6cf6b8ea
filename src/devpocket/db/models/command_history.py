from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from devpocket.db.base import Base, utcnow


class CommandHistory(Base):
    """One command a user ran: typed on a device, or a finished block of a terminal session."""

    __tablename__ = "command_history"
    __table_args__ = (
        Index("ix_command_history_user_executed", "user_id", "executed_at"),
        # The favorites filter and count (migration 0005).
        Index("ix_command_history_user_favorite", "user_id", "is_favorite"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    command: Mapped[str] = mapped_column(Text)
    output: Mapped[str | None] = mapped_column(Text)
    result_type: Mapped[str] = mapped_column(String(16), default="info")
    exit_code: Mapped[int | None] = mapped_column(Integer)
    execution_time_ms: Mapped[int | None] = mapped_column(Integer)
    # A terminal session's id when the command came from one; not a foreign key, because a
    # device may report commands of sessions this server never ran.
    session_id: Mapped[str | None] = mapped_column(String(64), index=True)
    working_directory: Mapped[str | None] = mapped_column(Text)
    shell_type: Mapped[str | None] = mapped_column(String(32))
    executed_at: Mapped[datetime] = mapped_column(default=utcnow)
    ssh_profile_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("ssh_profiles.id", ondelete="SET NULL")
    )
    device_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("devices.id", ondelete="SET NULL")
    )
    is_favorite: Mapped[bool] = mapped_column(Boolean, default=False)
    tags: Mapped[list[Any]] = mapped_column(JSON, default=list)
    # The terminal block this entry records: its output's offsets in the session's stream.
    output_start: Mapped[int | None] = mapped_column(BigInteger)
    output_end: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
