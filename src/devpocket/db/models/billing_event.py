from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from devpocket.db.base import Base


class BillingEvent(Base):
    """A payment provider's webhook event, kept so that a redelivery changes nothing."""

    __tablename__ = "billing_events"
    __table_args__ = (UniqueConstraint("provider", "event_id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    provider: Mapped[str] = mapped_column(String(32))
    event_id: Mapped[str] = mapped_column(String(200))
    event_type: Mapped[str] = mapped_column(String(64))
    # Kept when the user is deleted: the event must still be recognised if it comes again.
    user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    # The provider's clock: orders a user's events whatever order they arrive in.
    event_at: Mapped[datetime]
    received_at: Mapped[datetime]
    # Set when the event changed the user's subscription (not for stale or ignored events).
    applied_at: Mapped[datetime | None]
    outcome: Mapped[str] = mapped_column(String(32))
