from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from devpocket.db.base import Base, utcnow


class SyncAppliedChange(Base):
    """A pushed change by its client id, with the answer it got: a repeat gets the same answer."""

    __tablename__ = "sync_applied_changes"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    change_id: Mapped[uuid.UUID] = mapped_column(Uuid(), primary_key=True)
    result: Mapped[dict[str, Any]] = mapped_column(JSON)
    applied_at: Mapped[datetime] = mapped_column(default=utcnow)
