from __future__ import annotations

import uuid

from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from devpocket.db.base import Base


class UsageCounter(Base):
    """How much of a metered feature a user used in a period (``2026-11`` for monthly)."""

    __tablename__ = "usage_counters"
    __table_args__ = (UniqueConstraint("user_id", "feature", "period"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    feature: Mapped[str] = mapped_column(String(32))
    period: Mapped[str] = mapped_column(String(16))
    used: Mapped[int] = mapped_column(Integer, default=0)
