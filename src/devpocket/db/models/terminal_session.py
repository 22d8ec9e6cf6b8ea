from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from devpocket.db.base import Base, utcnow


class TerminalSession(Base):
    """The record of one terminal session: who ran what, when, and how it ended.

    The live session (its PTY or SSH channel and output buffer) lives in one server process; this
    row is what every node, and the REST API, can see of it.
    """

    __tablename__ = "terminal_sessions"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    type: Mapped[str] = mapped_column(String(16))  # local | ssh
    ssh_profile_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("ssh_profiles.id", ondelete="SET NULL"), index=True
    )
    shell: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default="active")  # active | ended
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_activity: Mapped[datetime] = mapped_column(default=utcnow)
    # Renewed every minute by the server process running the session: a record that stops
    # being renewed belongs to a process that crashed, and is ended by the others.
    seen_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    ended_at: Mapped[datetime | None]
    exit_code: Mapped[int | None] = mapped_column(Integer)
    end_reason: Mapped[str | None] = mapped_column(String(64))
    bytes_in: Mapped[int] = mapped_column(BigInteger, default=0)
    bytes_out: Mapped[int] = mapped_column(BigInteger, default=0)
